package main

import (
	"errors"
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// GOMEMLIMIT follows the container's limit (90% of it), unless the
// environment sets GOMEMLIMIT or AUTOMEMLIMIT=off; each outcome is logged.
// The tests share the process's memory limit, so none runs in parallel and
// each puts the limit back.
func TestMemoryLimitFromTheContainer(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	const gib = 1 << 30
	for _, c := range []struct {
		name      string
		env       map[string]string
		provider  memlimit.Provider
		wantLimit int64
		wantLog   string
	}{
		{"container limit", nil, memlimit.Limit(gib), gib * 9 / 10, "memory limit: GOMEMLIMIT set from the container's memory limit"},
		{"GOMEMLIMIT wins", map[string]string{"GOMEMLIMIT": "123MiB"}, memlimit.Limit(gib), before, "memory limit: GOMEMLIMIT from the environment"},
		{"AUTOMEMLIMIT off", map[string]string{"AUTOMEMLIMIT": "off"}, memlimit.Limit(gib), before, "memory limit: AUTOMEMLIMIT=off; GOMEMLIMIT is not set"},
		{"AUTOMEMLIMIT ratio", map[string]string{"AUTOMEMLIMIT": "0.5"}, memlimit.Limit(gib), gib / 2, "memory limit: GOMEMLIMIT set from the container's memory limit"},
		{"no limit", nil, func() (uint64, error) { return 0, memlimit.ErrNoLimit }, math.MaxInt64, "memory limit: none (the container has no memory limit); the garbage collector follows GOGC alone"},
		{"no cgroup", nil, func() (uint64, error) { return 0, memlimit.ErrNoCgroup }, before, "memory limit: none (not in a cgroup); the garbage collector follows GOGC alone"},
		{"unreadable", nil, func() (uint64, error) { return 0, errors.New("permission denied") }, before, "memory limit: the container's limit could not be read; GOMEMLIMIT is not set"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", "")
			t.Setenv("AUTOMEMLIMIT", "")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			if c.env["AUTOMEMLIMIT"] == "" {
				// Set to "" means a bad ratio to automemlimit: unset it
				// (t.Setenv above puts the old value back).
				if err := os.Unsetenv("AUTOMEMLIMIT"); err != nil {
					t.Fatal(err)
				}
			}
			debug.SetMemoryLimit(before)
			core, logs := observer.New(zapcore.InfoLevel)
			setMemoryLimit(zap.New(core), c.provider)
			if got := debug.SetMemoryLimit(-1); got != c.wantLimit {
				t.Errorf("memory limit %d, want %d", got, c.wantLimit)
			}
			entries := logs.All()
			if len(entries) != 1 {
				t.Fatalf("%d log lines, want 1: %v", len(entries), entries)
			}
			if entries[0].Message != c.wantLog {
				t.Errorf("logged %q, want %q", entries[0].Message, c.wantLog)
			}
		})
	}
}
