package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Limiter.
type Options struct {
	// Limits is the limit table; the zero value limits nothing.
	Limits Limits
	// Backend keeps the buckets; nil means a new Local.
	Backend Backend
	// Now is the clock for bucket arithmetic; nil means time.Now. Tests
	// inject one. (Waiting in Wait mode always uses real timers.)
	Now func() time.Time
}

// Limiter applies the limit table to requests. It is safe for concurrent use,
// and SetLimits swaps the table without blocking requests.
type Limiter struct {
	limits  atomic.Pointer[Limits]
	backend Backend
	now     func() time.Time
	slots   sync.Map // caller → *slots
}

// New validates opts and returns a Limiter.
func New(opts Options) (*Limiter, error) {
	lim, err := opts.Limits.complete()
	if err != nil {
		return nil, err
	}
	l := &Limiter{backend: opts.Backend, now: opts.Now}
	if l.backend == nil {
		l.backend = NewLocal()
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.limits.Store(lim)
	return l, nil
}

// SetLimits puts a new limit table in force (a config reload). Callers and
// keys whose limits did not change keep their buckets; the others start
// afresh with full buckets. An invalid table changes nothing.
func (l *Limiter) SetLimits(lim Limits) error {
	c, err := lim.complete()
	if err != nil {
		return err
	}
	l.limits.Store(c)
	return nil
}

// Applied is what limits one caller's requests: the answer to "which limits
// apply to this caller".
type Applied struct {
	Caller  CallerLimits
	Key     Bucket // the bucket shared by every caller of the key
	Backend string // "local" or "redis"
}

// For returns the limits that apply to caller, whose vault key is key.
func (l *Limiter) For(caller, key string) Applied {
	t := l.limits.Load()
	return Applied{Caller: t.ForCaller(caller), Key: t.ForKey(key), Backend: l.backend.Name()}
}

// Backend returns the limiter's backend.
func (l *Limiter) Backend() Backend { return l.backend }

// Decision is the outcome of Decide or Admit.
type Decision struct {
	Allowed bool
	// Wait is how long an allowed request waits for its tokens (Wait mode).
	Wait time.Duration
	// RetryAfter is how long until a refused request could pass.
	RetryAfter time.Duration
	// Scope is the limit that refused; Concurrency and Paused say it was
	// the caller's concurrency cap or the key's upstream-imposed pause.
	Scope       Scope
	Concurrency bool
	Paused      bool
	// Limits are the limits that were applied; Caller and Key the state of
	// their buckets afterwards (for the RateLimit headers).
	Limits      Applied
	Caller, Key Usage

	refund func(context.Context) // gives the tokens back (Result.Refund)
}

// Decide takes the tokens for one request of caller (whose vault key is key)
// without waiting: in Wait mode an allowed Decision may carry a Wait that the
// request must sit out. It is the limiter's pure arithmetic, driven by
// Options.Now; it does not look at the concurrency cap.
func (l *Limiter) Decide(ctx context.Context, caller, key string) (Decision, error) {
	t := l.limits.Load()
	cl := t.ForCaller(caller)
	maxWait := time.Duration(0)
	if cl.Mode == Wait {
		maxWait = cl.MaxWait
	}
	return l.decide(ctx, caller, key, cl, t.ForKey(key), maxWait)
}

func (l *Limiter) decide(ctx context.Context, caller, key string, cl CallerLimits, kb Bucket, maxWait time.Duration) (Decision, error) {
	d := Decision{Allowed: true, Limits: Applied{Caller: cl, Key: kb, Backend: l.backend.Name()}}
	res, err := l.backend.Take(ctx, l.now(), Request{
		Caller: caller, CallerBucket: cl.Bucket, Key: key, KeyBucket: kb, MaxWait: maxWait,
	})
	if err != nil {
		return Decision{}, err
	}
	d.Allowed, d.Wait, d.RetryAfter = res.Allowed, res.Wait, res.RetryAfter
	d.Scope, d.Paused, d.Caller, d.Key = res.Scope, res.Paused, res.Caller, res.Key
	d.refund = res.Refund
	return d, nil
}

// Admission is an admitted request's hold on its caller's concurrency slot.
type Admission struct {
	Decision
	// Waited says that the request was queued (for a concurrency place or
	// for its tokens) before it was admitted: whatever the gateway decided
	// before the limit stage may be out of date and must be decided again.
	Waited bool
	slot   chan struct{}
}

// Release gives the concurrency slot back; call it once the response is done.
// A refused Admission holds nothing, and a second call does nothing.
func (a *Admission) Release() {
	if a.slot != nil {
		<-a.slot
		a.slot = nil
	}
}

// Refund gives the request's tokens back to the buckets it took them from,
// once, for a request admitted after waiting for its tokens that is then not
// sent after all (the gateway decided again and refused it, or its caller
// moved to another key). Tokens taken without a wait are not given back: a
// request that did not wait was decided on current state. ctx bounds a
// shared backend's call; it may be one that is already cancelled.
func (a *Admission) Refund(ctx context.Context) {
	if a.refund != nil {
		a.refund(context.WithoutCancel(ctx))
		a.refund = nil
	}
}

// errNoSlot marks a refusal by the concurrency cap inside Admit.
var errNoSlot = errors.New("ratelimit: concurrency cap reached")

// Admit is the gateway's limit stage for one request: a concurrency slot,
// then the tokens, then (Wait mode) the wait, all within the caller's
// MaxWait. A refused request holds nothing. An allowed one must be released.
// The error is ctx's when the caller went away while waiting.
func (l *Limiter) Admit(ctx context.Context, caller, key string) (Admission, error) {
	t := l.limits.Load()
	cl, kb := t.ForCaller(caller), t.ForKey(key)
	start := l.now()
	var budget time.Duration
	if cl.Mode == Wait {
		budget = cl.MaxWait
	}
	slot, queued, err := l.acquireSlot(ctx, caller, cl.Concurrency, budget)
	if errors.Is(err, errNoSlot) {
		return Admission{Decision: Decision{
			RetryAfter: time.Second, Scope: ScopeCaller, Concurrency: true,
			Limits: Applied{Caller: cl, Key: kb, Backend: l.backend.Name()},
		}}, nil
	}
	if err != nil {
		return Admission{}, err
	}
	a := Admission{slot: slot, Waited: queued}
	if budget > 0 {
		budget = max(0, budget-l.now().Sub(start))
	}
	a.Decision, err = l.decide(ctx, caller, key, cl, kb, budget)
	if err != nil || !a.Allowed {
		a.Release()
		return a, err
	}
	if a.Wait > 0 {
		a.Waited = true
		timer := time.NewTimer(a.Wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			// The caller went away: the request will not be sent, so its
			// tokens go back to the buckets it shares with other callers.
			a.Release()
			if a.refund != nil {
				a.refund(context.WithoutCancel(ctx))
			}
			return Admission{}, ctx.Err()
		}
	}
	return a, nil
}

// slots is one caller's concurrency cap: a semaphore of n places.
type slots struct {
	n  int
	ch chan struct{}
}

// acquireSlot takes a place in the caller's concurrency cap, waiting up to
// maxWait for one; queued says it had to wait.
func (l *Limiter) acquireSlot(ctx context.Context, caller string, n int, maxWait time.Duration) (slot chan struct{}, queued bool, err error) {
	if n <= 0 {
		return nil, false, nil
	}
	ch := l.slotsFor(caller, n)
	select {
	case ch <- struct{}{}:
		return ch, false, nil
	default:
	}
	if maxWait <= 0 {
		return nil, false, errNoSlot
	}
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	select {
	case ch <- struct{}{}:
		return ch, true, nil
	case <-timer.C:
		return nil, true, errNoSlot
	case <-ctx.Done():
		return nil, true, ctx.Err()
	}
}

// slotsFor returns the caller's semaphore, replacing it when the cap changed
// (requests holding a place in the old one release it there).
func (l *Limiter) slotsFor(caller string, n int) chan struct{} {
	for {
		v, ok := l.slots.Load(caller)
		if ok && v.(*slots).n == n {
			return v.(*slots).ch
		}
		s := &slots{n: n, ch: make(chan struct{}, n)}
		if !ok {
			if _, loaded := l.slots.LoadOrStore(caller, s); !loaded {
				return s.ch
			}
			continue
		}
		if l.slots.CompareAndSwap(caller, v, s) {
			return s.ch
		}
	}
}

// Pause stops the key's bucket for d: the broadcaster answered 429 (or 503
// with Retry-After), so no caller of that key should send before then.
func (l *Limiter) Pause(ctx context.Context, key string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	return l.backend.Pause(ctx, l.now(), key, d)
}

// Forget drops the state of callers and keys that left the vault, so that
// memory stays bounded by the vault.
func (l *Limiter) Forget(keepCaller, keepKey func(string) bool) {
	l.backend.Forget(func(scope Scope, id string) bool {
		if scope == ScopeCaller {
			return keepCaller(id)
		}
		return keepKey(id)
	})
	l.slots.Range(func(k, _ any) bool {
		if !keepCaller(k.(string)) {
			l.slots.Delete(k)
		}
		return true
	})
}
