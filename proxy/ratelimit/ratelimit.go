package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options configures a Limiter.
type Options struct {
	// Rate is the sustained number of requests per second each caller may send.
	// Zero disables limiting.
	Rate float64
	// Burst is how many requests a caller may send at once after being idle.
	// Zero with a non-zero Rate means max(1, ceil(Rate)).
	Burst int
	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
}

// Decision is the outcome of Allow.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until one token is back in the caller's bucket;
	// set when Allowed is false.
	RetryAfter time.Duration
	// Limit and Remaining describe the caller's bucket after this decision,
	// for rate-limit response headers.
	Limit     int
	Remaining int
	// Window is how long an empty bucket takes to fill up to Limit again.
	Window time.Duration
}

// Limiter holds one token bucket per caller.
type Limiter struct {
	opts    Options
	buckets sync.Map // caller string → *rate.Limiter
}

// New validates opts and returns a Limiter.
func New(opts Options) (*Limiter, error) {
	if opts.Rate < 0 || math.IsNaN(opts.Rate) || math.IsInf(opts.Rate, 0) {
		return nil, fmt.Errorf("ratelimit: rate %v: must be a finite number >= 0", opts.Rate)
	}
	if opts.Burst < 0 {
		return nil, errors.New("ratelimit: burst must be >= 0")
	}
	if opts.Rate > 0 && opts.Burst == 0 {
		opts.Burst = max(1, int(math.Ceil(opts.Rate)))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Limiter{opts: opts}, nil
}

// Enabled reports whether the limiter limits anything.
func (l *Limiter) Enabled() bool { return l != nil && l.opts.Rate > 0 }

// Allow takes one token from caller's bucket if there is one.
func (l *Limiter) Allow(caller string) Decision {
	if !l.Enabled() {
		return Decision{Allowed: true}
	}
	b := l.bucket(caller)
	now := l.opts.Now()
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		// Hand the token back: a refused request must not cost the caller.
		res.CancelAt(now)
		return Decision{RetryAfter: d, Limit: l.opts.Burst, Window: l.window()}
	}
	return Decision{Allowed: true, Limit: l.opts.Burst, Remaining: max(0, int(b.TokensAt(now))), Window: l.window()}
}

func (l *Limiter) window() time.Duration {
	return time.Duration(float64(l.opts.Burst) / l.opts.Rate * float64(time.Second))
}

func (l *Limiter) bucket(caller string) *rate.Limiter {
	if b, ok := l.buckets.Load(caller); ok {
		return b.(*rate.Limiter)
	}
	b, _ := l.buckets.LoadOrStore(caller, rate.NewLimiter(rate.Limit(l.opts.Rate), l.opts.Burst))
	return b.(*rate.Limiter)
}

// Forget drops the buckets of callers for which keep reports false, so that
// callers removed from the vault do not hold memory.
func (l *Limiter) Forget(keep func(caller string) bool) {
	if l == nil {
		return
	}
	l.buckets.Range(func(k, _ any) bool {
		if !keep(k.(string)) {
			l.buckets.Delete(k)
		}
		return true
	})
}
