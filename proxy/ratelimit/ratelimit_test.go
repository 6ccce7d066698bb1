package ratelimit

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func TestAllowBurstThenRefuseWithRetryAfter(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	l, err := New(Options{Rate: 2, Burst: 3, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if d := l.Allow("a"); !d.Allowed {
			t.Fatalf("request %d refused inside the burst", i)
		}
	}
	d := l.Allow("a")
	if d.Allowed {
		t.Fatal("4th request allowed past a burst of 3")
	}
	if d.RetryAfter != 500*time.Millisecond {
		t.Fatalf("RetryAfter = %v, want 500ms at 2/s", d.RetryAfter)
	}
	// Another caller has its own bucket.
	if d := l.Allow("b"); !d.Allowed {
		t.Fatal("caller b refused because of caller a")
	}
	// A refused request did not consume a token: after exactly RetryAfter one passes.
	clk.t = clk.t.Add(500 * time.Millisecond)
	if d := l.Allow("a"); !d.Allowed {
		t.Fatal("refused after waiting RetryAfter")
	}
	if d := l.Allow("a"); d.Allowed {
		t.Fatal("two requests allowed after one token came back")
	}
}

func TestDisabledAndValidation(t *testing.T) {
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if !l.Allow("x").Allowed {
			t.Fatal("disabled limiter refused")
		}
	}
	if _, err := New(Options{Rate: -1}); err == nil {
		t.Fatal("negative rate accepted")
	}
	if _, err := New(Options{Rate: 1, Burst: -1}); err == nil {
		t.Fatal("negative burst accepted")
	}
}

func TestForget(t *testing.T) {
	l, _ := New(Options{Rate: 1, Burst: 1})
	l.Allow("gone")
	l.Allow("kept")
	l.Forget(func(c string) bool { return c == "kept" })
	n := 0
	l.buckets.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d buckets after Forget, want 1", n)
	}
}
