package ratelimit

import "time"

// BucketState is what a bucket holds at an instant, for the status page.
type BucketState struct {
	// Limited is false when the bucket limits nothing (no rate set).
	Limited bool
	// Tokens is how many requests could go now without waiting; Burst is
	// the most the bucket holds.
	Tokens, Burst int
	// Known is false when the backend cannot tell (a shared Redis backend
	// keeps the buckets there).
	Known bool
}

// State is the limiter's state for one caller and its key.
type State struct {
	Caller, Key BucketState
	// InFlight is how many of the caller's requests hold a concurrency
	// place; Concurrency is the cap (0: none).
	InFlight, Concurrency int
	// PausedFor is how long the key's bucket stays stopped because the
	// broadcaster answered 429 (0: not paused); PauseKnown is false when
	// the backend cannot tell.
	PausedFor  time.Duration
	PauseKnown bool
}

// Peeker is a Backend that can read its buckets without taking a token.
// Local implements it; a Backend that does not leaves State's buckets
// unknown.
type Peeker interface {
	// PeekBucket returns how many tokens the bucket of scope and id, made
	// for parameters b, holds at now.
	PeekBucket(now time.Time, scope Scope, id string, b Bucket) int
	// PausedFor returns how long key's bucket stays paused after now.
	PausedFor(key string, now time.Time) time.Duration
}

// State reads the state of caller's and key's buckets without changing
// them. It takes no lock that a request holds for longer than one bucket's
// arithmetic, so a status page reading many callers never stalls requests.
func (l *Limiter) State(caller, key string) State {
	t := l.limits.Load()
	cl, kb := t.ForCaller(caller), t.ForKey(key)
	now := l.now()
	st := State{Concurrency: cl.Concurrency}
	if v, ok := l.slots.Load(caller); ok {
		st.InFlight = len(v.(*slots).ch)
	}
	st.Caller = BucketState{Limited: cl.Bucket.Limited(), Burst: cl.Bucket.Burst}
	st.Key = BucketState{Limited: kb.Limited(), Burst: kb.Burst}
	p, ok := l.backend.(Peeker)
	if !ok {
		return st
	}
	st.PausedFor, st.PauseKnown = p.PausedFor(key, now), true
	if st.Caller.Limited {
		st.Caller.Tokens, st.Caller.Known = p.PeekBucket(now, ScopeCaller, caller, cl.Bucket), true
	}
	if st.Key.Limited {
		st.Key.Tokens, st.Key.Known = p.PeekBucket(now, ScopeKey, key, kb), true
	}
	return st
}

// PeekBucket implements Peeker. A bucket not made yet, or made for other
// parameters (a reload changed them), is full.
func (l *Local) PeekBucket(now time.Time, scope Scope, id string, b Bucket) int {
	m := &l.callers
	if scope == ScopeKey {
		m = &l.keys
	}
	v, ok := m.Load(id)
	if !ok || v.(*localBucket).params != b {
		return b.Burst
	}
	lb := v.(*localBucket)
	lb.mu.Lock()
	tat := lb.tat
	lb.mu.Unlock()
	return lb.usage(now, tat).Remaining
}

// PausedFor implements Peeker.
func (l *Local) PausedFor(key string, now time.Time) time.Duration { return l.pausedFor(key, now) }
