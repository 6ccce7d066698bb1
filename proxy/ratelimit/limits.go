package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// Bucket is a token bucket: Rate tokens per second, holding at most Burst.
// A zero Rate means no limit.
type Bucket struct {
	Rate  float64
	Burst int
}

// Limited reports whether the bucket limits anything.
func (b Bucket) Limited() bool { return b.Rate > 0 }

// Window is how long an empty bucket takes to fill up again: the "w" of the
// RateLimit-Policy header.
func (b Bucket) Window() time.Duration {
	if !b.Limited() {
		return 0
	}
	return time.Duration(float64(b.Burst) / b.Rate * float64(time.Second))
}

func (b Bucket) String() string {
	if !b.Limited() {
		return "unlimited"
	}
	return fmt.Sprintf("%g/s, burst %d", b.Rate, b.Burst)
}

// complete fills in the default burst and checks the values.
func (b Bucket) complete() (Bucket, error) {
	if b.Rate < 0 || math.IsNaN(b.Rate) || math.IsInf(b.Rate, 0) {
		return b, fmt.Errorf("rate %v: must be a finite number >= 0 (0 means no limit)", b.Rate)
	}
	if b.Burst < 0 {
		return b, fmt.Errorf("burst %d: must be >= 0", b.Burst)
	}
	if b.Rate > 0 && b.Burst == 0 {
		b.Burst = max(1, int(math.Ceil(b.Rate)))
	}
	return b, nil
}

// Mode says what happens to a request over a limit.
type Mode uint8

const (
	// Reject answers 429 at once: for interactive callers that prefer to fail fast.
	Reject Mode = iota
	// Wait queues the request for up to MaxWait, then answers 429: for batch jobs.
	Wait
)

func (m Mode) String() string {
	if m == Wait {
		return "wait"
	}
	return "reject"
}

// ParseMode reads "reject" or "wait".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "reject":
		return Reject, nil
	case "wait":
		return Wait, nil
	}
	return Reject, fmt.Errorf("mode %q: use reject or wait", s)
}

// DefaultMaxWait is the MaxWait scgate's config gives a caller in Wait
// mode when none is set.
const DefaultMaxWait = 5 * time.Second

// CallerLimits are the limits of one caller.
type CallerLimits struct {
	// Bucket is the caller's own token bucket.
	Bucket
	// Concurrency caps the caller's requests in flight; 0 means no cap.
	Concurrency int
	// Mode is Reject or Wait.
	Mode Mode
	// MaxWait is how long a request may be queued in Wait mode (for a token
	// and for a concurrency slot together). It must be > 0 in Wait mode.
	MaxWait time.Duration
}

func (c CallerLimits) complete() (CallerLimits, error) {
	b, err := c.Bucket.complete()
	c.Bucket = b
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d: must be >= 0 (0 means no cap)", c.Concurrency))
	}
	if c.MaxWait < 0 {
		errs = append(errs, errors.New("max_wait must not be negative"))
	}
	if c.Mode == Wait && c.MaxWait == 0 {
		errs = append(errs, errors.New(`mode "wait" needs a max_wait > 0`))
	}
	return c, errors.Join(errs...)
}

// Limits is the whole limit table: defaults for every caller and key, and
// overrides for some. Override entries are complete values (the config
// loader merges them with the defaults).
type Limits struct {
	Caller  CallerLimits
	Callers map[string]CallerLimits
	Key     Bucket
	Keys    map[string]Bucket
}

// ForCaller returns the limits that apply to caller.
func (l *Limits) ForCaller(caller string) CallerLimits {
	if c, ok := l.Callers[caller]; ok {
		return c
	}
	return l.Caller
}

// ForKey returns the bucket shared by the callers of the named key.
func (l *Limits) ForKey(key string) Bucket {
	if b, ok := l.Keys[key]; ok {
		return b
	}
	return l.Key
}

// complete validates every entry and fills in default bursts, returning a
// copy that shares nothing with l.
func (l Limits) complete() (*Limits, error) {
	var errs []error
	out := &Limits{Callers: make(map[string]CallerLimits, len(l.Callers)), Keys: make(map[string]Bucket, len(l.Keys))}
	var err error
	if out.Caller, err = l.Caller.complete(); err != nil {
		errs = append(errs, fmt.Errorf("default caller limits: %w", err))
	}
	if out.Key, err = l.Key.complete(); err != nil {
		errs = append(errs, fmt.Errorf("default key limits: %w", err))
	}
	for _, name := range sortedKeys(l.Callers) {
		c, err := l.Callers[name].complete()
		if err != nil {
			errs = append(errs, fmt.Errorf("caller %q: %w", name, err))
		}
		out.Callers[name] = c
	}
	for _, name := range sortedKeys(l.Keys) {
		b, err := l.Keys[name].complete()
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", name, err))
		}
		out.Keys[name] = b
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	return out, nil
}

// Validate reports every problem in l, as New and SetLimits would.
func (l Limits) Validate() error {
	_, err := l.complete()
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
