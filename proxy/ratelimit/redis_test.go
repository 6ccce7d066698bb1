package ratelimit

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/proxy/ratelimit/redistest"
)

// states records OnStateChange calls.
type states struct {
	mu sync.Mutex
	v  []bool
}

func (s *states) add(up bool) { s.mu.Lock(); s.v = append(s.v, up); s.mu.Unlock() }
func (s *states) get() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.v...)
}

func newRedisLimiter(t *testing.T, addr string, lim Limits, o RedisOptions) (*Limiter, *Redis) {
	t.Helper()
	o.Addr = addr
	if o.FallbackShare == 0 {
		o.FallbackShare = 0.5
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second // generous: the test machine is shared
	}
	rb, err := NewRedis(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rb.Close() })
	l, err := New(Options{Limits: lim, Backend: rb})
	if err != nil {
		t.Fatal(err)
	}
	return l, rb
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func TestRedisBucketsAreSharedByReplicas(t *testing.T) {
	srv := redistest.Start(t)
	lim := Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 0.2, Burst: 3}}, Key: Bucket{Rate: 0.2, Burst: 4}}
	a, _ := newRedisLimiter(t, srv.Addr, lim, RedisOptions{})
	b, _ := newRedisLimiter(t, srv.Addr, lim, RedisOptions{})

	// One caller's burst of 3 is spent across both replicas.
	for i, l := range []*Limiter{a, b, a} {
		if d := decide(t, l, "sync", "admin"); !d.Allowed {
			t.Fatalf("request %d refused inside the burst: %+v", i+1, d)
		}
	}
	d := decide(t, b, "sync", "admin")
	if d.Allowed || d.Scope != ScopeCaller || d.RetryAfter <= 4*time.Second || d.RetryAfter > 5*time.Second {
		t.Fatalf("4th request on the other replica: %+v, want refused by the caller bucket, RetryAfter about 5s", d)
	}
	// The key's bucket (burst 4, three spent) is shared by its callers.
	if d := decide(t, a, "other", "admin"); !d.Allowed || d.Key.Remaining != 0 {
		t.Fatalf("another caller of the key: %+v", d)
	}
	d = decide(t, b, "third", "admin")
	if d.Allowed || d.Scope != ScopeKey || d.Paused {
		t.Fatalf("the key's 5th request: %+v, want refused by the key bucket", d)
	}
	// A pause set by one replica stops the key on the other.
	if err := a.Pause(context.Background(), "readonly", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	d = decide(t, b, "stats", "readonly")
	if d.Allowed || !d.Paused || d.Scope != ScopeKey || d.RetryAfter <= 2*time.Second || d.RetryAfter > 3*time.Second {
		t.Fatalf("paused key on the other replica: %+v", d)
	}
	if srv.Do(t, "EXISTS", "scgate:rl:c:sync") != ":1" {
		t.Fatal("the caller's bucket is not in Redis")
	}
}

func TestRedisWaitModeQueues(t *testing.T) {
	srv := redistest.Start(t)
	lim := Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 1, Burst: 1}, Mode: Wait, MaxWait: 2500 * time.Millisecond}}
	a, _ := newRedisLimiter(t, srv.Addr, lim, RedisOptions{})
	b, _ := newRedisLimiter(t, srv.Addr, lim, RedisOptions{})
	var waits, want []time.Duration
	start := time.Now()
	for i, l := range []*Limiter{a, b, a} {
		// Each request queues one interval behind the one before, across
		// replicas, less the time that has passed since the first: measured,
		// so a loaded machine's slow calls do not fail the test.
		want = append(want, max(0, time.Duration(i)*time.Second-time.Since(start)))
		d := decide(t, l, "batch", "k")
		if !d.Allowed {
			t.Fatalf("refused within max_wait: %+v", d)
		}
		waits = append(waits, d.Wait)
	}
	// The slack covers the time between reading the clock here and Redis's
	// reading its own; without the shared queue the waits would be 0.
	const slack = 300 * time.Millisecond
	for i := range waits {
		if waits[i] > want[i]+slack/10 || waits[i] < want[i]-slack {
			t.Fatalf("waits %v, want about %v (each within %v)", waits, want, slack)
		}
	}
	if d := decide(t, b, "batch", "k"); d.Allowed || d.RetryAfter < 2500*time.Millisecond {
		t.Fatalf("past max_wait: %+v", d)
	}
}

func TestRedisOutageFallsBackToLocalShareAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	core, logs := observer.New(zapcore.InfoLevel)
	var st states
	lim := Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 0.1, Burst: 4}}}
	l, rb := newRedisLimiter(t, srv.Addr, lim, RedisOptions{
		FallbackShare: 0.5, ProbeInterval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond,
		Logger: zap.New(core), OnStateChange: st.add,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rb.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if !decide(t, l, "a", "k").Allowed || !rb.Up() {
		t.Fatal("not serving from Redis at first")
	}
	srv.Stop(t)
	// Local buckets with half the limit: burst 2, then refused. No request fails.
	for i := range 2 {
		if d := decide(t, l, "a", "k"); !d.Allowed {
			t.Fatalf("fallback request %d refused: %+v", i+1, d)
		}
	}
	if d := decide(t, l, "a", "k"); d.Allowed {
		t.Fatal("the fallback allowed more than the replica's share (burst 2)")
	}
	if rb.Up() {
		t.Fatal("still marked up with Redis gone")
	}
	if n := logs.FilterMessageSnippet("redis is unreachable").Len(); n != 1 {
		t.Fatalf("the outage was logged %d times, want once", n)
	}

	srv.Restart(t)
	waitUntil(t, "the switch back to Redis", rb.Up)
	if d := decide(t, l, "a", "k"); !d.Allowed {
		t.Fatalf("refused by Redis's fresh bucket: %+v", d)
	}
	if srv.Do(t, "EXISTS", "scgate:rl:c:a") != ":1" {
		t.Fatal("requests do not go to Redis again")
	}
	if logs.FilterMessageSnippet("redis answers again").Len() != 1 {
		t.Fatal("the recovery was not logged")
	}
	if got := st.get(); len(got) != 3 || !got[0] || got[1] || !got[2] {
		t.Fatalf("state changes %v, want [true false true]", got)
	}
}

func TestRedisUnreachableAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	var st states
	l, rb := newRedisLimiter(t, addr, Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 1, Burst: 2}}},
		RedisOptions{FallbackShare: 1, Timeout: 200 * time.Millisecond, OnStateChange: st.add})
	if rb.Up() || len(st.get()) != 1 || st.get()[0] {
		t.Fatalf("up %v, states %v", rb.Up(), st.get())
	}
	if !decide(t, l, "a", "k").Allowed || !decide(t, l, "a", "k").Allowed || decide(t, l, "a", "k").Allowed {
		t.Fatal("the local fallback does not apply the limit")
	}
	if l.For("a", "k").Backend != "redis" {
		t.Fatal("Applied.Backend")
	}
}

func TestRedisOptionsValidation(t *testing.T) {
	for _, o := range []RedisOptions{
		{FallbackShare: 0.5},
		{Addr: "127.0.0.1:1", FallbackShare: 0},
		{Addr: "127.0.0.1:1", FallbackShare: 1.5},
		{Addr: "127.0.0.1:1", FallbackShare: 1, Timeout: -1},
	} {
		if _, err := NewRedis(o); err == nil {
			t.Errorf("NewRedis(%+v) accepted", o)
		}
	}
}

// BenchmarkDecideRedis is one decision through a real local redis-server:
// one script round trip per request.
func BenchmarkDecideRedis(b *testing.B) {
	srv := redistest.Start(b)
	rb, err := NewRedis(RedisOptions{Addr: srv.Addr, FallbackShare: 1, Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer rb.Close()
	l, err := New(Options{Limits: Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 1e6, Burst: 1000}}, Key: Bucket{Rate: 1e6, Burst: 1000}}, Backend: rb})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Decide(ctx, "caller", "key"); err != nil {
			b.Fatal(err)
		}
	}
}
