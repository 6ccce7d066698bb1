package ratelimit

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Local keeps the buckets in this process. The zero value is ready to use.
type Local struct {
	callers sync.Map // caller → *localBucket
	keys    sync.Map // key → *localBucket
	pauses  sync.Map // key → *atomic.Int64: unix nanoseconds until which the key is paused
}

// NewLocal returns an empty local backend.
func NewLocal() *Local { return &Local{} }

// localBucket is one token bucket, kept as GCRA's theoretical arrival time
// (tat), the same arithmetic as the Redis backend's script: a request may go
// once now >= tat + interval - burst*interval, and taking a token moves tat
// on by one interval. It is paired with the parameters it was made for, so a
// reload that changes a caller's limits gives it a new bucket while callers
// whose limits did not change keep theirs (and their spent tokens).
//
// Not x/time/rate: a queued request that is cancelled must give its token
// back, and rate.Reservation.CancelAt restores nothing once the reservation's
// time has come (a waiting request holds the key's token from the moment it
// was queued) nor when a later reservation exists (the other waiters). With
// tat, a refund is tat -= interval, whatever the order.
type localBucket struct {
	params   Bucket
	interval time.Duration
	mu       sync.Mutex
	tat      time.Time
}

func (l *Local) bucket(m *sync.Map, id string, b Bucket) *localBucket {
	for {
		v, ok := m.Load(id)
		if ok && v.(*localBucket).params == b {
			return v.(*localBucket)
		}
		nb := &localBucket{params: b, interval: intervalOf(b)}
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

// intervalOf is the time one token takes to come back.
func intervalOf(b Bucket) time.Duration {
	return max(1, time.Duration(math.Round(float64(time.Second)/b.Rate)))
}

// gcra is a take from b at now, not yet committed: the tat it would leave
// and how long the request would wait for its token.
func (b *localBucket) gcra(now time.Time) (newTat time.Time, delay time.Duration) {
	tat := b.tat
	if tat.Before(now) {
		tat = now
	}
	newTat = tat.Add(b.interval)
	delay = max(0, newTat.Sub(now)-time.Duration(b.params.Burst)*b.interval)
	return newTat, delay
}

// usage is the bucket's state for the RateLimit header when its tat is tat.
func (b *localBucket) usage(now, tat time.Time) Usage {
	if b == nil {
		return Usage{}
	}
	reset := max(0, tat.Sub(now))
	left := time.Duration(b.params.Burst)*b.interval - reset
	return Usage{Remaining: max(0, int(left/b.interval)), Reset: reset}
}

// refund gives one token back: the request that took it was not sent.
func (b *localBucket) refund() {
	b.mu.Lock()
	b.tat = b.tat.Add(-b.interval)
	b.mu.Unlock()
}

// Take implements Backend. The caller's bucket is locked before the key's,
// always, so two requests cannot deadlock, and both tokens or neither are
// taken.
func (l *Local) Take(_ context.Context, now time.Time, r Request) (Result, error) {
	var (
		cb, kb       *localBucket
		cTat, kTat   time.Time
		cDelay, kDel time.Duration
	)
	if r.CallerBucket.Limited() {
		cb = l.bucket(&l.callers, r.Caller, r.CallerBucket)
		cb.mu.Lock()
		defer cb.mu.Unlock()
		cTat, cDelay = cb.gcra(now)
	}
	if r.KeyBucket.Limited() {
		kb = l.bucket(&l.keys, r.Key, r.KeyBucket)
		kb.mu.Lock()
		defer kb.mu.Unlock()
		kTat, kDel = kb.gcra(now)
	}
	pause := l.pausedFor(r.Key, now)
	wait := max(cDelay, kDel, pause)
	if wait > r.MaxWait {
		// Nothing was taken: a refused request costs nothing.
		res := refusal(cDelay, kDel, pause)
		if cb != nil {
			res.Caller = cb.usage(now, cTat.Add(-cb.interval))
		}
		if kb != nil {
			res.Key = kb.usage(now, kTat.Add(-kb.interval))
		}
		return res, nil
	}
	res := Result{Allowed: true, Wait: wait}
	if cb != nil {
		cb.tat, res.Caller = cTat, cb.usage(now, cTat)
	}
	if kb != nil {
		kb.tat, res.Key = kTat, kb.usage(now, kTat)
	}
	if wait > 0 {
		res.Refund = func(context.Context) {
			if cb != nil {
				cb.refund()
			}
			if kb != nil {
				kb.refund()
			}
		}
	}
	return res, nil
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
