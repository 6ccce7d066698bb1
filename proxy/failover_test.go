package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
)

// Two versions of the admin key: "old" is active (it has the later
// not_before, as when ops list the new key as a standby first), "new" is its
// standby.
const (
	keyOld = "TestOld1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	keyNew = "TestNew1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
)

const failoverVault = `
[callers]
"admin" = "admin"

[[keys.admin]]
secret = "` + keyNew + `"

[[keys.admin]]
secret = "` + keyOld + `"
not_before = 2020-01-01T00:00:00Z
`

const refusedLog = "the broadcaster refused a key version (403); requests use a standby version until the cool-down ends. If the key was revoked, remove it from the vault"

type failoverEnv struct {
	*env
	logs *observer.ObservedLogs
	rej  *keyvault.Rejections
}

func newFailoverEnv(t *testing.T, vault string, replayBody int64, keys ...string) failoverEnv {
	t.Helper()
	si, err := standin.New(standin.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	rej, err := keyvault.NewRejections(keyvault.RejectionsOptions{CoolDown: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	e := newEnv(t, envOptions{
		upstream: si, vault: fixedVault{parseVault(t, vault)}, logger: zap.New(core),
		rejections: rej, replayBody: replayBody,
	})
	e.standin = si
	return failoverEnv{env: e, logs: logs, rej: rej}
}

func (e failoverEnv) rejections(key string) float64 {
	return testutil.ToFloat64(e.metrics.KeyRejections.WithLabelValues(keyvault.DefaultPanel, "admin", keyvault.Prefix(key)))
}

// TestRevocationTooEarly: ops revoke the active version in the panel while
// callers are busy. Every caller request still succeeds (in-flight ones are
// retried with the standby, later ones carry it from the start), and the
// refusal is counted and logged once.
func TestRevocationTooEarly(t *testing.T) {
	e := newFailoverEnv(t, failoverVault, 0, keyOld, keyNew)
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for n := range 6 {
		wg.Go(func() {
			client := e.gateway.Client()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A mix of reads and small creates (whose bodies are replayed).
				var req *http.Request
				if (n+i)%3 == 0 {
					req, _ = http.NewRequest("POST", e.gateway.URL+"/api/v2/playlists/",
						strings.NewReader(fmt.Sprintf(`{"name":"load %d-%d","is_random":true,"server":1}`, n, i)))
					req.Header.Set("Content-Type", "application/json")
				} else {
					req, _ = http.NewRequest("GET", e.gateway.URL+"/api/v2/playlists/?server=1", nil)
				}
				req.Header.Set("X-Test-Caller", "admin")
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", req.Method, resp.StatusCode, body))
				}
			}
		})
	}
	// Let the load run on the old key, then revoke it mid-load.
	waitFor(t, "load on the old key", 10*time.Second, func() bool { return countCarrying(e.standin, keyOld) >= 50 })
	e.standin.SetKeys([]string{keyNew})
	waitFor(t, "load on the new key", 10*time.Second, func() bool { return countCarrying(e.standin, keyNew) >= 200 })
	close(stop)
	wg.Wait()

	if failed.Load() != 0 {
		t.Fatalf("%d of %d caller requests failed; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	refused := 0
	for _, r := range callerRequests(e.standin) {
		if !r.Accepted {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("the stand-in never refused the old key: the test did not exercise the failover")
	}
	if got := e.rejections(keyOld); got != 1 {
		t.Errorf("scgate_upstream_key_rejections_total{prefix=%q} = %v, want 1", keyvault.Prefix(keyOld), got)
	}
	if got := e.rejections(keyNew); got != 0 {
		t.Errorf("the standby was counted as refused %v times", got)
	}
	lines := e.logs.FilterMessage(refusedLog).All()
	if len(lines) != 1 {
		t.Fatalf("%d refusal log lines, want 1", len(lines))
	}
	if f := lines[0].ContextMap(); f["prefix"] != keyvault.Prefix(keyOld) || f["standby"] != keyvault.Prefix(keyNew) || f["key"] != "admin" {
		t.Errorf("refusal log fields = %v", f)
	}
	retried := e.logs.FilterField(zap.String("refused_key_prefix", keyvault.Prefix(keyOld))).Len()
	for _, entry := range e.logs.All() {
		if s := fmt.Sprint(entry.Message, entry.ContextMap()); strings.Contains(s, "FAKEfake") {
			t.Fatalf("a log line holds a secret: %s", s)
		}
	}
	t.Logf("%d caller requests, %d refused upstream and retried (%d access-log lines say so), 0 failures", sent.Load(), refused, retried)
	if retried != refused {
		t.Errorf("%d refusals upstream but %d retried requests in the access log", refused, retried)
	}
}

// callerRequests is what the stand-in received on callers' behalf, without
// the canary probes that confirmed a refusal.
func callerRequests(si *standin.Server) []standin.Request {
	var out []standin.Request
	for _, r := range si.Requests() {
		if r.Header.Get("User-Agent") != proxy.CanaryUserAgent {
			out = append(out, r)
		}
	}
	return out
}

// canaryRequests is the canary probes the stand-in received.
func canaryRequests(si *standin.Server) []standin.Request {
	var out []standin.Request
	for _, r := range si.Requests() {
		if r.Header.Get("User-Agent") == proxy.CanaryUserAgent {
			out = append(out, r)
		}
	}
	return out
}

func countCarrying(si *standin.Server, key string) int {
	n := 0
	for _, r := range callerRequests(si) {
		if slices.Equal(r.KeyPrefixes, []string{keyvault.Prefix(key)}) {
			n++
		}
	}
	return n
}

// TestNonReplayablePostGets403: a body over the replay limit cannot be sent
// twice, so the broadcaster's 403 reaches the caller unchanged, with no
// retry. The version is still set aside for the next requests.
func TestNonReplayablePostGets403(t *testing.T) {
	e := newFailoverEnv(t, failoverVault, 16, keyNew)
	body := `{"name":"a name longer than sixteen bytes","is_random":true,"server":1}`
	resp, got := e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader(body), http.Header{"Content-Type": {"application/json"}})
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Scgate-Error") != "" || !strings.Contains(got, `"detail"`) {
		t.Fatalf("got %d (Scgate-Error %q) %s; want the broadcaster's 403", resp.StatusCode, resp.Header.Get("Scgate-Error"), got)
	}
	reqs := callerRequests(e.standin)
	if len(reqs) != 1 || !slices.Equal(reqs[0].KeyPrefixes, []string{keyvault.Prefix(keyOld)}) {
		t.Fatalf("the stand-in saw %d requests (%v); want exactly one, with the old key", len(reqs), reqs)
	}
	if e.rejections(keyOld) != 1 || !e.rej.Rejected(mustVersion(t, e, keyOld)) {
		t.Error("the refused version was not set aside")
	}
	// The next request carries the standby from the start.
	if resp, got := e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader(body), http.Header{"Content-Type": {"application/json"}}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the next POST: %d %s", resp.StatusCode, got)
	}
	if last := e.lastUpstream(); !slices.Equal(last.KeyPrefixes, []string{keyvault.Prefix(keyNew)}) {
		t.Errorf("the next POST carried %v", last.KeyPrefixes)
	}
}

func mustVersion(t *testing.T, e failoverEnv, secret string) *keyvault.Version {
	t.Helper()
	for _, v := range parseVault(t, failoverVault).Key("admin").Versions {
		if v.Secret.Value() == secret {
			return v
		}
	}
	t.Fatalf("no version %s", keyvault.Prefix(secret))
	return nil
}

// TestSmallBodiesAreReplayed: a POST within the replay limit, sized or
// chunked, is retried with the standby and arrives whole.
func TestSmallBodiesAreReplayed(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			e := newFailoverEnv(t, failoverVault, 0, keyNew)
			const body = `{"name":"Replayed","is_random":false,"server":1}`
			var r io.Reader = strings.NewReader(body)
			if chunked {
				r = io.MultiReader(strings.NewReader(body[:10]), strings.NewReader(body[10:])) // no length known
			}
			resp, got := e.do("POST", "/api/v2/playlists/", "admin", r, http.Header{"Content-Type": {"application/json"}})
			if resp.StatusCode != http.StatusCreated || !strings.Contains(got, `"name":"Replayed"`) {
				t.Fatalf("got %d %s", resp.StatusCode, got)
			}
			reqs := callerRequests(e.standin)
			if len(reqs) != 2 || reqs[0].Accepted || !reqs[1].Accepted ||
				!slices.Equal(reqs[1].KeyPrefixes, []string{keyvault.Prefix(keyNew)}) {
				t.Fatalf("the stand-in saw %v", reqs)
			}
		})
	}
}

// TestNoStandbyLeft: with one version, or both refused, the broadcaster's 403
// passes through, after at most one retry.
func TestNoStandbyLeft(t *testing.T) {
	t.Run("one version", func(t *testing.T) {
		e := newFailoverEnv(t, "[callers]\n\"admin\" = \"admin\"\n[[keys.admin]]\nsecret = \""+keyOld+"\"\n", 0)
		for i := range 2 {
			resp, got := e.do("GET", "/api/v2/playlists/", "admin", nil, nil)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Scgate-Error") != "" {
				t.Fatalf("request %d: %d %s", i, resp.StatusCode, got)
			}
		}
		// Each request was sent once, with the only key there is.
		if n := len(callerRequests(e.standin)); n != 2 {
			t.Errorf("the stand-in saw %d requests, want 2", n)
		}
		if e.rejections(keyOld) != 1 {
			t.Errorf("rejections counted %v times, want once per cool-down", e.rejections(keyOld))
		}
	})
	t.Run("both refused", func(t *testing.T) {
		e := newFailoverEnv(t, failoverVault, 0)
		resp, got := e.do("GET", "/api/v2/playlists/", "admin", nil, nil)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Scgate-Error") != "" {
			t.Fatalf("%d %s", resp.StatusCode, got)
		}
		reqs := callerRequests(e.standin)
		if len(reqs) != 2 || !slices.Equal(reqs[0].KeyPrefixes, []string{keyvault.Prefix(keyOld)}) ||
			!slices.Equal(reqs[1].KeyPrefixes, []string{keyvault.Prefix(keyNew)}) {
			t.Fatalf("the stand-in saw %v; want the old key, then the new one, then nothing", reqs)
		}
		if e.rejections(keyOld) != 1 || e.rejections(keyNew) != 1 {
			t.Errorf("rejections: old %v, new %v", e.rejections(keyOld), e.rejections(keyNew))
		}
	})
}

// TestOtherStatusesAreNotRetried: only a 403 means "this key is refused".
func TestOtherStatusesAreNotRetried(t *testing.T) {
	var calls atomic.Int64
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	})
	e := newEnv(t, envOptions{upstream: up, vault: fixedVault{parseVault(t, failoverVault)}})
	if resp, _ := e.do("GET", "/api/v2/playlists/", "admin", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if calls.Load() != 1 {
		t.Errorf("the upstream was called %d times", calls.Load())
	}
}
