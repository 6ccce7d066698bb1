package proxy_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scgate/scgate/metrics"
	"github.com/scgate/scgate/proxy/cache"
	"github.com/scgate/scgate/proxy/policy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

// newCache builds a cache with rules written as the config writes them
// ("GET /api/v2/history/" → ttl); shared lists the shared rules.
func newCache(t testing.TB, o cache.Options, ttl map[string]time.Duration, shared ...string) *cache.Cache {
	t.Helper()
	for route, d := range ttl {
		r, err := policy.ParseRule(route)
		if err != nil {
			t.Fatal(err)
		}
		isShared := false
		for _, s := range shared {
			isShared = isShared || s == route
		}
		o.Rules = append(o.Rules, cache.Rule{Route: r, TTL: d, Shared: isShared})
	}
	c, err := cache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// upstreamCounter is a broadcaster that counts requests by path and answers
// with what answer writes.
type upstreamCounter struct {
	mu     sync.Mutex
	counts map[string]int
	keys   []string // SC-API-KEY of each request
	answer func(w http.ResponseWriter, r *http.Request)
}

func (u *upstreamCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	if u.counts == nil {
		u.counts = map[string]int{}
	}
	u.counts[r.URL.Path]++
	u.keys = append(u.keys, r.Header.Get("SC-API-KEY"))
	u.mu.Unlock()
	if u.answer != nil {
		u.answer(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"count":0,"next":null,"previous":null,"results":[],"key":"` + r.Header.Get("SC-API-KEY")[:8] + `"}`))
}

func (u *upstreamCounter) count(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[path]
}

const history = "/api/v2/history/"

func TestCacheHitSparesTheUpstreamAndSaysSo(t *testing.T) {
	up := &upstreamCounter{}
	m := metrics.New()
	c := newCache(t, cache.Options{Metrics: m}, map[string]time.Duration{"GET " + history: time.Minute})
	e := newEnv(t, envOptions{upstream: up, cache: c, metrics: m})
	resp, first := e.do("GET", history+"?limit=1&server=1", "reader", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Status") != "scgate; fwd=miss; stored" {
		t.Fatalf("first: %d %q", resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
	resp, second := e.do("GET", history+"?limit=1&server=1", "reader", nil, nil)
	if cs := resp.Header.Get("Cache-Status"); !strings.HasPrefix(cs, "scgate; hit; ttl=") {
		t.Fatalf("second Cache-Status %q", cs)
	}
	if resp.Header.Get("Age") == "" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("a hit lacks Age or X-Request-Id: %v", resp.Header)
	}
	if first != second || up.count(history) != 1 {
		t.Fatalf("upstream saw %d requests; bodies %q %q", up.count(history), first, second)
	}
	// Another query is another entry.
	e.do("GET", history+"?limit=2&server=1", "reader", nil, nil)
	if up.count(history) != 2 {
		t.Fatalf("another query was answered from the cache")
	}
	if v := testutil.ToFloat64(e.metrics.CacheLookups.WithLabelValues("hit")); v != 1 {
		t.Fatalf("hits = %v", v)
	}
	// A route without a rule is not cached, and says nothing.
	for range 2 {
		resp, _ = e.do("GET", "/api/v2/channels/", "reader", nil, nil)
	}
	if up.count("/api/v2/channels/") != 2 || resp.Header.Get("Cache-Status") != "" {
		t.Fatalf("an uncached route: %d upstream requests, Cache-Status %q", up.count("/api/v2/channels/"), resp.Header.Get("Cache-Status"))
	}
}

// Threat: cache poisoning across keys. Without shared = true, each vault
// key has its own entries: one key's answer never reaches another's callers.
func TestCacheEntriesArePerKeyUnlessShared(t *testing.T) {
	up := &upstreamCounter{}
	c := newCache(t, cache.Options{}, map[string]time.Duration{
		"GET " + history:        time.Minute,
		"GET /api/v2/channels/": time.Minute,
	}, "GET /api/v2/channels/")
	e := newEnv(t, envOptions{upstream: up, cache: c})
	_, a := e.do("GET", history, "admin", nil, nil)
	_, r := e.do("GET", history, "reader", nil, nil)
	if !strings.Contains(a, `"key":"TestAdm1"`) || !strings.Contains(r, `"key":"TestRdr1"`) || up.count(history) != 2 {
		t.Fatalf("per-key route: admin got %s, reader got %s, upstream saw %d", a, r, up.count(history))
	}
	e.do("GET", "/api/v2/channels/", "admin", nil, nil)
	resp, _ := e.do("GET", "/api/v2/channels/", "reader", nil, nil)
	if up.count("/api/v2/channels/") != 1 || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "scgate; hit") {
		t.Fatalf("shared route: upstream saw %d, Cache-Status %q", up.count("/api/v2/channels/"), resp.Header.Get("Cache-Status"))
	}
}

// Threat: poisoning across panels. Two gateways on one cache, for two
// panels, never answer each other's requests.
func TestCacheEntriesArePerPanel(t *testing.T) {
	upA, upB := &upstreamCounter{}, &upstreamCounter{}
	c := newCache(t, cache.Options{}, map[string]time.Duration{"GET " + history: time.Minute}, "GET "+history)
	a := newEnv(t, envOptions{upstream: upA, cache: c, panel: "a"})
	b := newEnv(t, envOptions{upstream: upB, cache: c, panel: "b"})
	a.do("GET", history, "reader", nil, nil)
	resp, _ := b.do("GET", history, "reader", nil, nil)
	if upB.count(history) != 1 || resp.Header.Get("Cache-Status") != "scgate; fwd=miss; stored" {
		t.Fatalf("panel b answered from panel a's entry: %q", resp.Header.Get("Cache-Status"))
	}
}

// Threat: a caller reading a cached answer its policy forbids, or past its
// limits. The cache is after the decision, so neither can happen.
func TestCacheHitStillRunsPolicyAndLimits(t *testing.T) {
	up := &upstreamCounter{}
	c := newCache(t, cache.Options{}, map[string]time.Duration{"GET " + history: time.Minute}, "GET "+history)
	pol := holderOf(t, policy.Options{
		Sets:    map[string][]string{"all": {"GET /api/v2/**"}, "none": {"GET /api/v2/channels/"}},
		Callers: map[string]string{"admin": "all", "reader": "none"},
	})
	lim, err := ratelimit.New(ratelimit.Options{Limits: ratelimit.Limits{Caller: ratelimit.CallerLimits{Bucket: ratelimit.Bucket{Rate: 0.001, Burst: 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{upstream: up, cache: c, policy: pol, limiter: lim})
	if resp, _ := e.do("GET", history, "admin", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("admin: %d", resp.StatusCode)
	}
	resp, body := e.do("GET", history, "reader", nil, nil)
	checkGatewayError(t, resp, body, "forbidden", http.StatusForbidden)
	if resp.Header.Get("Cache-Status") != "" {
		t.Fatal("a refused request went by the cache")
	}
	e.do("GET", history, "admin", nil, nil) // a hit, spending the second token
	resp, body = e.do("GET", history, "admin", nil, nil)
	checkGatewayError(t, resp, body, "rate_limited", http.StatusTooManyRequests)
	if up.count(history) != 1 {
		t.Fatalf("upstream saw %d", up.count(history))
	}
}

func TestCacheHonoursTheBroadcastersDirectives(t *testing.T) {
	cases := []struct {
		name   string
		header map[string]string
		status int
		shared bool
		stored bool
		detail string
	}{
		{"no-store", map[string]string{"Cache-Control": "no-store"}, 200, false, false, "no-store"},
		{"no-cache", map[string]string{"Cache-Control": "no-cache"}, 200, false, false, "no-cache"},
		{"private in a shared entry", map[string]string{"Cache-Control": "private"}, 200, true, false, "private"},
		{"private in a key's entry", map[string]string{"Cache-Control": "private"}, 200, false, true, ""},
		{"max-age=0", map[string]string{"Cache-Control": "max-age=0"}, 200, false, false, "max-age"},
		{"set-cookie", map[string]string{"Set-Cookie": "sessionid=x"}, 200, false, false, "set-cookie"},
		{"vary star", map[string]string{"Vary": "*"}, 200, false, false, "vary-star"},
		{"404", nil, 404, false, true, ""},
		{"204", nil, 204, false, true, ""},
		// Threat: cached error bodies. Errors are never stored.
		{"500", nil, 500, false, false, "status"},
		{"403", nil, 403, true, false, "status"},
		{"429", map[string]string{"Retry-After": "1"}, 429, false, false, "status"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := &upstreamCounter{answer: func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
			}}
			var shared []string
			if tc.shared {
				shared = []string{"GET " + history}
			}
			c := newCache(t, cache.Options{}, map[string]time.Duration{"GET " + history: time.Minute}, shared...)
			e := newEnv(t, envOptions{upstream: up, cache: c})
			resp, _ := e.do("GET", history, "reader", nil, nil)
			want := "scgate; fwd=miss; stored"
			if !tc.stored {
				want = "scgate; fwd=miss; detail=" + tc.detail
			}
			if got := resp.Header.Values("Cache-Status"); len(got) != 1 || got[0] != want {
				t.Fatalf("Cache-Status %q, want %q", got, want)
			}
			e.do("GET", history, "reader", nil, nil)
			if n := up.count(history); (n == 1) != tc.stored {
				t.Fatalf("upstream saw %d requests; stored = %v", n, tc.stored)
			}
		})
	}
}

func TestCacheMaxAgeCapsTheTTL(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	up := &upstreamCounter{answer: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=5")
		w.Header().Set("Age", "2")
	}}
	c := newCache(t, cache.Options{Now: clock}, map[string]time.Duration{"GET " + history: time.Minute})
	e := newEnv(t, envOptions{upstream: up, cache: c})
	e.do("GET", history, "reader", nil, nil)
	resp, _ := e.do("GET", history, "reader", nil, nil)
	if resp.Header.Get("Cache-Status") != "scgate; hit; ttl=3" || resp.Header.Get("Age") != "2" {
		t.Fatalf("Cache-Status %q Age %q, want ttl=3 and Age 2 (max-age 5 at age 2)", resp.Header.Get("Cache-Status"), resp.Header.Get("Age"))
	}
	mu.Lock()
	now = now.Add(3 * time.Second)
	mu.Unlock()
	resp, _ = e.do("GET", history, "reader", nil, nil)
	if up.count(history) != 2 {
		t.Fatalf("an answer past max-age was served (%q)", resp.Header.Get("Cache-Status"))
	}
}

// Threat: Vary games. An answer that varies on a header is kept per value
// of that header, so one caller's variant never answers another value.
func TestCacheKeepsVariantsApart(t *testing.T) {
	up := &upstreamCounter{answer: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Accept-Language")
		_, _ = w.Write([]byte("lang=" + r.Header.Get("Accept-Language")))
	}}
	c := newCache(t, cache.Options{}, map[string]time.Duration{"GET " + history: time.Minute}, "GET "+history)
	e := newEnv(t, envOptions{upstream: up, cache: c})
	_, de := e.do("GET", history, "reader", nil, http.Header{"Accept-Language": {"de"}})
	_, fr := e.do("GET", history, "admin", nil, http.Header{"Accept-Language": {"fr"}})
	resp, de2 := e.do("GET", history, "admin", nil, http.Header{"Accept-Language": {"de"}})
	if de != "lang=de" || fr != "lang=fr" || de2 != "lang=de" || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "scgate; hit") {
		t.Fatalf("variants mixed: %q %q %q (%q)", de, fr, de2, resp.Header.Get("Cache-Status"))
	}
	if up.count(history) != 2 {
		t.Fatalf("upstream saw %d, want 2 (one per language)", up.count(history))
	}
}

// N concurrent misses of one entry send one request upstream.
func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	release := make(chan struct{})
	up := &upstreamCounter{answer: func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = w.Write([]byte("now playing"))
	}}
	m := metrics.New()
	c := newCache(t, cache.Options{Metrics: m}, map[string]time.Duration{"GET " + history: time.Minute}, "GET "+history)
	e := newEnv(t, envOptions{upstream: up, cache: c, metrics: m})
	const n = 20
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			caller := "reader"
			if i%2 == 0 {
				caller = "admin"
			}
			req, _ := http.NewRequest("GET", e.gateway.URL+history+"?limit=1", nil)
			req.Header.Set("X-Test-Caller", caller)
			resp, err := e.gateway.Client().Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode == 200 {
				ok.Add(1)
			}
		}()
	}
	waitFor(t, "every request in flight", 10*time.Second, func() bool {
		return testutil.ToFloat64(e.metrics.Inflight) == n
	})
	close(release)
	wg.Wait()
	if ok.Load() != n || up.count(history) != 1 {
		t.Fatalf("%d of %d answered; upstream saw %d requests, want 1", ok.Load(), n, up.count(history))
	}
	hits := testutil.ToFloat64(e.metrics.CacheLookups.WithLabelValues("coalesced")) + testutil.ToFloat64(e.metrics.CacheLookups.WithLabelValues("hit"))
	if hits != n-1 {
		t.Fatalf("coalesced+hit = %v, want %d", hits, n-1)
	}
}

// A caller that gives up does not end the shared fetch for the others.
func TestCacheCancelledWaiterLeavesTheFetchToOthers(t *testing.T) {
	release := make(chan struct{})
	upstreamGone := make(chan struct{}, 1)
	up := &upstreamCounter{answer: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			_, _ = w.Write([]byte("fresh"))
		case <-r.Context().Done():
			upstreamGone <- struct{}{}
		}
	}}
	c := newCache(t, cache.Options{}, map[string]time.Duration{"GET " + history: time.Minute})
	e := newEnv(t, envOptions{upstream: up, cache: c})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.gateway.URL+history, nil)
		req.Header.Set("X-Test-Caller", "reader")
		resp, err := e.gateway.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		first <- err
	}()
	waitFor(t, "the first request upstream", 10*time.Second, func() bool { return up.count(history) == 1 })
	second := make(chan string, 1)
	go func() {
		_, body := e.do("GET", history, "reader", nil, nil)
		second <- body
	}()
	waitFor(t, "the second request in flight", 10*time.Second, func() bool {
		return testutil.ToFloat64(e.metrics.Inflight) == 2
	})
	cancel()
	if err := <-first; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	waitFor(t, "the first request to end", 10*time.Second, func() bool {
		return testutil.ToFloat64(e.metrics.Inflight) == 1
	})
	close(release)
	if body := <-second; body != "fresh" {
		t.Fatalf("second caller got %q", body)
	}
	select {
	case <-upstreamGone:
		t.Fatal("the caller's cancellation ended the shared fetch")
	default:
	}
	if up.count(history) != 1 {
		t.Fatalf("upstream saw %d", up.count(history))
	}
}

// Bodies over the entry limit stream through and are not stored.
func TestCacheStreamsLargeBodies(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	for _, chunked := range []bool{false, true} {
		up := &upstreamCounter{answer: func(w http.ResponseWriter, r *http.Request) {
			if chunked {
				_, _ = w.Write([]byte(big[:100]))
				w.(http.Flusher).Flush()
				_, _ = w.Write([]byte(big[100:]))
				return
			}
			_, _ = w.Write([]byte(big))
		}}
		c := newCache(t, cache.Options{MaxEntryBytes: 1 << 10}, map[string]time.Duration{"GET " + history: time.Minute})
		e := newEnv(t, envOptions{upstream: up, cache: c})
		for range 2 {
			resp, body := e.do("GET", history, "reader", nil, nil)
			if body != big || resp.Header.Get("Cache-Status") != "scgate; fwd=miss; detail=too-large" {
				t.Fatalf("chunked=%v: %d bytes, Cache-Status %q", chunked, len(body), resp.Header.Get("Cache-Status"))
			}
		}
		if up.count(history) != 2 {
			t.Fatalf("chunked=%v: upstream saw %d", chunked, up.count(history))
		}
	}
}

// Threat: memory exhaustion by unique query strings. The store stays within
// its byte bound, evicting.
func TestCacheStaysWithinItsByteBound(t *testing.T) {
	up := &upstreamCounter{answer: func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("y", 2000)))
	}}
	const bound = 64 << 10
	m := metrics.New()
	c := newCache(t, cache.Options{MaxBytes: bound, MaxEntryBytes: 4 << 10, Metrics: m}, map[string]time.Duration{"GET " + history: time.Hour})
	e2 := newEnv(t, envOptions{upstream: up, cache: c, metrics: m})
	for i := range 300 {
		e2.do("GET", history+"?unique="+strconv.Itoa(i), "reader", nil, nil)
	}
	waitFor(t, "evictions", 10*time.Second, func() bool {
		return testutil.ToFloat64(e2.metrics.CacheEvictions) > 0 && testutil.ToFloat64(e2.metrics.CacheSize) <= bound
	})
}

// Threat: header injection. Nothing a caller sends changes what the cache
// says or stores: Cache-Status and Age come from scgate alone, and a
// caller's Cache-Control cannot force a fetch past a fresh entry.
func TestCacheStatusIsScgatesOwn(t *testing.T) {
	up := &upstreamCounter{}
	c := newCache(t, cache.Options{}, map[string]time.Duration{"GET " + history: time.Minute})
	e := newEnv(t, envOptions{upstream: up, cache: c})
	hdr := http.Header{"Cache-Status": {"scgate; hit; ttl=999"}, "Age": {"999"}, "Cache-Control": {"no-cache"}, "Pragma": {"no-cache"}}
	e.do("GET", history, "reader", nil, hdr)
	resp, _ := e.do("GET", history, "reader", nil, hdr)
	if got := resp.Header.Values("Cache-Status"); len(got) != 1 || !strings.HasPrefix(got[0], "scgate; hit; ttl=") || got[0] == "scgate; hit; ttl=999" {
		t.Fatalf("Cache-Status %q", got)
	}
	if resp.Header.Get("Age") == "999" || up.count(history) != 1 {
		t.Fatalf("Age %q, upstream saw %d", resp.Header.Get("Age"), up.count(history))
	}
	// A request with the broadcaster's own Authorization is never cached.
	resp, _ = e.do("GET", history, "reader", nil, http.Header{"Authorization": {"JWT abc"}})
	if resp.Header.Get("Cache-Status") != "scgate; fwd=bypass; detail=authorization" || up.count(history) != 2 {
		t.Fatalf("Authorization: %q, upstream saw %d", resp.Header.Get("Cache-Status"), up.count(history))
	}
}

// Threat: a coalesced answer meant for one caller. An answer with a
// Set-Cookie goes to exactly one of the waiters; the others fetch their own.
func TestCacheNeverSharesACookieBetweenWaiters(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int32
	up := &upstreamCounter{answer: func(w http.ResponseWriter, r *http.Request) {
		id := n.Add(1)
		if id == 1 {
			<-release
		}
		w.Header().Set("Set-Cookie", "sessionid="+strconv.Itoa(int(id)))
	}}
	m := metrics.New()
	c := newCache(t, cache.Options{Metrics: m}, map[string]time.Duration{"GET " + history: time.Minute}, "GET "+history)
	e := newEnv(t, envOptions{upstream: up, cache: c, metrics: m})
	const waiters = 6
	cookies := make(chan string, waiters)
	for range waiters {
		go func() {
			resp, _ := e.do("GET", history, "reader", nil, nil)
			cookies <- resp.Header.Get("Set-Cookie")
		}()
	}
	waitFor(t, "every request in flight", 10*time.Second, func() bool {
		return testutil.ToFloat64(e.metrics.Inflight) == waiters
	})
	close(release)
	seen := map[string]bool{}
	for range waiters {
		ck := <-cookies
		if seen[ck] {
			t.Fatalf("two callers got the cookie %q", ck)
		}
		seen[ck] = true
	}
}
