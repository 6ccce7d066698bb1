package ratelimit

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is the injected clock: tests move it, nothing sleeps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(t *testing.T, clk *clock, lim Limits) *Limiter {
	t.Helper()
	l, err := New(Options{Limits: lim, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func decide(t *testing.T, l *Limiter, caller, key string) Decision {
	t.Helper()
	d, err := l.Decide(context.Background(), caller, key)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBurstThenSteadyRate(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, clk, Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 2, Burst: 3}}})
	for i := range 3 {
		if d := decide(t, l, "a", "k"); !d.Allowed {
			t.Fatalf("request %d refused inside the burst", i+1)
		}
	}
	d := decide(t, l, "a", "k")
	if d.Allowed || d.Scope != ScopeCaller || d.RetryAfter != 500*time.Millisecond {
		t.Fatalf("4th request: %+v, want refused by the caller bucket with RetryAfter 500ms", d)
	}
	// Steady state: one request every 500ms, never two.
	for i := range 10 {
		clk.Add(500 * time.Millisecond)
		if d := decide(t, l, "a", "k"); !d.Allowed {
			t.Fatalf("steady request %d refused", i)
		}
		if d := decide(t, l, "a", "k"); d.Allowed {
			t.Fatalf("steady request %d: a second one in the same 500ms passed", i)
		}
	}
	// Idle long enough, the bucket is full again, and no fuller.
	clk.Add(time.Hour)
	for i := range 3 {
		if d := decide(t, l, "a", "k"); !d.Allowed {
			t.Fatalf("after idling: request %d refused", i+1)
		}
	}
	if d := decide(t, l, "a", "k"); d.Allowed {
		t.Fatal("the bucket held more than its burst after idling")
	}
	// Another caller has its own bucket.
	if d := decide(t, l, "b", "k"); !d.Allowed {
		t.Fatal("caller b refused because of caller a")
	}
}

func TestRetryAfterComesFromTheBucket(t *testing.T) {
	cases := []struct {
		rate        float64
		burst       int
		retry       time.Duration
		header      int
		policy, now string
	}{
		{0.5, 2, 2 * time.Second, 2, `"caller";q=2;w=4`, `"caller";r=0;t=2`},
		{3, 1, 333333333 * time.Nanosecond, 1, `"caller";q=1;w=1`, `"caller";r=0;t=1`},
		{0.1, 1, 10 * time.Second, 10, `"caller";q=1;w=10`, `"caller";r=0;t=10`},
	}
	for _, c := range cases {
		clk := newClock()
		l := newLimiter(t, clk, Limits{Caller: CallerLimits{Bucket: Bucket{Rate: c.rate, Burst: c.burst}}})
		for range c.burst {
			decide(t, l, "a", "k")
		}
		// Part of the way there, the wait shrinks accordingly.
		d := decide(t, l, "a", "k")
		if d.Allowed || d.RetryAfter.Round(time.Millisecond) != c.retry.Round(time.Millisecond) {
			t.Fatalf("rate %v: %+v, want RetryAfter %v", c.rate, d, c.retry)
		}
		if d.RetryAfterSeconds() != c.header || d.PolicyHeader() != c.policy || d.StateHeader() != c.now {
			t.Fatalf("rate %v: headers %d %q %q, want %d %q %q", c.rate, d.RetryAfterSeconds(), d.PolicyHeader(), d.StateHeader(), c.header, c.policy, c.now)
		}
		clk.Add(c.retry / 2)
		if d2 := decide(t, l, "a", "k"); d2.Allowed || d2.RetryAfter >= d.RetryAfter {
			t.Fatalf("rate %v: halfway, RetryAfter %v did not shrink from %v", c.rate, d2.RetryAfter, d.RetryAfter)
		}
	}
}

func TestKeyBucketIsSharedByItsCallers(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, clk, Limits{
		Caller: CallerLimits{Bucket: Bucket{Rate: 10, Burst: 10}},
		Key:    Bucket{Rate: 1, Burst: 2},
	})
	if !decide(t, l, "a", "shared").Allowed || !decide(t, l, "b", "shared").Allowed {
		t.Fatal("refused inside the key's burst")
	}
	d := decide(t, l, "c", "shared")
	if d.Allowed || d.Scope != ScopeKey || d.Paused || d.RetryAfter != time.Second {
		t.Fatalf("third caller of the key: %+v, want refused by the key bucket, RetryAfter 1s", d)
	}
	if !strings.Contains(d.StateHeader(), `"key";r=0;t=1`) {
		t.Fatalf("RateLimit %q does not name the key", d.StateHeader())
	}
	// A caller of another key is not affected.
	if !decide(t, l, "d", "other").Allowed {
		t.Fatal("another key's caller refused")
	}
	// The refusal by the key gave caller c's token back: c's own bucket is
	// still full (10 tokens), so after the key refills c passes ten times
	// as the key allows, with no caller-scope refusal.
	for range 10 {
		clk.Add(time.Second)
		if d := decide(t, l, "c", "shared"); !d.Allowed {
			t.Fatalf("c refused: %+v", d)
		}
	}
	if d := decide(t, l, "c", "shared"); d.Allowed || d.Scope != ScopeKey {
		t.Fatalf("c after ten: %+v, want the key to refuse", d)
	}
}

func TestWaitModeAdmitsWithinMaxWaitAndRefusesPastIt(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, clk, Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 1, Burst: 1}, Mode: Wait, MaxWait: 2 * time.Second}})
	for i, want := range []time.Duration{0, time.Second, 2 * time.Second} {
		d := decide(t, l, "batch", "k")
		if !d.Allowed || d.Wait != want {
			t.Fatalf("request %d: %+v, want allowed after waiting %v", i+1, d, want)
		}
	}
	d := decide(t, l, "batch", "k")
	if d.Allowed || d.RetryAfter != 3*time.Second {
		t.Fatalf("4th request: %+v, want refused with RetryAfter 3s (past max_wait 2s)", d)
	}
	// The refused request reserved nothing: one second later the queue is
	// one shorter, and the next request waits 2s, within max_wait.
	clk.Add(time.Second)
	if d := decide(t, l, "batch", "k"); !d.Allowed || d.Wait != 2*time.Second {
		t.Fatalf("after 1s: %+v, want allowed with a 2s wait", d)
	}
}

func TestUpstreamPauseStopsTheKey(t *testing.T) {
	clk := newClock()
	l := newLimiter(t, clk, Limits{})
	if err := l.Pause(context.Background(), "k", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// A shorter pause does not shorten it.
	_ = l.Pause(context.Background(), "k", time.Second)
	d := decide(t, l, "a", "k")
	if d.Allowed || d.Scope != ScopeKey || !d.Paused || d.RetryAfter != 5*time.Second {
		t.Fatalf("paused key: %+v, want refused by the key's pause with RetryAfter 5s", d)
	}
	if !decide(t, l, "a", "other").Allowed {
		t.Fatal("the pause of one key stopped another")
	}
	clk.Add(5 * time.Second)
	if !decide(t, l, "a", "k").Allowed {
		t.Fatal("still refused after the pause")
	}
}

func TestReloadKeepsUnchangedBuckets(t *testing.T) {
	clk := newClock()
	one := Bucket{Rate: 1, Burst: 1}
	lim := Limits{Caller: CallerLimits{Bucket: one}, Callers: map[string]CallerLimits{"b": {Bucket: one}}}
	l := newLimiter(t, clk, lim)
	decide(t, l, "a", "k")
	decide(t, l, "b", "k")
	// b's limits change; a's do not.
	lim.Callers = map[string]CallerLimits{"b": {Bucket: Bucket{Rate: 1, Burst: 5}}}
	if err := l.SetLimits(lim); err != nil {
		t.Fatal(err)
	}
	if decide(t, l, "a", "k").Allowed {
		t.Fatal("a's spent bucket was reset by a reload that did not change its limits")
	}
	for i := range 5 {
		if !decide(t, l, "b", "k").Allowed {
			t.Fatalf("b's new burst of 5: request %d refused", i+1)
		}
	}
	if err := l.SetLimits(Limits{Caller: CallerLimits{Bucket: Bucket{Rate: -1}}}); err == nil {
		t.Fatal("an invalid table was accepted")
	}
	if got := l.For("b", "k").Caller.Burst; got != 5 {
		t.Fatalf("an invalid reload changed the limits: burst %d", got)
	}
}

func TestForgetBoundsMemory(t *testing.T) {
	clk := newClock()
	local := NewLocal()
	l, err := New(Options{Limits: Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 1}, Concurrency: 2}, Key: Bucket{Rate: 1}}, Backend: local, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"gone", "kept"} {
		a, err := l.Admit(context.Background(), c, c+"-key")
		if err != nil || !a.Allowed {
			t.Fatalf("%s: %+v %v", c, a, err)
		}
		a.Release()
	}
	_ = l.Pause(context.Background(), "gone-key", time.Second)
	if n := local.count(); n != 5 {
		t.Fatalf("%d buckets and pauses, want 5", n)
	}
	keep := func(s string) bool { return strings.HasPrefix(s, "kept") }
	l.Forget(keep, keep)
	if n := local.count(); n != 2 {
		t.Fatalf("%d buckets and pauses after Forget, want 2", n)
	}
	n := 0
	l.slots.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d concurrency caps after Forget, want 1", n)
	}
}

func TestValidation(t *testing.T) {
	bad := Limits{
		Caller:  CallerLimits{Bucket: Bucket{Rate: -1}},
		Callers: map[string]CallerLimits{"w": {Mode: Wait}, "c": {Concurrency: -1}},
		Keys:    map[string]Bucket{"k": {Rate: 1, Burst: -2}},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"default caller limits: rate -1", `caller "w": mode "wait" needs a max_wait`, `caller "c": concurrency -1`, `key "k": burst -2`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	l, err := New(Options{Limits: Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 2.5}}}})
	if err != nil {
		t.Fatal(err)
	}
	if b := l.For("x", "k").Caller.Burst; b != 3 {
		t.Fatalf("default burst for rate 2.5 = %d, want 3", b)
	}
	if _, err := ParseMode("sometimes"); err == nil {
		t.Fatal("bad mode accepted")
	}
}

func TestUnlimitedByDefault(t *testing.T) {
	l := newLimiter(t, newClock(), Limits{})
	for range 1000 {
		d := decide(t, l, "x", "k")
		if !d.Allowed || d.PolicyHeader() != "" || d.StateHeader() != "" {
			t.Fatalf("the zero table limited: %+v", d)
		}
	}
}

func TestConcurrencyCapRejectMode(t *testing.T) {
	l := newLimiter(t, newClock(), Limits{Caller: CallerLimits{Concurrency: 2}})
	ctx := context.Background()
	var held []Admission
	for range 2 {
		a, err := l.Admit(ctx, "a", "k")
		if err != nil || !a.Allowed {
			t.Fatalf("within the cap: %+v %v", a, err)
		}
		held = append(held, a)
	}
	a, err := l.Admit(ctx, "a", "k")
	if err != nil || a.Allowed || !a.Concurrency || a.Scope != ScopeCaller || a.RetryAfterSeconds() != 1 {
		t.Fatalf("third in flight: %+v %v, want refused by the concurrency cap", a, err)
	}
	if a.PolicyHeader() != `"concurrency";q=2` || a.StateHeader() != `"concurrency";r=0` {
		t.Fatalf("headers %q %q", a.PolicyHeader(), a.StateHeader())
	}
	if b, _ := l.Admit(ctx, "b", "k"); !b.Allowed {
		t.Fatal("another caller was capped by a's requests")
	} else {
		b.Release()
	}
	held[0].Release()
	held[0].Release() // a second release gives nothing back twice
	a, err = l.Admit(ctx, "a", "k")
	if err != nil || !a.Allowed {
		t.Fatalf("after a release: %+v %v", a, err)
	}
	if c, _ := l.Admit(ctx, "a", "k"); c.Allowed {
		t.Fatal("a double Release freed two places")
	}
	a.Release()
	held[1].Release()
}

func TestConcurrencyCapWaitMode(t *testing.T) {
	l := newLimiter(t, newClock(), Limits{Caller: CallerLimits{Concurrency: 1, Mode: Wait, MaxWait: time.Minute}})
	ctx := context.Background()
	first, _ := l.Admit(ctx, "a", "k")
	type result struct {
		a            Admission
		afterRelease bool
	}
	var released atomic.Bool
	got := make(chan result)
	go func() {
		a, _ := l.Admit(ctx, "a", "k")
		got <- result{a, released.Load()}
	}()
	// The second request is queued: its goroutine waits for a place.
	waitForStack(t, "ratelimit.(*Limiter).acquireSlot")
	released.Store(true)
	first.Release()
	r := <-got // queued, then admitted once the place was free
	if !r.a.Allowed {
		t.Fatalf("queued request: %+v", r.a)
	}
	if !r.afterRelease {
		t.Fatal("admitted while the only place was held")
	}
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

func TestAdmitWaitsForItsToken(t *testing.T) {
	// The bucket's clock stands still, so each request's Wait is exact
	// whatever the machine's load (with the real clock, a slow machine let
	// 20 ms pass between two requests and the token was there without
	// waiting). Admit sits the Wait out with a real timer: it must not return
	// before that, and a loaded machine can only make it later.
	l := newLimiter(t, newClock(), Limits{Caller: CallerLimits{Bucket: Bucket{Rate: 50, Burst: 1}, Mode: Wait, MaxWait: 10 * time.Second}})
	for i, want := range []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond} {
		start := time.Now()
		a, err := l.Admit(context.Background(), "batch", "k")
		took := time.Since(start)
		if err != nil || !a.Allowed {
			t.Fatalf("request %d: %+v %v", i+1, a, err)
		}
		if a.Wait != want {
			t.Fatalf("request %d: Wait %v, want %v", i+1, a.Wait, want)
		}
		if took < want {
			t.Fatalf("request %d: Admit returned after %v, before its %v wait", i+1, took, want)
		}
		a.Release()
	}
}

func TestPolicyHeaderListsEveryLimit(t *testing.T) {
	l := newLimiter(t, newClock(), Limits{
		Caller: CallerLimits{Bucket: Bucket{Rate: 10, Burst: 20}, Concurrency: 4},
		Key:    Bucket{Rate: 5, Burst: 5},
	})
	d := decide(t, l, "a", "k")
	if got, want := d.PolicyHeader(), `"caller";q=20;w=2, "concurrency";q=4, "key";q=5;w=1`; got != want {
		t.Fatalf("RateLimit-Policy %q, want %q", got, want)
	}
	if got, want := d.StateHeader(), `"caller";r=19;t=1, "key";r=4;t=1`; got != want {
		t.Fatalf("RateLimit %q, want %q", got, want)
	}
}
