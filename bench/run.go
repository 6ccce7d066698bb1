package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// scenario is one table of the report: the same load against every target,
// with everything it needs started before and stopped after.
type scenario struct {
	Name    string
	About   string
	TLS     bool // TLS in at every proxy, HTTPS to the upstream
	Poll    bool // a paced load of pollers (poll.go) instead of wrk
	Targets []string
}

var scenarios = []scenario{
	{Name: "sidecar", About: "plain HTTP in, plain HTTP to the upstream",
		Targets: []string{"direct", "bare", "nginx", "haproxy", "caddy", "scgate-min", "scgate-full"}},
	{Name: "gateway", About: "TLS in (keep-alive; session cache and tickets on), HTTPS to the upstream", TLS: true,
		Targets: []string{"direct", "bare", "nginx", "haproxy", "caddy", "scgate-min", "scgate-full"}},
	{Name: "scale", About: "plain HTTP; scgate with a 10-caller vault and with a 10,000-caller, 1,000-key vault",
		Targets: []string{"direct", "scgate-v10", "scgate-v10k"}},
	{Name: "poll", About: "plain HTTP; pollers ask for now playing at a fixed pace; nginx-cache (proxy_cache) and scgate-cache cache it for 1 s", Poll: true,
		Targets: []string{"direct", "nginx-cache", "scgate-min", "scgate-cache"}},
}

// config is the command line of `bench run`.
type config struct {
	Scenarios  []string
	Targets    []string // when set, only these targets (direct is always kept)
	Conns      []int
	Duration   time.Duration
	Warmup     time.Duration
	Threads    int
	BasePort   int
	IdleConns  int
	MaxRuntime time.Duration
	Out        string
	Scgate     string // a prebuilt scgate binary; empty: build ./cmd/scgate
	ComparePGO bool   // add scgate-nopgo beside scgate-full
	Profile    bool   // CPU-profile every scgate target (--cpuprofile)
	Readme     string // file (docs/performance.md) to update between the bench markers
	Chart      string // where to copy the chart
	// Rates are the open-loop request rates, one run each per target after
	// the closed-loop runs; OpenDuration is the length of each.
	Rates        []int
	OpenDuration time.Duration
	// Extra are more scgate targets: scgate-min's config with settings
	// added (-variant), run beside scgate-min in sidecar and gateway.
	Extra []extraVariant
	// Pollers and PollInterval are the poll scenario's paced load.
	Pollers      int
	PollInterval time.Duration
}

// estimate is how long the load takes, start-up excluded.
func (c config) estimate() time.Duration {
	var runs, open int
	for _, s := range c.selected() {
		if s.Poll {
			runs += len(s.Targets)
			continue
		}
		runs += len(s.Targets) * len(c.Conns)
		open += len(s.Targets) * len(c.Rates)
	}
	return time.Duration(runs)*(c.Warmup+c.Duration+time.Second) +
		time.Duration(open)*(c.OpenDuration+openWarmup+time.Second) + 30*time.Second
}

// selected are the scenarios to run, with the target filter applied.
func (c config) selected() []scenario {
	var out []scenario
	for _, s := range scenarios {
		if !contains(c.Scenarios, s.Name) {
			continue
		}
		if len(c.Targets) > 0 {
			var keep []string
			for _, t := range s.Targets {
				if t == "direct" || contains(c.Targets, t) {
					keep = append(keep, t)
				}
			}
			s.Targets = keep
		}
		if c.ComparePGO && contains(s.Targets, "scgate-full") {
			s.Targets = append(s.Targets, "scgate-nopgo")
		}
		if s.Name != "scale" {
			for _, v := range c.Extra {
				if len(c.Targets) == 0 || contains(c.Targets, v.Name) {
					s.Targets = append(s.Targets, v.Name)
				}
			}
		}
		out = append(out, s)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validate checks the settings before anything starts.
func (c config) validate() error {
	var errs []error
	for _, s := range c.Scenarios {
		found := false
		for _, known := range scenarios {
			found = found || known.Name == s
		}
		if !found {
			errs = append(errs, fmt.Errorf("unknown scenario %q (sidecar, gateway, scale, poll)", s))
		}
	}
	for _, t := range c.Targets {
		if _, ok := variants[t]; !ok && !contains(kinds, t) && c.extra(t) == nil {
			errs = append(errs, fmt.Errorf("unknown target %q", t))
		}
	}
	if len(c.Conns) == 0 && len(c.Rates) == 0 {
		errs = append(errs, errors.New("-conns and -rates: at least one concurrency or rate"))
	}
	for _, r := range c.Rates {
		if r < 1 || r > 100_000 {
			errs = append(errs, fmt.Errorf("-rates %d: between 1 and 100000", r))
		}
	}
	if len(c.Rates) > 0 && c.OpenDuration < time.Second {
		errs = append(errs, errors.New("-open-duration must be at least 1s"))
	}
	for _, n := range c.Conns {
		if n < c.Threads || n > 4096 {
			errs = append(errs, fmt.Errorf("-conns %d: between -threads and 4096", n))
		}
	}
	if contains(c.Scenarios, "poll") && (c.Pollers < 1 || c.Pollers > 4096 || c.PollInterval < time.Millisecond) {
		errs = append(errs, errors.New("-pollers between 1 and 4096, -poll-interval at least 1ms"))
	}
	if c.Duration < time.Second || c.Warmup < 0 {
		errs = append(errs, errors.New("-duration must be at least 1s, -warmup not negative"))
	}
	if c.BasePort < 1024 || c.BasePort+100 > 65535 {
		errs = append(errs, errors.New("-base-port: between 1024 and 65435"))
	}
	if est := c.estimate(); est > c.MaxRuntime {
		errs = append(errs, fmt.Errorf("the run would take about %v, over -max-runtime %v: fewer scenarios, targets or conns, or a shorter -duration", est.Round(time.Second), c.MaxRuntime))
	}
	return errors.Join(errs...)
}

// bench is one run of `bench run`.
type bench struct {
	cfg   config
	log   io.Writer
	procs procs
	bins  bins
	certs certFiles
	cl    *client
	data  runData // what the run measured besides the closed-loop results
}

// result is one measured run of one target.
type result struct {
	Scenario  string        `json:"scenario"`
	Target    string        `json:"target"`
	Conns     int           `json:"conns"`
	RPS       float64       `json:"rps"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
	P999      time.Duration `json:"p999_ns"`
	Errors    int64         `json:"errors"` // transport errors and non-2xx/3xx answers
	UpConns   int64         `json:"upstream_conns"`
	CPUPerReq time.Duration `json:"cpu_per_request_ns"` // of the target's process group
	RSS       int64         `json:"rss_bytes"`
	OK        bool          `json:"ok"`
	Note      string        `json:"note,omitempty"`
	// UpstreamRPS: the poll scenario's now-playing requests per second
	// that reached the upstream.
	UpstreamRPS float64 `json:"upstream_rps,omitempty"`
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "[bench] "+format+"\n", args...)
}

// run runs every selected scenario and returns the results.
func (b *bench) run(ctx context.Context) ([]result, error) {
	defer b.procs.stopAll(5 * time.Second)
	if err := b.prepare(ctx); err != nil {
		return nil, err
	}
	var all []result
	for i, s := range b.cfg.selected() {
		res, err := b.runScenario(ctx, s, b.cfg.BasePort+i*20)
		all = append(all, res...)
		if err != nil {
			return all, fmt.Errorf("scenario %s: %w", s.Name, err)
		}
	}
	return all, nil
}

// prepare checks the tools, builds scgate and writes the certificate.
func (b *bench) prepare(ctx context.Context) error {
	if _, err := exec.LookPath("wrk"); err != nil && len(b.cfg.Conns) > 0 {
		return errors.New("wrk is not installed (apt-get install wrk), and -conns asks for closed-loop runs (-conns '' runs the open loop alone)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b.bins.self = self
	if err := os.MkdirAll(filepath.Join(b.cfg.Out, "bin"), 0o755); err != nil {
		return err
	}
	b.bins.scgate = b.cfg.Scgate
	if b.bins.scgate == "" {
		b.bins.scgate = filepath.Join(b.cfg.Out, "bin", "scgate")
		if err := goBuild(ctx, b.bins.scgate, "auto"); err != nil {
			return err
		}
	}
	if b.cfg.ComparePGO {
		b.bins.scgateNoPGO = filepath.Join(b.cfg.Out, "bin", "scgate-nopgo")
		if err := goBuild(ctx, b.bins.scgateNoPGO, "off"); err != nil {
			return err
		}
	}
	if b.certs, err = writeSelfSigned(b.cfg.Out); err != nil {
		return err
	}
	b.cl, err = newClient(b.certs.Cert)
	return err
}

// goBuild builds ./cmd/scgate of the module the bench is run from.
func goBuild(ctx context.Context, out, pgo string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-pgo="+pgo, "-o", out, "./cmd/scgate")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/scgate (run the bench from the repository root): %w\n%s", err, b)
	}
	return nil
}

// runScenario starts the upstream and the targets of s on ports from base,
// checks that each does the job, loads each at every concurrency, and stops
// them all again.
func (b *bench) runScenario(ctx context.Context, s scenario, base int) ([]result, error) {
	// Longer than scgate's shutdown_timeout in conf/scgate.toml.tmpl, so
	// that a profiled target writes its profile before it would be killed.
	defer b.procs.stopAll(stopGrace)
	dir := filepath.Join(b.cfg.Out, s.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b.logf("scenario %s: %s", s.Name, s.About)
	upAddr := hostPort(base)
	upArgs := []string{b.bins.self, "upstream", "-listen", upAddr, "-key", benchKey}
	scheme := "http"
	if s.TLS {
		upArgs = append(upArgs, "-cert", b.certs.Cert, "-keyfile", b.certs.Key)
		scheme = "https"
	}
	upURL := scheme + "://" + upAddr
	for i := 0; i <= len(s.Targets)+10; i++ {
		// A port someone else holds would have the bench load a stranger.
		if addr := hostPort(base + i); dialOnce(ctx, addr) == nil {
			return nil, fmt.Errorf("port %s is already in use: stop what holds it or pick another -base-port", addr)
		}
	}
	up, err := b.procs.start("upstream", dir, nil, upArgs...)
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, up, upAddr); err != nil {
		return nil, err
	}
	var targets []*target
	for i, name := range s.Targets {
		t, err := b.startTarget(ctx, s, name, dir, base+1+i, base+11+i, upAddr, scheme)
		if errors.Is(err, errNotInstalled) {
			b.logf("  %s: skipped, %v", name, err)
			b.data.Skipped = append(b.data.Skipped, skipped{Scenario: s.Name, Target: name, Reason: err.Error()})
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := b.cl.checkTarget(ctx, t, upURL); err != nil {
			return nil, fmt.Errorf("same-job check failed: %w", err)
		}
		b.logf("  %s at %s: checks passed", name, t.URL)
		if t.proc != nil {
			t.mem = &memTrack{Scenario: s.Name, Target: name}
			t.mem.IdleRSS, t.mem.IdleAnon, t.mem.IdleHeap = t.sampler().read(ctx)
		}
		targets = append(targets, t)
	}
	defer func() {
		for _, t := range targets {
			if t.mem != nil {
				b.data.Memory = append(b.data.Memory, *t.mem)
			}
		}
	}()
	script := filepath.Join(dir, "report.lua")
	lua, _ := confFS.ReadFile("conf/report.lua")
	if err := os.WriteFile(script, lua, 0o644); err != nil {
		return nil, err
	}
	var out []result
	if s.Poll {
		for _, t := range targets {
			r, err := b.measurePoll(ctx, s, t, upURL)
			if err != nil {
				return out, err
			}
			b.logf("  %-12s pollers=%-4d %8.0f req/s  upstream %6.2f req/s  p50 %-8v p99 %-8v %s %s",
				t.Name, r.Conns, r.RPS, r.UpstreamRPS, r.P50, r.P99, okText(r.OK), r.Note)
			out = append(out, r)
		}
		return out, nil
	}
	for _, c := range b.cfg.Conns {
		for _, t := range targets {
			r, err := b.measure(ctx, s, t, c, script, upURL, up)
			if err != nil {
				return out, err
			}
			b.logf("  %-12s c=%-4d %8.0f req/s  p50 %-8v p99 %-8v cpu %v/req rss %.1f MB %s",
				t.Name, c, r.RPS, r.P50, r.P99, r.CPUPerReq, float64(r.RSS)/(1<<20), okText(r.OK))
			out = append(out, r)
		}
	}
	for _, rate := range b.cfg.Rates {
		for _, t := range targets {
			r, err := b.measureOpen(ctx, s, t, rate)
			if err != nil {
				return out, err
			}
			b.logf("  %-12s %5d/s  p50 %-8v p99 %-8v p99.9 %-8v errors %d", t.Name, rate, r.P50, r.P99, r.P999, r.Errors)
			b.data.Open = append(b.data.Open, r)
		}
	}
	return out, nil
}

// stopGrace is how long a target has to exit after SIGTERM.
const stopGrace = 10 * time.Second

// openWarmup is the unrecorded open-loop load before each measured one, at
// the same rate (new connections, pools filled).
const openWarmup = time.Second

// measureOpen runs t at rate requests per second, open loop.
func (b *bench) measureOpen(ctx context.Context, s scenario, t *target, rate int) (openResult, error) {
	url := t.URL + "/api/v2/playlists/?server=1"
	if _, err := openLoop(ctx, url, t.Header, b.cl.roots, rate, openWarmup); err != nil && ctx.Err() != nil {
		return openResult{}, ctx.Err()
	}
	stop := t.track(ctx, fmt.Sprintf("%d/s", rate), b.cfg.OpenDuration)
	r, err := openLoop(ctx, url, t.Header, b.cl.roots, rate, b.cfg.OpenDuration)
	stop()
	r.Scenario, r.Target = s.Name, t.Name
	if err != nil && ctx.Err() != nil {
		return r, ctx.Err()
	}
	if err != nil {
		r.Errors = -1 // shown as a failed run; the closed-loop results still stand
		b.logf("  %s %d/s: %v", t.Name, rate, err)
	}
	return r, nil
}

func okText(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

// startTarget writes the target's files and starts it on port.
func (b *bench) startTarget(ctx context.Context, s scenario, name, dir string, port, adminPort int, upAddr, upScheme string) (*target, error) {
	scheme := "http"
	if s.TLS {
		scheme = "https"
	}
	t := &target{Name: name, URL: scheme + "://" + hostPort(port)}
	if name == "direct" {
		t.URL = upScheme + "://" + upAddr
		t.Header = "SC-API-KEY: " + benchKey
		return t, nil
	}
	tdir := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Join(tdir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	p := params{
		Variant: name, Dir: tdir, Host: "127.0.0.1", Listen: hostPort(port), Admin: hostPort(adminPort),
		Upstream: upAddr, UpScheme: upScheme, TLS: s.TLS, UpTLS: upScheme == "https", Key: benchKey,
		Cert: b.certs.Cert, CertKey: b.certs.Key, Combined: b.certs.Combined,
		IdleConns: b.cfg.IdleConns, Workers: runtime.NumCPU(),
	}
	p.Extra = b.cfg.extra(name)
	l, err := plan(name, p, b.bins)
	if err != nil {
		return nil, err
	}
	if b.cfg.Profile && (strings.HasPrefix(name, "scgate") || name == "bare") {
		flag := "--cpuprofile"
		if name == "bare" {
			flag = "-cpuprofile"
		}
		l.argv = append(l.argv, flag, profilePath(b.cfg.Out, s.Name, name))
	}
	if strings.HasPrefix(name, "scgate") || name == "bare" {
		t.Metrics = "http://" + hostPort(adminPort) + "/metrics"
	}
	if err := l.writeFiles(tdir); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(l.argv[0]); err != nil {
		return nil, fmt.Errorf("%w: %s (apt-get install nginx haproxy caddy)", errNotInstalled, l.argv[0])
	}
	t.proc, err = b.procs.start(name, tdir, l.env, l.argv...)
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, t.proc, hostPort(port)); err != nil {
		return nil, err
	}
	return t, nil
}

// measure runs the warm-up and the measured load of t at conns.
func (b *bench) measure(ctx context.Context, s scenario, t *target, conns int, script, upURL string, up *proc) (result, error) {
	url := t.URL + "/api/v2/playlists/?server=1"
	if b.cfg.Warmup > 0 {
		if _, err := runWrk(ctx, wrkArgs(script, url, conns, b.cfg.Threads, b.cfg.Warmup, t.Header), b.cfg.Warmup); err != nil && ctx.Err() != nil {
			return result{}, ctx.Err()
		}
	}
	pr := t.proc
	if pr == nil {
		pr = up // direct: the upstream is the process under load
	}
	pgid := pr.cmd.Process.Pid
	stopMem := t.track(ctx, fmt.Sprintf("c=%d", conns), b.cfg.Duration)
	st0, err := readGroupStats(pgid)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", t.Name, err)
	}
	up0, err := b.cl.upstreamStatsAt(ctx, upURL)
	if err != nil {
		return result{}, err
	}
	out, werr := runWrk(ctx, wrkArgs(script, url, conns, b.cfg.Threads, b.cfg.Duration, t.Header), b.cfg.Duration)
	st1, err := readGroupStats(pgid)
	stopMem()
	if err != nil {
		return result{}, fmt.Errorf("%s (did it crash? see %s): %w", t.Name, pr.log, err)
	}
	up1, err := b.cl.upstreamStatsAt(ctx, upURL)
	if err != nil {
		return result{}, err
	}
	_ = os.WriteFile(filepath.Join(b.cfg.Out, s.Name, fmt.Sprintf("wrk-%s-c%d.txt", t.Name, conns)), out, 0o644)
	r := result{Scenario: s.Name, Target: t.Name, Conns: conns, RSS: st1.RSSBytes, UpConns: up1.Conns - up0.Conns}
	w, perr := parseWrk(out)
	if werr != nil || perr != nil {
		r.Note = fmt.Sprint(errors.Join(werr, perr))
		return r, ctx.Err()
	}
	r.RPS, r.P50, r.P99, r.P999, r.Errors = w.RPS(), w.P50, w.P99, w.P999, w.Errors+w.NonOK
	if w.Requests > 0 {
		r.CPUPerReq = (st1.CPU - st0.CPU) / time.Duration(w.Requests)
	}
	refused := up1.Denied - up0.Denied
	r.OK = w.Requests > 0 && r.Errors == 0 && refused == 0 && up1.OK-up0.OK >= w.Requests
	if refused > 0 {
		r.Note = fmt.Sprintf("the upstream refused %d requests", refused)
	}
	return r, nil
}

// waitListening waits until addr accepts connections, or the process exits,
// or 15 s pass.
func waitListening(ctx context.Context, pr *proc, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := dialOnce(ctx, addr); err == nil {
			return nil
		}
		if pr.exited() {
			return fmt.Errorf("%s exited before listening on %s: %v; see %s", pr.name, addr, pr.err, pr.log)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not listen on %s within 15s; see %s", pr.name, addr, pr.log)
		}
		t := time.NewTimer(50 * time.Millisecond) // polling interval
		select {
		case <-ctx.Done():
		case <-pr.done:
		case <-t.C:
		}
		t.Stop()
	}
}
