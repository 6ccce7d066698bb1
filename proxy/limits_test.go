package proxy_test

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

// sharedVault has two callers on one key, and a third on its own.
const sharedVault = `
[callers]
"a" = "shared"
"b" = "shared"
"solo" = "solo"

[[keys.shared]]
secret = "` + keyAdmin + `"

[[keys.solo]]
secret = "` + keyReader + `"
`

func newLimiter(t testing.TB, lim ratelimit.Limits) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(ratelimit.Options{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// slowUpstream holds every request until release is closed, and reports
// each arrival.
type slowUpstream struct {
	arrived chan string
	release chan struct{}
}

func newSlowUpstream() *slowUpstream {
	return &slowUpstream{arrived: make(chan string, 16), release: make(chan struct{})}
}

func (s *slowUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.arrived <- r.Header.Get("X-Request-Id")
	<-s.release
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// get sends a GET as caller from a goroutine and delivers the status.
func (e *env) getAsync(caller string) <-chan *http.Response {
	out := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", e.gateway.URL+"/api/v2/history/", nil)
		req.Header.Set("X-Test-Caller", caller)
		resp, err := e.gateway.Client().Do(req)
		if err != nil {
			out <- nil
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out <- resp
	}()
	return out
}

func TestConcurrencyCapRejectsExactlyTheExtraRequest(t *testing.T) {
	up := newSlowUpstream()
	e := newEnv(t, envOptions{upstream: up, limiter: newLimiter(t, ratelimit.Limits{Caller: ratelimit.CallerLimits{Concurrency: 3}})})
	var inflight []<-chan *http.Response
	for range 3 {
		inflight = append(inflight, e.getAsync("admin"))
		<-up.arrived // the request holds its place at the upstream
	}
	resp, body := e.do("GET", "/api/v2/history/", "admin", nil, nil)
	checkGatewayError(t, resp, body, proxy.CodeRateLimited, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") != "1" || resp.Header.Get("RateLimit") != `"concurrency";r=0` {
		t.Fatalf("Retry-After %q, RateLimit %q", resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit"))
	}
	close(up.release)
	for i, c := range inflight {
		if r := <-c; r == nil || r.StatusCode != http.StatusOK {
			t.Fatalf("in-flight request %d did not succeed: %v", i, r)
		}
	}
	if got := testutil.ToFloat64(e.metrics.RateLimitedTotal.WithLabelValues("admin", "caller")); got != 1 {
		t.Fatalf("scgate_rate_limited_total{caller=admin,scope=caller} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.metrics.GatewayErrors.WithLabelValues(proxy.CodeRateLimited)); got != 1 {
		t.Fatalf("scgate_gateway_errors_total{code=rate_limited} = %v, want 1", got)
	}
	// The places were given back.
	if resp, _ := e.do("GET", "/api/v2/history/", "admin", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the slow requests: %d", resp.StatusCode)
	}
}

func TestConcurrencyCapQueuesInWaitMode(t *testing.T) {
	up := newSlowUpstream()
	e := newEnv(t, envOptions{upstream: up, limiter: newLimiter(t, ratelimit.Limits{
		Caller: ratelimit.CallerLimits{Concurrency: 2, Mode: ratelimit.Wait, MaxWait: time.Minute},
	})})
	first := []<-chan *http.Response{e.getAsync("admin"), e.getAsync("admin")}
	<-up.arrived
	<-up.arrived
	extra := e.getAsync("admin") // queued at the gateway, not refused
	// Evidence that it is queued: a goroutine waits in the limiter for a
	// place. While it does, it cannot have reached the upstream.
	waitForStack(t, "ratelimit.(*Limiter).acquireSlot")
	select {
	case id := <-up.arrived:
		t.Fatalf("a third request (%s) reached the upstream while two were in flight", id)
	case r := <-extra:
		t.Fatalf("the queued request was answered %v before a place was free", r.StatusCode)
	default:
	}
	close(up.release)
	for _, c := range append(first, extra) {
		if r := <-c; r == nil || r.StatusCode != http.StatusOK {
			t.Fatalf("a request failed: %v", r)
		}
	}
	if got := testutil.ToFloat64(e.metrics.RateLimitedTotal.WithLabelValues("admin", "caller")); got != 0 {
		t.Fatalf("%v requests were refused in wait mode", got)
	}
}

func TestKeyBucketIsSharedAcrossCallersAtTheGateway(t *testing.T) {
	e := newEnv(t, envOptions{
		vault:   fixedVault{parseVault(t, sharedVault)},
		limiter: newLimiter(t, ratelimit.Limits{Key: ratelimit.Bucket{Rate: 0.5, Burst: 1}}),
	})
	resp, _ := e.do("GET", "/api/v2/history/", "a", nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("RateLimit") != `"key";r=0;t=2` {
		t.Fatalf("first: %d, RateLimit %q", resp.StatusCode, resp.Header.Get("RateLimit"))
	}
	resp, body := e.do("GET", "/api/v2/history/", "b", nil, nil)
	checkGatewayError(t, resp, body, proxy.CodeRateLimited, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") != "2" || !strings.Contains(body, `key \"shared\"`) {
		t.Fatalf("Retry-After %q: %s", resp.Header.Get("Retry-After"), body)
	}
	if got := testutil.ToFloat64(e.metrics.RateLimitedTotal.WithLabelValues("b", "key")); got != 1 {
		t.Fatalf("scgate_rate_limited_total{caller=b,scope=key} = %v", got)
	}
	if resp, _ := e.do("GET", "/api/v2/history/", "solo", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a caller of another key: %d", resp.StatusCode)
	}
}

func TestUpstream429PausesTheKeyForEveryCaller(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		switch {
		case n == 1:
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		case r.URL.Path == "/api/v2/channels/":
			w.WriteHeader(http.StatusServiceUnavailable) // no Retry-After: no pause
		default:
			_, _ = io.WriteString(w, "{}")
		}
	})
	e := newEnv(t, envOptions{
		upstream: up,
		vault:    fixedVault{parseVault(t, sharedVault)},
		limiter:  newLimiter(t, ratelimit.Limits{}),
	})
	resp, _ := e.do("GET", "/api/v2/history/", "a", nil, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Scgate-Error") != "" {
		t.Fatalf("the broadcaster's 429 did not pass through unchanged: %d %q", resp.StatusCode, resp.Header.Get("Scgate-Error"))
	}
	// Another caller of the same key is held back by scgate itself.
	resp, body := e.do("GET", "/api/v2/history/", "b", nil, nil)
	checkGatewayError(t, resp, body, proxy.CodeRateLimited, http.StatusTooManyRequests)
	if ra := resp.Header.Get("Retry-After"); ra != "30" && ra != "29" {
		t.Fatalf("Retry-After %q, want the broadcaster's 30s", ra)
	}
	if !strings.Contains(body, "asked scgate to slow down") {
		t.Fatalf("message: %s", body)
	}
	mu.Lock()
	if calls != 1 {
		t.Fatalf("the broadcaster was called %d times, want once", calls)
	}
	mu.Unlock()
	// Another key is not paused; a 503 without Retry-After pauses nothing.
	if resp, _ := e.do("GET", "/api/v2/channels/", "solo", nil, nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("solo: %d", resp.StatusCode)
	}
	if resp, _ := e.do("GET", "/api/v2/history/", "solo", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("solo after a 503 without Retry-After: %d", resp.StatusCode)
	}
}

func TestAllowedAnswersCarryRateLimit(t *testing.T) {
	e := newEnv(t, envOptions{limiter: newLimiter(t, ratelimit.Limits{
		Caller: ratelimit.CallerLimits{Bucket: ratelimit.Bucket{Rate: 1, Burst: 5}},
	})})
	resp, body := e.do("GET", "/api/v2/history/", "admin", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("RateLimit-Policy") != `"caller";q=5;w=5` || resp.Header.Get("RateLimit") != `"caller";r=4;t=1` {
		t.Fatalf("RateLimit-Policy %q, RateLimit %q", resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
	}
}

func TestWaitModeDelaysInsteadOfRefusing(t *testing.T) {
	e := newEnv(t, envOptions{limiter: newLimiter(t, ratelimit.Limits{
		Caller: ratelimit.CallerLimits{Bucket: ratelimit.Bucket{Rate: 20, Burst: 1}, Mode: ratelimit.Wait, MaxWait: 5 * time.Second},
	})})
	for i := range 4 {
		if resp, body := e.do("GET", "/api/v2/history/", "admin", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	// Past max_wait it is a 429 after all.
	short := newEnv(t, envOptions{limiter: newLimiter(t, ratelimit.Limits{
		Caller: ratelimit.CallerLimits{Bucket: ratelimit.Bucket{Rate: 0.1, Burst: 1}, Mode: ratelimit.Wait, MaxWait: time.Second},
	})})
	short.do("GET", "/api/v2/history/", "admin", nil, nil)
	resp, body := short.do("GET", "/api/v2/history/", "admin", nil, nil)
	checkGatewayError(t, resp, body, proxy.CodeRateLimited, http.StatusTooManyRequests)
}

// waitForStack waits until some goroutine is in fn: evidence that a request
// is queued, rather than a sleep that hopes it is.
func waitForStack(t *testing.T, fn string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for !strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn) {
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine reached %s", fn)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
}
