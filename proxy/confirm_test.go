package proxy_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
)

// forbiddenRoute is a route the broadcaster forbids to the old (active) key
// while it accepts that key everywhere else, the canary included.
const forbiddenRoute = "/api/v2/playlists/1/"

const permissionBody = `{"detail":"You do not have permission to perform this action."}`

// canaryGate sits in front of the stand-in and lets a test hold, fail or
// count the canary probes; callers' requests go straight through.
type canaryGate struct {
	si      *standin.Server
	probes  atomic.Int64
	hold    chan struct{} // nil: probes are not held
	status  int           // non-zero: probes are answered with it
	hang    bool          // probes wait until the gateway gives up
	gaveUp  chan struct{} // with hang: one value per probe the gateway gave up on
	arrived chan struct{} // one value per probe that arrived
}

func (g *canaryGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("User-Agent") != proxy.CanaryUserAgent {
		g.si.ServeHTTP(w, r)
		return
	}
	g.probes.Add(1)
	if g.arrived != nil {
		g.arrived <- struct{}{}
	}
	switch {
	case g.hang:
		<-r.Context().Done()
		g.gaveUp <- struct{}{}
		return
	case g.hold != nil:
		<-g.hold
	}
	if g.status != 0 {
		w.WriteHeader(g.status)
		return
	}
	g.si.ServeHTTP(w, r)
}

type confirmEnv struct {
	*env
	gate *canaryGate
	rej  *keyvault.Rejections
	logs *observer.ObservedLogs
}

// newConfirmEnv: both admin versions are valid at the stand-in, the old one
// is active, and forbiddenRoute is forbidden to it.
func newConfirmEnv(t *testing.T, check proxy.RejectionCheck, gate *canaryGate) confirmEnv {
	t.Helper()
	si, err := standin.New(standin.Options{
		Keys:      []string{keyOld, keyNew},
		Forbidden: []standin.Forbidden{{Key: keyOld, Method: "GET", Path: forbiddenRoute}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if gate == nil {
		gate = &canaryGate{}
	}
	gate.si = si
	rej, err := keyvault.NewRejections(keyvault.RejectionsOptions{CoolDown: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	e := newEnv(t, envOptions{upstream: gate, vault: fixedVault{parseVault(t, failoverVault)},
		logger: zap.New(core), rejections: rej, check: check})
	e.standin = si
	return confirmEnv{env: e, gate: gate, rej: rej, logs: logs}
}

func (e confirmEnv) rejections(key string) float64 {
	return failoverEnv{env: e.env}.rejections(key)
}

// sawKey reports whether any request the stand-in received, probes
// included, carried key.
func sawKey(si *standin.Server, key string) bool {
	for _, r := range si.Requests() {
		if slices.Contains(r.KeyPrefixes, keyvault.Prefix(key)) {
			return true
		}
	}
	return false
}

// TestPermission403DoesNotFlipTheKey: a caller hammering a route the
// broadcaster forbids to its key gets the broadcaster's 403 every time, and
// nothing else changes: the active version stays, no rejection is counted or
// logged, the standby is never sent, and the canary is probed at most once
// per probe interval.
func TestPermission403DoesNotFlipTheKey(t *testing.T) {
	e := newConfirmEnv(t, proxy.RejectionCheck{ProbeInterval: time.Minute}, nil)
	var wg sync.WaitGroup
	var bad atomic.Value
	for range 4 {
		wg.Go(func() {
			for range 25 {
				req, _ := http.NewRequestWithContext(context.Background(), "GET", e.gateway.URL+forbiddenRoute, nil)
				req.Header.Set("X-Test-Caller", "admin")
				req.Header.Set("X-Caller-Secret-Header", "caller-only")
				resp, err := e.gateway.Client().Do(req)
				if err != nil {
					bad.CompareAndSwap(nil, err.Error())
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Scgate-Error") != "" || string(body) != permissionBody {
					bad.CompareAndSwap(nil, resp.Status+" "+string(body))
				}
			}
		})
	}
	wg.Wait()
	if b := bad.Load(); b != nil {
		t.Fatalf("a caller did not get the broadcaster's 403 unchanged: %v", b)
	}
	if got := e.rejections(keyOld) + e.rejections(keyNew); got != 0 {
		t.Errorf("scgate_upstream_key_rejections_total = %v, want 0", got)
	}
	if e.rej.Rejected(mustVersion(t, failoverEnv{}, keyOld)) {
		t.Error("the old version was set aside")
	}
	if sawKey(e.standin, keyNew) {
		t.Error("the upstream saw the standby version")
	}
	if n := e.logs.FilterMessage(refusedLog).Len(); n != 0 {
		t.Errorf("%d refusal log lines, want none", n)
	}
	probes := canaryRequests(e.standin)
	if len(probes) != 1 {
		t.Fatalf("%d canary probes for 100 forbidden requests within one probe interval, want 1", len(probes))
	}
	p := probes[0]
	if p.Method != "GET" || p.Path != "/api/v2/playlists/" || p.RawQuery != "server=1" ||
		!slices.Equal(p.KeyPrefixes, []string{keyvault.Prefix(keyOld)}) || p.Header.Get("X-Caller-Secret-Header") != "" ||
		p.Header.Get("X-Test-Caller") != "" || p.Host != e.upstream.Listener.Addr().String() {
		t.Fatalf("the probe was %+v; want GET /api/v2/playlists/?server=1 to the upstream with the old key alone", p)
	}
	// The caller's other routes, and the key's other callers, carry on with the old key.
	if resp, body := e.do("GET", "/api/v2/playlists/?server=1", "admin", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("another route: %d %s", resp.StatusCode, body)
	}
	if last := e.lastUpstream(); !slices.Equal(last.KeyPrefixes, []string{keyvault.Prefix(keyOld)}) {
		t.Errorf("another route carried %v, want the old key still", last.KeyPrefixes)
	}
}

// TestConfirmedRevocationFailsOverInOneRequest: a real revocation is
// confirmed by the canary and the same request succeeds with the standby.
func TestConfirmedRevocationFailsOverInOneRequest(t *testing.T) {
	e := newConfirmEnv(t, proxy.RejectionCheck{}, nil)
	if resp, body := e.do("GET", "/api/v2/playlists/?server=1", "admin", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before: %d %s", resp.StatusCode, body)
	}
	e.standin.SetKeys([]string{keyNew})
	resp, body := e.do("GET", "/api/v2/playlists/3/", "admin", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the first request after the revocation: %d %s", resp.StatusCode, body)
	}
	if last := e.lastUpstream(); !slices.Equal(last.KeyPrefixes, []string{keyvault.Prefix(keyNew)}) {
		t.Errorf("it ended with %v", last.KeyPrefixes)
	}
	if e.rejections(keyOld) != 1 || !e.rej.Rejected(mustVersion(t, failoverEnv{}, keyOld)) {
		t.Error("the revoked version was not set aside and counted")
	}
	if n := len(canaryRequests(e.standin)); n != 1 {
		t.Errorf("%d probes, want 1", n)
	}
}

// TestBodyMatchSkipsTheProbe: with the panel's wording configured, a key
// refusal worded that way fails over without a probe; a permission refusal
// (other wording) is still probed and changes nothing.
func TestBodyMatchSkipsTheProbe(t *testing.T) {
	e := newConfirmEnv(t, proxy.RejectionCheck{BodyMatch: "Invalid API key."}, nil)
	if resp, body := e.do("GET", forbiddenRoute, "admin", nil, nil); resp.StatusCode != http.StatusForbidden || body != permissionBody {
		t.Fatalf("forbidden route: %d %s", resp.StatusCode, body)
	}
	if e.gate.probes.Load() != 1 || e.rejections(keyOld) != 0 {
		t.Fatalf("permission 403: %d probes, %v rejections; want 1 and 0", e.gate.probes.Load(), e.rejections(keyOld))
	}
	e.standin.SetKeys([]string{keyNew})
	if resp, body := e.do("GET", "/api/v2/playlists/3/", "admin", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the revocation: %d %s", resp.StatusCode, body)
	}
	if e.gate.probes.Load() != 1 || e.rejections(keyOld) != 1 {
		t.Fatalf("key refusal: %d probes, %v rejections; want no new probe and 1", e.gate.probes.Load(), e.rejections(keyOld))
	}
}

// TestConcurrent403sShareOneProbe: while one probe is in flight, every other
// 403 of the version waits for its verdict instead of probing again.
func TestConcurrent403sShareOneProbe(t *testing.T) {
	gate := &canaryGate{hold: make(chan struct{}), arrived: make(chan struct{}, 64)}
	e := newConfirmEnv(t, proxy.RejectionCheck{ProbeInterval: time.Minute, ProbeTimeout: time.Minute}, gate)
	const n = 20
	results := make(chan int, n)
	for range n {
		go func() {
			req, _ := http.NewRequestWithContext(context.Background(), "GET", e.gateway.URL+forbiddenRoute, nil)
			req.Header.Set("X-Test-Caller", "admin")
			resp, err := e.gateway.Client().Do(req)
			if err != nil {
				results <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	select {
	case <-gate.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no canary probe within 10s of the 403s")
	}
	waitFor(t, "every request answered 403 by the broadcaster", 10*time.Second, func() bool {
		return len(callerRequests(e.standin)) == n
	})
	close(gate.hold)
	for range n {
		if code := <-results; code != http.StatusForbidden {
			t.Fatalf("a caller got %d, want the broadcaster's 403", code)
		}
	}
	if got := gate.probes.Load(); got != 1 {
		t.Fatalf("%d probes for %d concurrent 403s, want 1", got, n)
	}
	if e.rejections(keyOld) != 0 || sawKey(e.standin, keyNew) {
		t.Fatal("a permission refusal set the key aside")
	}
}

// TestFailedProbeKeepsTheKey: a probe that hangs, or that gets an answer
// other than 2xx or 403, proves nothing: the caller gets the 403 (within the
// probe timeout), the version stays, nothing is counted, the standby is not
// sent, and the failed verdict is reused for the probe interval.
func TestFailedProbeKeepsTheKey(t *testing.T) {
	const timeout = 300 * time.Millisecond
	cases := map[string]*canaryGate{
		"hangs":  {hang: true, gaveUp: make(chan struct{}, 4)},
		"errors": {status: http.StatusInternalServerError},
	}
	for name, gate := range cases {
		t.Run(name, func(t *testing.T) {
			e := newConfirmEnv(t, proxy.RejectionCheck{ProbeTimeout: timeout, ProbeInterval: time.Minute}, gate)
			e.standin.SetKeys([]string{keyNew}) // even a real revocation is not acted on unconfirmed
			for i := range 3 {
				start := time.Now()
				resp, body := e.do("GET", "/api/v2/playlists/3/", "admin", nil, nil)
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Scgate-Error") != "" || !strings.Contains(body, "Invalid API key.") {
					t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
				}
				if d := time.Since(start); d > timeout+5*time.Second {
					t.Fatalf("request %d took %v; the probe timeout is %v", i, d, timeout)
				}
			}
			if gate.hang {
				<-gate.gaveUp // the probe's own deadline ended it
			}
			if got := gate.probes.Load(); got != 1 {
				t.Errorf("%d probes, want 1 (the failed verdict is reused)", got)
			}
			if e.rejections(keyOld) != 0 || e.rej.Rejected(mustVersion(t, failoverEnv{}, keyOld)) || sawKey(e.standin, keyNew) {
				t.Error("an unconfirmed 403 set the version aside")
			}
			if e.logs.FilterMessageSnippet("could not tell whether the key itself was refused").Len() != 1 {
				t.Error("the failed probe was not logged once")
			}
		})
	}
}

func TestParseCanary(t *testing.T) {
	good := map[string]proxy.Canary{
		proxy.DefaultCanary:         {Method: "GET", Path: "/api/v2/playlists/", RawQuery: "server=1"},
		"HEAD /api/v2/playlists/3/": {Method: "HEAD", Path: "/api/v2/playlists/3/"},
	}
	for in, want := range good {
		if got, err := proxy.ParseCanary(in); err != nil || got != want {
			t.Errorf("ParseCanary(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GET", "POST /api/v2/playlists/", "GET api/v2/", "GET http://evil.example/api/v2/",
		"GET //evil.example/api/v2/", "GET /api/v2/../x/", "GET /api/v2/#frag", "get /api/v2/history/"} {
		if _, err := proxy.ParseCanary(in); err == nil {
			t.Errorf("ParseCanary(%q) was accepted", in)
		}
	}
}
