package keyvault

import (
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCoolDown is how long a version the broadcaster refused is avoided
// when RejectionsOptions.CoolDown is 0.
const DefaultCoolDown = 5 * time.Minute

// RejectionsOptions configures [NewRejections].
type RejectionsOptions struct {
	// CoolDown is how long a refused version is avoided. 0 means
	// DefaultCoolDown; a negative value is an error.
	CoolDown time.Duration
	// Now is the clock; nil means time.Now. Tests inject one to end a
	// cool-down without waiting.
	Now func() time.Time
}

// Rejections remembers the key versions the broadcaster refused (answered 403
// to), each for a cool-down, so that requests carry a standby version
// meanwhile ([Key.Pick]). A version is known by its secret, not by its place
// in a vault, so a rejection outlives vault reloads that keep the key.
//
// Lookups never lock and never allocate: the set is an immutable map behind
// an atomic pointer, replaced whole by Reject (rejections are rare). A nil
// *Rejections holds nothing.
type Rejections struct {
	coolDown time.Duration
	now      func() time.Time

	mu  sync.Mutex // serialises writers; readers never take it
	set atomic.Pointer[map[[sha256.Size]byte]time.Time]
}

// NewRejections returns an empty set.
func NewRejections(opts RejectionsOptions) (*Rejections, error) {
	if opts.CoolDown < 0 {
		return nil, errors.New("keyvault: RejectionsOptions.CoolDown must not be negative")
	}
	r := &Rejections{coolDown: opts.CoolDown, now: opts.Now}
	if r.coolDown == 0 {
		r.coolDown = DefaultCoolDown
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.set.Store(&map[[sha256.Size]byte]time.Time{})
	return r, nil
}

// CoolDown returns how long a refused version is avoided.
func (r *Rejections) CoolDown() time.Duration { return r.coolDown }

// Reject records that the broadcaster refused v: it is avoided until the
// cool-down from now has passed (a refusal during the cool-down extends it).
// first is true when v was not already in a cool-down, so that a burst of
// refusals (every request in flight with the version) is counted and logged
// once.
func (r *Rejections) Reject(v *Version) (until time.Time, first bool) {
	now := r.now()
	until = now.Add(r.coolDown)
	id := v.Secret.identity()
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.set.Load()
	prev, had := old[id]
	first = !had || !now.Before(prev)
	next := make(map[[sha256.Size]byte]time.Time, len(old)+1)
	for k, t := range old {
		if now.Before(t) { // drop the cool-downs that are over
			next[k] = t
		}
	}
	next[id] = until
	r.set.Store(&next)
	return until, first
}

// Rejected reports whether v is in a cool-down now. It never blocks.
func (r *Rejections) Rejected(v *Version) bool {
	if r == nil {
		return false
	}
	set := *r.set.Load()
	if len(set) == 0 {
		return false
	}
	until, ok := set[v.Secret.identity()]
	return ok && r.now().Before(until)
}

// Until returns the end of v's cool-down, and whether v is in one now.
func (r *Rejections) Until(v *Version) (time.Time, bool) {
	if r == nil {
		return time.Time{}, false
	}
	until, ok := (*r.set.Load())[v.Secret.identity()]
	if !ok || !r.now().Before(until) {
		return time.Time{}, false
	}
	return until, true
}
