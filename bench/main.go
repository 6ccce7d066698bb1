// Command bench is scgate's peer benchmark: in one run on one machine, it
// loads scgate beside the upstream alone ("direct"), nginx, haproxy, Caddy
// and a bare stdlib Go proxy, all doing the same job (inject SC-API-KEY,
// drop the caller's copies, keep-alive to the upstream), on loopback only.
// See docs/performance.md.
//
//	go run ./bench                      # every scenario, about 7 minutes
//	go run ./bench -scenarios sidecar   # one table
//	go run ./bench -scenarios poll      # 200 pollers of now playing, 1 s caches
//
// Its subcommands `upstream` and `bare` are the stand-in broadcaster and the
// bare proxy, which the run starts as processes of their own; `gobench`
// turns `go test -bench` output into a Markdown table; `report -from
// results.json` writes the reports of an earlier run again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "upstream":
			return runUpstream(ctx, args[1:])
		case "bare":
			return runBare(ctx, args[1:])
		case "gobench":
			return runGobench(args[1:], os.Stdin, stdout)
		case "report":
			return runReport(args[1:], stdout)
		case "run":
			args = args[1:]
		}
	}
	cfg, err := parseRunFlags(args, stderr)
	if err != nil {
		return err
	}
	return runBench(ctx, cfg, stdout, stderr)
}

func parseRunFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scen := fs.String("scenarios", "sidecar,gateway,scale", "scenarios to run: sidecar, gateway, scale, poll")
	targets := fs.String("targets", "", "only these targets (direct is always kept), e.g. nginx,scgate-full")
	conns := fs.String("conns", "32,256", "wrk connections, one measured run each")
	c := config{}
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured load per run")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unrecorded load before each run")
	fs.IntVar(&c.Threads, "threads", 1, "wrk threads")
	fs.IntVar(&c.BasePort, "base-port", 18300, "first loopback port; each scenario takes 20 from here")
	fs.IntVar(&c.IdleConns, "idle-conns", 512, "idle upstream connections each proxy may keep")
	fs.DurationVar(&c.MaxRuntime, "max-runtime", 15*time.Minute, "refuse settings that would run longer; stop the run at this limit")
	fs.StringVar(&c.Out, "out", "", "results folder (default $TMPDIR/scgate-bench/TIMESTAMP)")
	fs.StringVar(&c.Scgate, "scgate", "", "a prebuilt scgate binary (default: go build ./cmd/scgate)")
	fs.BoolVar(&c.ComparePGO, "compare-pgo", false, "also run scgate-full built with -pgo=off")
	fs.BoolVar(&c.Profile, "profile", false, "write a CPU profile of every scgate target into the results folder")
	fs.StringVar(&c.Readme, "readme", "", "update the results between the bench markers of this file (docs/performance.md)")
	fs.StringVar(&c.Chart, "chart", "", "also write the chart (SVG) here")
	fs.IntVar(&c.Pollers, "pollers", 200, "poll scenario: pollers asking for now playing")
	fs.DurationVar(&c.PollInterval, "poll-interval", 100*time.Millisecond, "poll scenario: each poller's interval")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.Scenarios = splitList(*scen)
	c.Targets = splitList(*targets)
	for _, s := range splitList(*conns) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return c, fmt.Errorf("-conns %q: %w", s, err)
		}
		c.Conns = append(c.Conns, n)
	}
	if c.Out == "" {
		c.Out = filepath.Join(os.TempDir(), "scgate-bench", time.Now().Format("20060102-150405"))
	}
	return c, c.validate()
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// runBench is `bench run`: bounded by -max-runtime, every process stopped on
// the way out, whatever happens.
func runBench(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxRuntime)
	defer cancel()
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return err
	}
	// nginx's workers run as nobody and must reach their folders.
	_ = os.Chmod(cfg.Out, 0o755)
	start, load0 := time.Now(), loadAvg()
	b := &bench{cfg: cfg, log: stderr}
	b.logf("results in %s; about %v of load", cfg.Out, cfg.estimate().Round(time.Second))
	results, err := b.run(ctx)
	if len(results) > 0 {
		m := describeMachine(start, time.Since(start), load0)
		if werr := writeReports(cfg, m, results, stdout); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		return err
	}
	for _, r := range results {
		if !r.OK {
			return fmt.Errorf("%s %s c=%d failed its check (%s); see %s", r.Scenario, r.Target, r.Conns, r.Note, cfg.Out)
		}
	}
	return nil
}

// dialOnce reports whether something accepts connections at addr.
func dialOnce(ctx context.Context, addr string) error {
	if err := checkLoopbackAddr(addr); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}
