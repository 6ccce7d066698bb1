package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
)

// cmdRun is `scgate run`: Build the gateway, serve until SIGTERM, reload on
// SIGHUP.
func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for the bench and default.pgo)")
	cfg, err := parseConfigFlags(fs, args)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	logger, stopLogs, err := gateway.NewLogger(cfg.Log, stderr, gateway.AccessLogFlush)
	if err != nil {
		return err
	}
	defer stopLogs()
	defer func() { _ = logger.Sync() }()
	v, commit := buildVersion()
	g, err := gateway.Build(cfg, gateway.Options{Logger: logger, Version: v, Revision: commit})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return g.Run(ctx, hup)
}

// startCPUProfile profiles the process until the returned function is
// called (at shutdown).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}
