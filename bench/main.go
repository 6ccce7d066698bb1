// Command bench is scgate's peer benchmark: in one run on one machine, it
// loads scgate beside the upstream alone ("direct"), nginx, haproxy, Caddy
// and a bare stdlib Go proxy, all doing the same job (inject SC-API-KEY,
// drop the caller's copies, keep-alive to the upstream), on loopback only.
// See docs/performance.md.
//
//	go run ./bench                      # every scenario, about 20 minutes
//	go run ./bench -scenarios sidecar   # one scenario
//	go run ./bench -scenarios poll      # 200 pollers of now playing, 1 s caches
//	go run ./bench -help                # the commands that write docs/performance.md
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
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	scen := fs.String("scenarios", "sidecar,gateway,scale", "scenarios to run: sidecar, gateway, scale, poll")
	targets := fs.String("targets", "", "only these targets (direct is always kept), e.g. nginx,scgate-full")
	conns := fs.String("conns", "32,256", "wrk connections, one measured closed-loop run each ('' for none)")
	rates := fs.String("rates", "500,2000,5000", "open-loop request rates (req/s), one measured run each after the closed loop ('' for none)")
	var variantSpecs []string
	fs.Func("variant", "another scgate target: `scgate-NAME=section.key=value[;...]`, scgate-min's config with these TOML settings, run beside it in sidecar and gateway (repeatable), e.g. -variant 'scgate-pool64=upstream.max_idle_conns=64'", func(v string) error {
		variantSpecs = append(variantSpecs, v)
		return nil
	})
	c := config{}
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured load per run")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "unrecorded load before each run")
	fs.IntVar(&c.Threads, "threads", 1, "wrk threads")
	fs.IntVar(&c.BasePort, "base-port", 18300, "first loopback port; each scenario takes 20 from here")
	fs.IntVar(&c.IdleConns, "idle-conns", 512, "idle upstream connections each proxy may keep")
	fs.DurationVar(&c.OpenDuration, "open-duration", 10*time.Second, "measured load per open-loop run (after a 1 s warm-up at the same rate)")
	fs.DurationVar(&c.MaxRuntime, "max-runtime", 30*time.Minute, "refuse settings that would run longer; stop the run at this limit")
	fs.StringVar(&c.Out, "out", "", "results folder (default $TMPDIR/scgate-bench/TIMESTAMP)")
	fs.StringVar(&c.Scgate, "scgate", "", "a prebuilt scgate binary (default: go build ./cmd/scgate)")
	fs.BoolVar(&c.ComparePGO, "compare-pgo", false, "also run scgate-full built with -pgo=off")
	fs.BoolVar(&c.Profile, "profile", false, "write a CPU profile of bare and every scgate target into the results folder, and account their CPU by area in the report")
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
	for _, s := range splitList(*rates) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return c, fmt.Errorf("-rates %q: %w", s, err)
		}
		c.Rates = append(c.Rates, n)
	}
	for _, spec := range variantSpecs {
		v, err := parseVariant(spec)
		if err != nil {
			return c, err
		}
		if c.extra(v.Name) != nil {
			return c, fmt.Errorf("-variant %s given twice", v.Name)
		}
		c.Extra = append(c.Extra, v)
	}
	if c.Out == "" {
		c.Out = filepath.Join(os.TempDir(), "scgate-bench", time.Now().Format("20060102-150405"))
	}
	return c, c.validate()
}

// usage heads `bench -help`: the commands that produce the report.
const usage = `Usage: go run ./bench [flags]          (from the repository root; needs wrk, and nginx,
                                        haproxy and caddy for the peers: a missing peer is skipped)

The whole report, written into docs/performance.md and bench/chart*.svg (about 20 minutes:
per target and scenario, two closed-loop runs of 2+10 s and three open-loop runs of 1+10 s):

  go run ./bench -profile -readme docs/performance.md -chart bench/chart.svg

One scenario only (sidecar: about 8 minutes), or closed loop only, or open loop only:

  go run ./bench -scenarios sidecar -profile -readme docs/performance.md -chart bench/chart.svg
  go run ./bench -rates ''
  go run ./bench -conns '' -rates 500,2000,5000

Another scgate build or setting beside scgate-min (its settings written into scgate-min's config):

  go run ./bench -scenarios sidecar -profile -variant 'scgate-pool64=upstream.max_idle_conns=64'

The report of an earlier run again: go run ./bench report -from DIR/results.json -readme docs/performance.md

Flags:
`

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
	d := b.data
	d.Results = results
	if cfg.Profile {
		d.Profiles = b.accountProfiles()
	}
	if len(results) > 0 || len(d.Open) > 0 {
		d.Machine = describeMachine(start, time.Since(start), load0)
		if werr := writeReports(cfg, d, stdout); werr != nil {
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
