package ratelimit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy/ratelimit/redistest"
)

// TestCancelledWaitersGiveTheirTokensBack: 40 queued requests of a wait-mode
// caller whose clients hang up leave the key's shared bucket as it was, so
// another caller of the key is admitted at once (both backends).
func TestCancelledWaitersGiveTheirTokensBack(t *testing.T) {
	for _, backend := range []string{"local", "redis"} {
		t.Run(backend, func(t *testing.T) {
			// The key's bucket holds exactly what the test spends: one
			// request of "a", one of the observer, the 40 waiters.
			const interval = 10 * time.Second
			lim := Limits{
				Key: Bucket{Rate: 0.1, Burst: 42},
				Callers: map[string]CallerLimits{
					// a waits on its own bucket, holding the key's tokens meanwhile.
					"a": {Bucket: Bucket{Rate: 0.1, Burst: 1}, Mode: Wait, MaxWait: time.Hour},
					// obs is refused by its own bucket after one request, at no
					// cost, and each refusal tells how spent the key's bucket is.
					"obs": {Bucket: Bucket{Rate: 0.001, Burst: 1}},
					"b":   {},
				},
			}
			var l *Limiter
			if backend == "local" {
				var err error
				if l, err = New(Options{Limits: lim}); err != nil {
					t.Fatal(err)
				}
			} else {
				l, _ = newRedisLimiter(t, redistest.Start(t).Addr, lim, RedisOptions{})
			}
			ctx := context.Background()
			admit := func(caller string) Admission {
				t.Helper()
				a, err := l.Admit(ctx, caller, "k")
				if err != nil {
					t.Fatal(err)
				}
				a.Release()
				return a
			}
			keySpent := func() time.Duration { // until the key's bucket is full again
				d, err := l.Decide(ctx, "obs", "k")
				if err != nil || d.Allowed {
					t.Fatalf("the observer: %+v, %v", d, err)
				}
				return d.Key.Reset
			}
			if !admit("a").Allowed || !admit("obs").Allowed {
				t.Fatal("the first requests were refused")
			}

			wctx, hangUp := context.WithCancel(ctx)
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for range 40 {
				wg.Go(func() {
					_, err := l.Admit(wctx, "a", "k")
					errs <- err
				})
			}
			waitUntil(t, "the 40 waiters to hold the key's tokens", func() bool { return keySpent() > 41*interval })
			hangUp()
			wg.Wait()
			close(errs)
			for err := range errs {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("a waiter: %v, want context.Canceled", err)
				}
			}
			if spent := keySpent(); spent > 3*interval {
				t.Fatalf("after the hang-ups the key's bucket is full again in %v: the waiters' tokens were not given back", spent)
			}
			if a := admit("b"); !a.Allowed {
				t.Fatalf("another caller of the key was refused: %+v (Retry-After %v)", a.Decision, a.RetryAfter)
			}
		})
	}
}
