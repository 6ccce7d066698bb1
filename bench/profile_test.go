package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// testProfile builds a CPU profile whose samples have the given stacks
// (leaf first) and counts.
func testProfile(stacks map[string]int64) *profile.Profile {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}}}
	funcs := map[string]*profile.Function{}
	for stack, n := range stacks {
		var locs []*profile.Location
		for _, name := range strings.Split(stack, ";") {
			f := funcs[name]
			if f == nil {
				f = &profile.Function{ID: uint64(len(funcs) + 1), Name: name}
				funcs[name] = f
				p.Function = append(p.Function, f)
			}
			loc := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: f}}}
			p.Location = append(p.Location, loc)
			locs = append(locs, loc)
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: locs, Value: []int64{n}})
	}
	return p
}

// Each sample goes to the nearest frame a rule names: an allocation to the
// stage that asked for it, a header helper to its caller, runtime-only
// stacks to the runtime's areas.
func TestAccountChargesTheNearestNamedFrame(t *testing.T) {
	p := testProfile(map[string]int64{
		"runtime.mallocgc;github.com/scgate/scgate/proxy.(*Handler).observe;github.com/scgate/scgate/proxy.(*Handler).ServeHTTP;net/http.(*conn).serve":                                           2,
		"net/http.Header.Clone;net/http/httputil.(*ReverseProxy).ServeHTTP;net/http.(*conn).serve":                                                                                                3,
		"syscall.Syscall;internal/poll.(*FD).Write;net.(*conn).Write;bufio.(*Writer).Flush;net/http.(*persistConn).writeLoop":                                                                     4,
		"runtime.scanobject;runtime.gcDrain;runtime.gcBgMarkWorker":                                                                                                                               1,
		"runtime.findRunnable;runtime.schedule;runtime.mcall":                                                                                                                                     5,
		"github.com/prometheus/client_golang/prometheus.(*histogram).Observe;github.com/scgate/scgate/metrics.(*Metrics).Request":                                                                 1,
		"crypto/tls.(*Conn).Write;net/http.(*persistConn).writeLoop":                                                                                                                              2,
		"crypto/tls.(*Conn).Read;net/http.(*connReader).Read;net/http.(*conn).serve":                                                                                                              2,
		"crypto/internal/fips140/ecdh.X25519;crypto/tls.(*serverHandshakeStateTLS13).handshake;crypto/tls.(*Conn).serverHandshake;github.com/scgate/scgate/proxy.(*framingListener).handshakeTLS": 2,
		"syscall.Syscall;net.(*conn).Read;github.com/scgate/scgate/proxy.(*framingConn).Read;net/http.(*connReader).Read;net/http.(*conn).serve":                                                  3,
		"github.com/scgate/scgate/proxy.(*inspector).feed;github.com/scgate/scgate/proxy.(*framingConn).Read;net/http.(*connReader).Read":                                                         1,
	})
	a := accountProfile(p)
	if a.Samples != 26 {
		t.Fatalf("%d samples", a.Samples)
	}
	// Of 26: the framing wrapper's read syscalls are the server's; only the
	// inspection itself is the inspector's; a handshake is a handshake,
	// whoever completes it.
	const n = 26.0
	want := map[string]float64{
		"access log": 2 / n, "httputil.ReverseProxy": 3 / n, "http.Transport (upstream side)": 6 / n, areaTLSHandshake: 2 / n,
		areaGC: 1 / n, areaSched: 5 / n, "metrics": 1 / n, "net/http server": 5 / n, "framing inspector": 1 / n,
	}
	for k, v := range want {
		if got := a.Shares[k]; got < v-1e-9 || got > v+1e-9 {
			t.Errorf("%s: %.2f, want %.2f", k, got, v)
		}
	}
	var sum float64
	for _, v := range a.Shares {
		sum += v
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("shares add up to %f", sum)
	}
}

// The accounting reads a real profile file, and the table shows each
// target's µs per area and the differences the report explains.
func TestProfileFileAndTable(t *testing.T) {
	var buf bytes.Buffer
	if err := testProfile(map[string]int64{"net/http.(*conn).serve": 1, "main.runBare": 1}).Write(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sidecar-bare.pprof")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	bare, err := account(path)
	if err != nil {
		t.Fatal(err)
	}
	if all := accountFolder(filepath.Dir(path)); len(all) != 1 || all[0].Scenario != "sidecar" || all[0].Target != "bare" || all[0].Samples != 2 {
		t.Errorf("folder accounted as %+v", all)
	}
	bare.Scenario, bare.Target = "sidecar", "bare"
	min := profileAccount{Scenario: "sidecar", Target: "scgate-min", Samples: 10,
		Shares: map[string]float64{"net/http server": 0.5, "framing inspector": 0.25, "metrics": 0.25}}
	results := []result{
		{Scenario: "sidecar", Target: "bare", Conns: 32, CPUPerReq: 40 * time.Microsecond},
		{Scenario: "sidecar", Target: "bare", Conns: 256, CPUPerReq: 60 * time.Microsecond},
		{Scenario: "sidecar", Target: "scgate-min", Conns: 32, CPUPerReq: 80 * time.Microsecond},
	}
	var b strings.Builder
	profileMarkdown(&b, "sidecar", []profileAccount{min, bare}, results)
	md := b.String()
	for _, want := range []string{
		"| area | bare % | bare µs/req | scgate-min % | scgate-min µs/req | scgate-min − bare µs/req |",
		"| net/http server | 50.0 | 25.0 | 50.0 | 40.0 | +15.0 |",
		"| framing inspector | 0.0 | 0.0 | 25.0 | 20.0 | +20.0 |",
		"| bare proxy's own code | 50.0 | 25.0 | 0.0 | 0.0 | -25.0 |",
		"| **total** | 100.0 | 50.0 | 100.0 | 80.0 | +30.0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("lacks %q:\n%s", want, md)
		}
	}
	if _, err := account(filepath.Join(t.TempDir(), "none.pprof")); err == nil {
		t.Error("a missing profile was read")
	}
}
