package keyvault

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults of [ExpiryWarnerOptions].
const (
	DefaultWarnBefore   = 14 * 24 * time.Hour
	DefaultWarnEvery    = 24 * time.Hour
	defaultExpiryPeriod = time.Hour
)

// CoveredUntil returns the first instant at or after now at which k has no
// valid version, or the zero time when its versions cover all time from now
// on. A rotation whose new version starts before the old one expires leaves
// no gap; a last version with an expiry, or a gap between two versions, does.
func (k *Key) CoveredUntil(now time.Time) time.Time {
	t := now
	// Each round moves t to the latest expiry among the versions valid at t,
	// which is later than t and past that version, so len+1 rounds suffice.
	for range len(k.Versions) + 1 {
		var reach time.Time
		valid := false
		for _, v := range k.Versions {
			if !v.ValidAt(t) {
				continue
			}
			if v.Expires.IsZero() {
				return time.Time{}
			}
			valid = true
			if v.Expires.After(reach) {
				reach = v.Expires
			}
		}
		if !valid {
			return t
		}
		t = reach
	}
	return t
}

// Expiring returns the versions of every key whose expiry falls within
// (now, now+within], sorted by key name and then file order.
func (v *Vault) Expiring(now time.Time, within time.Duration) []*Version {
	if v == nil {
		return nil
	}
	limit := now.Add(within)
	var out []*Version
	for _, k := range v.sortedKeys {
		for _, ver := range k.Versions {
			if !ver.Expires.IsZero() && ver.Expires.After(now) && !ver.Expires.After(limit) {
				out = append(out, ver)
			}
		}
	}
	return out
}

// ExpiryWarnerOptions configures [NewExpiryWarner].
type ExpiryWarnerOptions struct {
	// WarnBefore is how far ahead an expiry is warned about; 0 means
	// DefaultWarnBefore (14 days).
	WarnBefore time.Duration
	// Every is how often the same version is warned about again; 0 means
	// DefaultWarnEvery (once a day).
	Every time.Duration
	// Period is how often Run checks; 0 means an hour.
	Period time.Duration
	// Logger receives the warnings (prefixes only). nil means no logging.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ExpiryWarner logs a warning for each key version that expires within
// WarnBefore, at most once per Every for a given version, so that an expiry
// is seen coming in the log without flooding it. It is safe for concurrent
// use.
type ExpiryWarner struct {
	within time.Duration
	every  time.Duration
	period time.Duration
	log    *zap.Logger
	now    func() time.Time

	mu   sync.Mutex
	last map[[sha256.Size]byte]time.Time // version → when it was last warned about
}

// NewExpiryWarner validates opts and returns a warner.
func NewExpiryWarner(opts ExpiryWarnerOptions) (*ExpiryWarner, error) {
	if opts.WarnBefore < 0 || opts.Every < 0 || opts.Period < 0 {
		return nil, errors.New("keyvault: ExpiryWarnerOptions durations must not be negative")
	}
	w := &ExpiryWarner{
		within: cmp.Or(opts.WarnBefore, DefaultWarnBefore),
		every:  cmp.Or(opts.Every, DefaultWarnEvery),
		period: cmp.Or(opts.Period, defaultExpiryPeriod),
		log:    opts.Logger,
		now:    opts.Now,
		last:   make(map[[sha256.Size]byte]time.Time),
	}
	if w.log == nil {
		w.log = zap.NewNop()
	}
	if w.now == nil {
		w.now = time.Now
	}
	return w, nil
}

// Check warns about the versions of v expiring soon that were not warned
// about within the last Every, and returns how many it warned about.
func (w *ExpiryWarner) Check(v *Vault) int {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	current := make(map[[sha256.Size]byte]bool)
	n := 0
	for _, ver := range v.Expiring(now, w.within) {
		id := ver.Secret.identity()
		current[id] = true
		if last, ok := w.last[id]; ok && now.Sub(last) < w.every {
			continue
		}
		w.last[id] = now
		n++
		w.warn(v, ver, now)
	}
	for id := range w.last {
		if !current[id] { // removed, renewed or expired: forget it
			delete(w.last, id)
		}
	}
	return n
}

func (w *ExpiryWarner) warn(v *Vault, ver *Version, now time.Time) {
	k := v.Key(ver.Key)
	fields := []zap.Field{
		zap.String("key", ver.Key), zap.String("prefix", ver.Secret.Prefix()),
		zap.Time("expires", ver.Expires), zap.Duration("expires_in", ver.Expires.Sub(now).Round(time.Minute)),
		zap.Strings("callers", v.CallersOf(ver.Key)), zap.Int("line", ver.Line),
	}
	gap := k.CoveredUntil(now)
	switch {
	case gap.IsZero() || gap.After(ver.Expires):
		w.log.Warn("key version expires soon; another version of the key takes over", fields...)
	default:
		w.log.Warn("key version expires soon and no other version of the key covers the time after it: add a new version to the vault",
			append(fields, zap.Time("key_lapses_at", gap))...)
	}
}

// Run checks src's vault at once and then every Period until ctx is done.
func (w *ExpiryWarner) Run(ctx context.Context, src func() *Vault) error {
	w.Check(src())
	t := time.NewTicker(w.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.Check(src())
		}
	}
}
