package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
)

// runOptions are the flags of `scgate run` (and of `scgate --config FILE`).
type runOptions struct {
	config, cpuProfile string
}

func addRunFlags(cmd *cobra.Command, o *runOptions) {
	addConfigFlag(cmd, &o.config)
	cmd.Flags().StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for the benchmark and default.pgo)")
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the gateway",
		Long: `Run the gateway: serve until SIGTERM or Ctrl-C, reload the vault, certificates,
limits and route policy on SIGHUP. "scgate --config FILE" is the same, and
SCGATE_CONFIG is the default for --config.

Once the config is loaded, every message, a failure to start included, is
written to the log in the configured [log] format.`,
		Example: `  scgate run --config /etc/scgate/config.toml
  SCGATE_CONFIG=/etc/scgate/config.toml scgate`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return cmdRun(cmd.Context(), o, cmd.ErrOrStderr())
		}),
	}
	addRunFlags(cmd, &o)
	return cmd
}

// cmdRun is `scgate run`: Build the gateway, serve until SIGTERM, reload on
// SIGHUP.
func cmdRun(ctx context.Context, o runOptions, stderr io.Writer) error {
	cfg, err := loadConfig(o.config)
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
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
	setMemoryLimit(logger, memlimit.FromCgroup)
	// From here on a failure goes to the log, in its format (JSON lines
	// for a log collector), rather than as plain text among log lines.
	v, commit := buildVersion()
	skip, stopSkip := secondSignal()
	defer stopSkip()
	g, err := gateway.Build(cfg, gateway.Options{Logger: logger, Version: v, Revision: commit, SkipDelay: skip})
	if err != nil {
		logger.Error("scgate cannot start", zap.Error(err))
		return loggedError{err}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := g.Run(ctx, hup); err != nil {
		logger.Error("scgate failed", zap.Error(err))
		return loggedError{err}
	}
	return nil
}

// secondSignal returns a channel closed at the second SIGTERM or Ctrl-C:
// the first starts the shutdown (main's context), the second cuts its delay
// short, for an operator who does not want to wait.
func secondSignal() (<-chan struct{}, func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	skip, done := make(chan struct{}), make(chan struct{})
	go func() {
		for n := 0; ; {
			select {
			case <-sigs:
				if n++; n == 2 {
					close(skip)
					return
				}
			case <-done:
				return
			}
		}
	}()
	return skip, func() { signal.Stop(sigs); close(done) }
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
