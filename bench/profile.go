package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// The CPU accounting: each sample of a target's profile goes to one area,
// found by walking its stack from the leaf towards the root and taking the
// first frame that a rule names. Frames no rule names (the runtime's
// allocator and scheduler, syscalls, net and bufio) pass the sample on to
// their caller, so an allocation or a write is charged to the stage that
// asked for it. Samples whose whole stack is unnamed go to the runtime's own
// areas (GC in the background, the scheduler) by their root frame.

// area is one line of the accounting.
type area struct {
	Name string
	// match is a list of prefixes of function names (package path and
	// name as pprof prints them).
	match []string
}

// areas are checked in this order on each frame; the first match wins.
// More specific prefixes come before the packages they belong to.
var areas = []area{
	{"framing inspector", []string{"github.com/scgate/scgate/proxy.(*inspector)", "github.com/scgate/scgate/proxy.(*framingConn).next", "github.com/scgate/scgate/proxy.(*framingListener)", "github.com/scgate/scgate/proxy.framingGuard", "github.com/scgate/scgate/proxy.checkFraming", "github.com/scgate/scgate/proxy.framingConnContext"}},
	{"connection limits and age", []string{"github.com/scgate/scgate/proxy.(*limitListener)", "github.com/scgate/scgate/proxy.(*trackedConn)", "github.com/scgate/scgate/proxy.limitConnectionAge", "github.com/scgate/scgate/proxy.callerConnContext", "github.com/scgate/scgate/proxy.chainConnContext", "github.com/scgate/scgate/proxy.connIdentified", "github.com/scgate/scgate/proxy.applyServerLimits"}},
	{"response recorder", []string{"github.com/scgate/scgate/proxy.(*recorder)"}},
	{"request id", []string{"github.com/scgate/scgate/proxy.requestID", "github.com/scgate/scgate/proxy.validRequestID", "crypto/rand.", "encoding/hex."}},
	{"metrics", []string{"github.com/scgate/scgate/metrics.", "github.com/prometheus/"}},
	{"access log", []string{"go.uber.org/zap", "github.com/scgate/scgate/proxy.(*Handler).observe"}},
	{"identity, policy, limits, vault", []string{"github.com/scgate/scgate/proxy/identity.", "github.com/scgate/scgate/proxy/policy.", "github.com/scgate/scgate/proxy/ratelimit.", "github.com/scgate/scgate/keyvault.", "github.com/scgate/scgate/proxy.(*Handler).decide", "github.com/scgate/scgate/proxy.(*Handler).admit", "github.com/scgate/scgate/proxy.(*Handler).limit", "github.com/scgate/scgate/proxy.(*Handler).authorise", "github.com/scgate/scgate/proxy.setRateLimitHeaders"}},
	{"failover and retry wrappers", []string{"github.com/scgate/scgate/proxy.(*failover)", "github.com/scgate/scgate/proxy.retryTransport", "github.com/scgate/scgate/proxy.(*Handler).prepareReplay"}},
	{"response cache", []string{"github.com/scgate/scgate/proxy/cache.", "github.com/scgate/scgate/proxy.cacheStage"}},
	{"MaxBytesReader", []string{"net/http.MaxBytesReader", "net/http.(*maxBytesReader)"}},
	{"context values", []string{"context.WithValue", "context.(*valueCtx)", "context.value", "github.com/scgate/scgate/proxy.(*stateContext)", "net/http.(*Request).WithContext"}},
	{"timeouts and deadlines", []string{"time.NewTimer", "time.AfterFunc", "time.(*Timer)", "context.WithDeadline", "context.WithTimeout", "net.(*conn).SetDeadline", "net.(*conn).SetReadDeadline", "net.(*conn).SetWriteDeadline", "internal/poll.(*FD).SetDeadline", "internal/poll.(*FD).SetReadDeadline", "internal/poll.(*FD).SetWriteDeadline", "internal/poll.setDeadlineImpl"}},
	{"scgate handler, other", []string{"github.com/scgate/scgate/"}},
	{"bare proxy's own code", []string{"main."}},
	{"httputil.ReverseProxy", []string{"net/http/httputil."}},
	{"http.Transport (upstream side)", []string{"net/http.(*Transport)", "net/http.(*persistConn)", "net/http.persistConnWriter", "net/http.(*transportRequest)", "net/http.ReadResponse", "net/http.(*Request).write", "net/http.(*bodyEOFSignal)", "net/http.(*wantConn)", "net/http.(*connLRU)", "net/http.(*Client)", "net/http.send", "net/http.(*gzipReader)", "net/http.newTransferWriter", "net/http.(*transferWriter)"}},
	{"net/http server", []string{"net/http."}},
}

// passOn are helpers every layer uses (header maps, URL and MIME parsing,
// TLS records): they are charged to their caller, like the runtime.
var passOn = []string{
	// The framing inspector's connection wrapper: the read it passes on is
	// the server's (the inspection itself is (*inspector)).
	"github.com/scgate/scgate/proxy.(*framingConn).Read", "github.com/scgate/scgate/proxy.tlsFramingConn",
	"net/http.Header.", "net/http.(*Header)", "net/http.CanonicalHeaderKey", "net/http.cloneURL",
	"net/http.(*Request).Context", "net/http.(*Request).Clone", "net/textproto.", "net/url.", "mime.", "crypto/tls.",
	"crypto/", "vendor/golang.org/x/", "golang.org/x/crypto/"}

// tlsHandshake are the TLS handshakes, of callers' connections and of
// connections to the upstream.
var tlsHandshake = []string{"crypto/tls.(*Conn).handshakeContext", "crypto/tls.(*Conn).serverHandshake", "crypto/tls.(*Conn).clientHandshake",
	"crypto/tls.(*serverHandshakeState", "crypto/tls.(*clientHandshakeState"}

const areaTLSHandshake = "TLS handshakes"

// Runtime areas for samples no rule above names.
const (
	areaGC    = "GC (background marking)"
	areaSched = "scheduler, idle and other runtime"
)

// profileAccount is one target's CPU by area, in shares of its samples.
type profileAccount struct {
	Scenario string             `json:"scenario"`
	Target   string             `json:"target"`
	Samples  int64              `json:"samples"`
	Shares   map[string]float64 `json:"shares"`
}

// account reads a CPU profile and sums its samples by area.
func account(path string) (profileAccount, error) {
	f, err := os.Open(path)
	if err != nil {
		return profileAccount{}, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return profileAccount{}, fmt.Errorf("%s: %w", path, err)
	}
	return accountProfile(p), nil
}

// accountProfile sums p's first sample value (samples) by area.
func accountProfile(p *profile.Profile) profileAccount {
	sums := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		if len(s.Value) == 0 {
			continue
		}
		n := s.Value[0]
		total += n
		sums[areaOf(s.Location)] += n
	}
	acc := profileAccount{Samples: total, Shares: map[string]float64{}}
	for k, v := range sums {
		if total > 0 {
			acc.Shares[k] = float64(v) / float64(total)
		}
	}
	return acc
}

// areaOf is the area of one stack (leaf first, inlined frames innermost first).
func areaOf(stack []*profile.Location) string {
	var root string
	for _, loc := range stack {
		for _, line := range loc.Line {
			if line.Function == nil {
				continue
			}
			fn := line.Function.Name
			root = fn
			if hasAnyPrefix(fn, tlsHandshake) {
				// Before passOn, which skips the rest of crypto/tls: who
				// completes a handshake (net/http, or scgate's framing
				// listener) does not change its cost.
				return areaTLSHandshake
			}
			if hasAnyPrefix(fn, passOn) {
				continue
			}
			for _, a := range areas {
				for _, m := range a.match {
					if strings.HasPrefix(fn, m) {
						return a.Name
					}
				}
			}
		}
	}
	if strings.HasPrefix(root, "runtime.gcBgMarkWorker") {
		return areaGC
	}
	return areaSched
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// areaNames are the accounting's lines in report order.
func areaNames() []string {
	var out []string
	for _, a := range areas {
		out = append(out, a.Name)
	}
	return append(out, areaTLSHandshake, areaGC, areaSched)
}

// cpuPerRequest is the mean CPU per request of a target over its
// closed-loop runs in a scenario (0 without any).
func cpuPerRequest(results []result, scenario, target string) time.Duration {
	var sum time.Duration
	var n int
	for _, r := range results {
		if r.Scenario == scenario && r.Target == target && r.CPUPerReq > 0 {
			sum += r.CPUPerReq
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / time.Duration(n)
}

// profileMarkdown is the side-by-side accounting of one scenario: each
// area's share of the target's CPU and what that is in µs per request
// (share × the target's mean CPU per request in the closed-loop runs), and
// the difference between neighbouring columns: scgate-min over bare is
// what scgate's minimal pipeline costs, scgate-full over scgate-min what
// every feature on adds.
func profileMarkdown(b *strings.Builder, scenario string, accts []profileAccount, results []result) {
	var cols []profileAccount
	for _, want := range []string{"bare", "scgate-min", "scgate-full"} {
		for _, a := range accts {
			if a.Scenario == scenario && a.Target == want && a.Samples > 0 {
				cols = append(cols, a)
			}
		}
	}
	for _, a := range accts { // -variant targets and the rest, after the three
		if a.Scenario == scenario && a.Samples > 0 && !slices.Contains([]string{"bare", "scgate-min", "scgate-full"}, a.Target) {
			cols = append(cols, a)
		}
	}
	if len(cols) == 0 {
		return
	}
	cpu := make([]float64, len(cols)) // µs per request
	for i, c := range cols {
		cpu[i] = float64(cpuPerRequest(results, scenario, c.Target)) / 1e3
	}
	b.WriteString("\nCPU by area (`-profile`; each sample charged to the nearest named frame of its stack; µs/req = share × the target's mean CPU µs/req above):\n\n")
	b.WriteString("| area |")
	for _, c := range cols {
		fmt.Fprintf(b, " %s %% | %s µs/req |", c.Target, c.Target)
	}
	diffs := diffPairs(cols)
	for _, d := range diffs {
		fmt.Fprintf(b, " %s − %s µs/req |", cols[d[1]].Target, cols[d[0]].Target)
	}
	b.WriteString("\n| --- |" + strings.Repeat(" ---: | ---: |", len(cols)) + strings.Repeat(" ---: |", len(diffs)) + "\n")
	row := func(name string, share func(profileAccount) float64) {
		fmt.Fprintf(b, "| %s |", name)
		for i, c := range cols {
			fmt.Fprintf(b, " %.1f | %.1f |", 100*share(c), share(c)*cpu[i])
		}
		for _, d := range diffs {
			fmt.Fprintf(b, " %+.1f |", share(cols[d[1]])*cpu[d[1]]-share(cols[d[0]])*cpu[d[0]])
		}
		b.WriteString("\n")
	}
	for _, name := range areaNames() {
		row(name, func(a profileAccount) float64 { return a.Shares[name] })
	}
	row("**total**", func(profileAccount) float64 { return 1 })
	fmt.Fprintf(b, "\nSamples: ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s %d", c.Target, c.Samples)
	}
	b.WriteString(".\n")
}

// diffPairs are the columns compared: scgate-min to bare, scgate-full to
// scgate-min, and any other scgate target to scgate-min.
func diffPairs(cols []profileAccount) [][2]int {
	idx := map[string]int{}
	for i, c := range cols {
		idx[c.Target] = i
	}
	var out [][2]int
	add := func(from, to string) {
		i, ok1 := idx[from]
		j, ok2 := idx[to]
		if ok1 && ok2 {
			out = append(out, [2]int{i, j})
		}
	}
	add("bare", "scgate-min")
	add("scgate-min", "scgate-full")
	for _, c := range cols {
		if !slices.Contains([]string{"bare", "scgate-min", "scgate-full"}, c.Target) {
			add("scgate-min", c.Target)
		}
	}
	return out
}

// accountProfiles reads the CPU profile of every profiled target of the run
// (written when the target stopped, at the end of its scenario).
func (b *bench) accountProfiles() []profileAccount {
	var out []profileAccount
	for _, s := range b.cfg.selected() {
		for _, t := range s.Targets {
			if t != "bare" && !strings.HasPrefix(t, "scgate") {
				continue
			}
			path := profilePath(b.cfg.Out, s.Name, t)
			if _, err := os.Stat(path); err != nil {
				continue // not run (or skipped)
			}
			a, err := account(path)
			if err != nil {
				b.logf("profile of %s %s: %v", s.Name, t, err)
				continue
			}
			a.Scenario, a.Target = s.Name, t
			out = append(out, a)
		}
	}
	return out
}

// accountFolder accounts every SCENARIO-TARGET.pprof of a results folder.
func accountFolder(dir string) []profileAccount {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.pprof"))
	var out []profileAccount
	for _, path := range paths {
		scen, target, ok := strings.Cut(strings.TrimSuffix(filepath.Base(path), ".pprof"), "-")
		if !ok {
			continue
		}
		a, err := account(path)
		if err != nil {
			continue
		}
		a.Scenario, a.Target = scen, target
		out = append(out, a)
	}
	return out
}
