package main

import (
	"errors"
	"math"
	"os"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap"
)

// memoryLimitRatio is the share of the container's memory limit given to
// GOMEMLIMIT: the rest is headroom for what the Go runtime does not count
// (thread stacks outside the heap, the binary's pages, fragmentation).
const memoryLimitRatio = 0.9

// setMemoryLimit derives GOMEMLIMIT from the container's memory limit
// (provider: the cgroup's, in production), so that the garbage collector
// works harder as the pod nears its limit instead of the pod being killed
// for memory while GOGC=100 lets the heap double. A GOMEMLIMIT in the
// environment wins, and AUTOMEMLIMIT=off (or a ratio such as 0.8) is read as
// automemlimit documents. GOGC stays at Go's default: under the limit it
// keeps the CPU a sidecar spends on collection low; near it, the limit
// rules. The outcome is logged once, at start-up.
func setMemoryLimit(logger *zap.Logger, provider memlimit.Provider) {
	if given := os.Getenv("GOMEMLIMIT"); given != "" {
		logger.Info("memory limit: GOMEMLIMIT from the environment", zap.String("gomemlimit", given))
		return
	}
	if os.Getenv("AUTOMEMLIMIT") == "off" {
		logger.Info("memory limit: AUTOMEMLIMIT=off; GOMEMLIMIT is not set")
		return
	}
	limit, err := memlimit.Set(memlimit.WithProvider(provider), memlimit.WithRatio(memoryLimitRatio))
	switch {
	case errors.Is(err, memlimit.ErrNoCgroup) || errors.Is(err, memlimit.ErrCgroupsNotSupported):
		logger.Info("memory limit: none (not in a cgroup); the garbage collector follows GOGC alone")
	case err != nil:
		logger.Warn("memory limit: the container's limit could not be read; GOMEMLIMIT is not set", zap.Error(err))
	case limit == math.MaxInt64:
		logger.Info("memory limit: none (the container has no memory limit); the garbage collector follows GOGC alone")
	default:
		logger.Info("memory limit: GOMEMLIMIT set from the container's memory limit",
			zap.Int64("gomemlimit_bytes", limit), zap.Float64("ratio", memoryLimitRatio))
	}
}
