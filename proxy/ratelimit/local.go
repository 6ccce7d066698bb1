package ratelimit

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Local keeps the buckets in this process. The zero value is ready to use.
type Local struct {
	callers sync.Map // caller → *localBucket
	keys    sync.Map // key → *localBucket
	pauses  sync.Map // key → *atomic.Int64: unix nanoseconds until which the key is paused
}

// NewLocal returns an empty local backend.
func NewLocal() *Local { return &Local{} }

// localBucket pairs a rate.Limiter with the parameters it was made for, so a
// reload that changes a caller's limits gives it a new bucket while callers
// whose limits did not change keep theirs (and their spent tokens).
type localBucket struct {
	params Bucket
	lim    *rate.Limiter
}

func (l *Local) bucket(m *sync.Map, id string, b Bucket) *localBucket {
	for {
		v, ok := m.Load(id)
		if ok && v.(*localBucket).params == b {
			return v.(*localBucket)
		}
		nb := &localBucket{params: b, lim: rate.NewLimiter(rate.Limit(b.Rate), b.Burst)}
		if !ok {
			if _, loaded := m.LoadOrStore(id, nb); !loaded {
				return nb
			}
			continue // another request made it first: use theirs
		}
		if m.CompareAndSwap(id, v, nb) {
			return nb
		}
	}
}

// Take implements Backend.
func (l *Local) Take(_ context.Context, now time.Time, r Request) (Result, error) {
	var (
		cb, kb       *localBucket
		cr, kr       *rate.Reservation
		cDelay, kDel time.Duration
	)
	if r.CallerBucket.Limited() {
		cb = l.bucket(&l.callers, r.Caller, r.CallerBucket)
		cr = cb.lim.ReserveN(now, 1)
		cDelay = cr.DelayFrom(now)
	}
	if r.KeyBucket.Limited() {
		kb = l.bucket(&l.keys, r.Key, r.KeyBucket)
		kr = kb.lim.ReserveN(now, 1)
		kDel = kr.DelayFrom(now)
	}
	pause := l.pausedFor(r.Key, now)
	wait := max(cDelay, kDel, pause)
	if wait <= r.MaxWait {
		return Result{Allowed: true, Wait: wait, Caller: usage(cb, now), Key: usage(kb, now)}, nil
	}
	// Hand the tokens back: a refused request costs nothing.
	if cr != nil {
		cr.CancelAt(now)
	}
	if kr != nil {
		kr.CancelAt(now)
	}
	res := refusal(cDelay, kDel, pause)
	res.Caller, res.Key = usage(cb, now), usage(kb, now)
	return res, nil
}

func usage(b *localBucket, now time.Time) Usage {
	if b == nil {
		return Usage{}
	}
	tokens := b.lim.TokensAt(now)
	missing := float64(b.params.Burst) - tokens
	return Usage{
		Remaining: max(0, int(math.Floor(tokens))),
		Reset:     time.Duration(missing / b.params.Rate * float64(time.Second)),
	}
}

func (l *Local) pausedFor(key string, now time.Time) time.Duration {
	v, ok := l.pauses.Load(key)
	if !ok {
		return 0
	}
	return max(0, time.Duration(v.(*atomic.Int64).Load()-now.UnixNano()))
}

// Pause implements Backend. A shorter pause never shortens a longer one.
func (l *Local) Pause(_ context.Context, now time.Time, key string, d time.Duration) error {
	until := now.Add(d).UnixNano()
	v, _ := l.pauses.LoadOrStore(key, new(atomic.Int64))
	p := v.(*atomic.Int64)
	for {
		cur := p.Load()
		if cur >= until || p.CompareAndSwap(cur, until) {
			return nil
		}
	}
}

// Forget implements Backend.
func (l *Local) Forget(keep func(scope Scope, id string) bool) {
	drop := func(m *sync.Map, scope Scope) {
		m.Range(func(k, _ any) bool {
			if !keep(scope, k.(string)) {
				m.Delete(k)
			}
			return true
		})
	}
	drop(&l.callers, ScopeCaller)
	drop(&l.keys, ScopeKey)
	drop(&l.pauses, ScopeKey)
}

// Name implements Backend.
func (l *Local) Name() string { return "local" }

// count reports how many buckets and pauses are held, for tests.
func (l *Local) count() (n int) {
	for _, m := range []*sync.Map{&l.callers, &l.keys, &l.pauses} {
		m.Range(func(any, any) bool { n++; return true })
	}
	return n
}
