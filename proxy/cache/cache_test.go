package cache_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/scgate/scgate/keyvault/vaulttest"
	"github.com/scgate/scgate/metrics"
	"github.com/scgate/scgate/proxy/cache"
	"github.com/scgate/scgate/proxy/policy"
	"github.com/scgate/scgate/proxy/ratelimit/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// origin is a real HTTP upstream counting its requests.
type origin struct {
	srv   *httptest.Server
	n     atomic.Int32
	reply atomic.Value // string
	code  atomic.Int32
}

func newOrigin(t *testing.T) *origin {
	o := &origin{}
	o.reply.Store("v1")
	o.code.Store(200)
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.n.Add(1)
		w.WriteHeader(int(o.code.Load()))
		_, _ = io.WriteString(w, o.reply.Load().(string))
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// get sends a GET of path through c, as the gateway's cache stage does.
func (o *origin) get(t *testing.T, c *cache.Cache, path string) (*http.Response, string) {
	t.Helper()
	tr := o.srv.Client().Transport
	req, err := http.NewRequest("GET", o.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := cache.Request{Panel: "p", Key: "k", Path: req.URL.Path}
	resp, err := c.RoundTrip(req, q, tr, func(ctx context.Context) (*http.Response, error) {
		return tr.RoundTrip(req.Clone(ctx))
	})
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func rules(t *testing.T, route string, ttl time.Duration) []cache.Rule {
	r, err := policy.ParseRule(route)
	if err != nil {
		t.Fatal(err)
	}
	return []cache.Rule{{Route: r, TTL: ttl}}
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock               { c := &clock{}; c.ns.Store(time.Now().UnixNano()); return c }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

func TestStaleIfErrorServesTheLastAnswer(t *testing.T) {
	o := newOrigin(t)
	clk := newClock()
	m := metrics.New()
	c, err := cache.New(cache.Options{Rules: rules(t, "GET /h/", time.Second), StaleIfError: time.Minute, Now: clk.now, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o.get(t, c, "/h/")
	clk.add(5 * time.Second)
	o.code.Store(503)
	o.reply.Store("down")
	resp, body := o.get(t, c, "/h/")
	if body != "v1" || resp.Header.Get("Cache-Status") != "scgate; hit; ttl=-4; detail=stale-if-error" || resp.Header.Get("Age") != "5" {
		t.Fatalf("got %q, Cache-Status %q, Age %q", body, resp.Header.Get("Cache-Status"), resp.Header.Get("Age"))
	}
	// Past the window the error passes.
	clk.add(time.Minute)
	if _, body := o.get(t, c, "/h/"); body != "down" {
		t.Fatalf("past stale-if-error: %q", body)
	}
}

func TestStaleWhileRevalidateRefreshesInTheBackground(t *testing.T) {
	o := newOrigin(t)
	clk := newClock()
	c, err := cache.New(cache.Options{Rules: rules(t, "GET /h/", time.Second), StaleWhileRevalidate: time.Minute, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o.get(t, c, "/h/")
	clk.add(2 * time.Second)
	o.reply.Store("v2")
	resp, body := o.get(t, c, "/h/")
	if body != "v1" || !strings.HasSuffix(resp.Header.Get("Cache-Status"), "detail=stale-while-revalidate") {
		t.Fatalf("got %q, %q", body, resp.Header.Get("Cache-Status"))
	}
	vaulttest.Eventually(t, 10*time.Second, "the background refresh to land", func() bool {
		_, body := o.get(t, c, "/h/")
		return body == "v2"
	})
	if n := o.n.Load(); n != 2 {
		t.Fatalf("origin saw %d requests, want 2", n)
	}
}

// A fleet shares answers through Redis: one gateway's miss is the other's
// hit. A Redis that stops answering costs a miss, never an error.
func TestRedisStoreIsSharedByAFleet(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer client.Close()
	o := newOrigin(t)
	newGateway := func(prefix string, m *metrics.Metrics) *cache.Cache {
		st, err := cache.NewRedis(cache.RedisOptions{Client: client, Prefix: prefix, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c, err := cache.New(cache.Options{Rules: rules(t, "GET /h/", time.Minute), Store: st, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	m := metrics.New()
	a, b := newGateway("fleet:", nil), newGateway("fleet:", m)
	other := newGateway("other-fleet:", nil)
	o.get(t, a, "/h/")
	resp, body := o.get(t, b, "/h/")
	if body != "v1" || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "scgate; hit") || o.n.Load() != 1 {
		t.Fatalf("b: %q, %q; origin saw %d", body, resp.Header.Get("Cache-Status"), o.n.Load())
	}
	keys, err := client.Keys(context.Background(), "fleet:*").Result()
	if err != nil || len(keys) != 1 || strings.Contains(keys[0], "/h/") {
		t.Fatalf("keys %q (%v): want one hashed key", keys, err)
	}
	if o.get(t, other, "/h/"); o.n.Load() != 2 {
		t.Fatal("another key prefix shared the entry")
	}
	srv.Stop(t)
	o.reply.Store("v2")
	if _, body := o.get(t, b, "/h/?x"); body != "v2" {
		t.Fatalf("with Redis down: %q", body)
	}
	if v := testutil.ToFloat64(m.CacheStoreErrors); v < 1 {
		t.Fatalf("store errors = %v", v)
	}
}
