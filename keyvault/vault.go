package keyvault

import (
	"errors"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap/zapcore"
)

// Sentinel errors of [Vault.Select]; the proxy maps them to its responses.
var (
	// ErrUnknownCaller: the caller has no entry in [callers] (403 forbidden).
	ErrUnknownCaller = errors.New("keyvault: caller has no key in the vault")
	// ErrNoValidKey: the caller's key has no version valid now (503
	// no_valid_key). Select wraps it with the key's name.
	ErrNoValidKey = errors.New("keyvault: no key version is valid now")
)

// Version is one [[keys.NAME]] entry of the vault file. Versions belong to an
// immutable [Vault]: treat them as read-only.
type Version struct {
	Key       string    // the key's name
	Index     int       // 0-based position among the key's versions in the file
	Secret    Secret    // the key itself; prints only its prefix
	NotBefore time.Time // first instant the version may be used; zero: unbounded
	Expires   time.Time // first instant it may no longer be used; zero: unbounded
	Line      int       // line of its [[keys.NAME]] header in the vault file
	// SecretFile is the resolved path the secret was read from, "" when the
	// secret is inline. It lets the CLI say where a key came from.
	SecretFile string
}

// ValidAt reports whether the version may be used at t: not_before <= t <
// expires, each bound being optional.
func (v *Version) ValidAt(t time.Time) bool {
	if !v.NotBefore.IsZero() && t.Before(v.NotBefore) {
		return false
	}
	return v.Expires.IsZero() || t.Before(v.Expires)
}

// String names the version by key, index and prefix, so a *Version prints
// usefully (and safely) in messages and slices.
func (v *Version) String() string {
	return v.Key + "[" + strconv.Itoa(v.Index) + "] " + v.Secret.String()
}

// MarshalLogObject lets zap.Object log a version with its prefix only.
func (v *Version) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("key", v.Key)
	enc.AddInt("index", v.Index)
	enc.AddString("prefix", v.Secret.Prefix())
	if !v.NotBefore.IsZero() {
		enc.AddTime("not_before", v.NotBefore)
	}
	if !v.Expires.IsZero() {
		enc.AddTime("expires", v.Expires)
	}
	enc.AddInt("line", v.Line)
	if v.SecretFile != "" {
		enc.AddString("secret_file", v.SecretFile)
	}
	return nil
}

// State is a version's standing at an instant, as `scgate keys` shows it.
type State string

// The states a version can be in.
const (
	StateActive   State = "active"   // valid now and the one requests carry
	StateStandby  State = "standby"  // valid now, but another version is active
	StateExpired  State = "expired"  // past its expires
	StatePending  State = "pending"  // before its not_before
	StateRejected State = "rejected" // valid now, but the upstream refused it recently (see Rejections)
)

// Key is a named key with its versions. Keys belong to an immutable [Vault]:
// treat them as read-only.
type Key struct {
	Name string
	// Panel is the panel (upstream) the key belongs to; it is only ever
	// sent there.
	Panel    string
	Versions []*Version // in file order

	// noValid is built once at load, so that Select reports a key without a
	// valid version without allocating.
	noValid error
}

// Active returns the version to use at now, or nil if none is valid: among
// the versions valid at now, the one with the latest NotBefore (a zero
// NotBefore counts as the oldest); on a tie, the one listed last. This lets an
// operator stage a new version ahead with a later not_before and have it take
// over on its own.
func (k *Key) Active(now time.Time) *Version {
	return k.best(now, nil, nil)
}

// best is the selection rule of Active applied to the versions valid at now
// that are not skip and not rejected by rej (a nil rej rejects nothing).
func (k *Key) best(now time.Time, skip *Version, rej *Rejections) *Version {
	var best *Version
	for _, v := range k.Versions {
		if v == skip || !v.ValidAt(now) || rej.Rejected(v) {
			continue
		}
		// The zero time sorts before every real time, so an unbounded
		// not_before is naturally the oldest; >= lets later entries win ties.
		if best == nil || !v.NotBefore.Before(best.NotBefore) {
			best = v
		}
	}
	return best
}

// Pick returns the version a request should carry at now: the active version
// among those valid at now that rej does not hold rejected. When every valid
// version is rejected it returns the plain Active version anyway: the
// broadcaster's own answer then reaches the caller, and a version refused by
// mistake heals as soon as the broadcaster accepts it again. nil when no
// version is valid. A nil rej rejects nothing. It does not allocate.
func (k *Key) Pick(now time.Time, rej *Rejections) *Version {
	if v := k.best(now, nil, rej); v != nil {
		return v
	}
	return k.Active(now)
}

// Standby returns the version to retry with after the broadcaster refused
// refused: the best version valid at now other than refused that rej does not
// hold rejected, or nil when there is none.
func (k *Key) Standby(now time.Time, refused *Version, rej *Rejections) *Version {
	return k.best(now, refused, rej)
}

// State returns the standing of v, one of k's versions, at now.
func (k *Key) State(v *Version, now time.Time) State {
	return k.StateWith(v, now, nil)
}

// StateWith is State taking the rejections rej into account: a version valid
// now that rej holds rejected is StateRejected, and the active version is
// the one [Key.Pick] returns.
func (k *Key) StateWith(v *Version, now time.Time, rej *Rejections) State {
	if !v.ValidAt(now) {
		if !v.NotBefore.IsZero() && now.Before(v.NotBefore) {
			return StatePending
		}
		return StateExpired
	}
	switch {
	case rej.Rejected(v):
		return StateRejected
	case k.Pick(now, rej) == v:
		return StateActive
	}
	return StateStandby
}

// noValidKeyError names the key whose versions are all outside their bounds.
type noValidKeyError struct{ msg string }

func (e *noValidKeyError) Error() string { return e.msg }
func (e *noValidKeyError) Unwrap() error { return ErrNoValidKey }

func newNoValidKeyError(key string) error {
	return &noValidKeyError{msg: "keyvault: key " + strconv.Quote(key) + " has no version valid now"}
}

// Vault is an immutable, validated snapshot of the vault file. It is safe for
// concurrent use, and its lookups allocate nothing. The slices returned by
// its listing methods are fresh copies; the *Key and *Version values are
// shared and must not be modified.
type Vault struct {
	path        string
	keys        map[string]*Key
	sortedKeys  []*Key
	callers     map[string]callerKeys
	panels      []string            // the configured panels, sorted
	callerNames []string            // sorted
	callersOf   map[string][]string // key name → sorted caller names
	secretFiles []string            // resolved secret_file paths, sorted, unique
	digest      [32]byte
}

// Select returns the version of the caller's key to use at now (for a
// caller with keys on several panels, use KeyFor and Key.Active). It returns
// [ErrUnknownCaller] when the caller is not in [callers] (also for a nil
// Vault), and an error wrapping [ErrNoValidKey], naming the key, when the key
// has no version valid at now. It does not allocate.
func (v *Vault) Select(caller string, now time.Time) (*Version, error) {
	if v == nil {
		return nil, ErrUnknownCaller
	}
	k, ok := v.KeyOf(caller)
	if !ok || k == nil {
		return nil, ErrUnknownCaller
	}
	if ver := k.Active(now); ver != nil {
		return ver, nil
	}
	return nil, k.noValid
}

// SelectAvoiding is [Vault.Select] that steers clear of the versions rej holds
// rejected, as [Key.Pick] does. It does not allocate.
func (v *Vault) SelectAvoiding(caller string, now time.Time, rej *Rejections) (*Version, error) {
	if v == nil {
		return nil, ErrUnknownCaller
	}
	k, ok := v.KeyOf(caller)
	if !ok || k == nil {
		return nil, ErrUnknownCaller
	}
	if ver := k.Pick(now, rej); ver != nil {
		return ver, nil
	}
	return nil, k.noValid
}

// Key returns the key named name, or nil.
func (v *Vault) Key(name string) *Key {
	if v == nil {
		return nil
	}
	return v.keys[name]
}

// KeyOf returns the key the caller uses, and whether the caller is known.
// For a caller holding keys on several panels the key is nil: use
// [Vault.KeyFor] with the panel.
func (v *Vault) KeyOf(caller string) (*Key, bool) {
	if v == nil {
		return nil, false
	}
	ck, ok := v.callers[caller]
	return ck.only, ok
}

// Callers returns every caller name, sorted.
func (v *Vault) Callers() []string {
	if v == nil {
		return nil
	}
	return slices.Clone(v.callerNames)
}

// Keys returns every key, sorted by name.
func (v *Vault) Keys() []*Key {
	if v == nil {
		return nil
	}
	return slices.Clone(v.sortedKeys)
}

// CallersOf returns the callers that use the named key, sorted.
func (v *Vault) CallersOf(key string) []string {
	if v == nil {
		return nil
	}
	return slices.Clone(v.callersOf[key])
}

// Path returns the vault file's path as given to [Load] or [Parse].
func (v *Vault) Path() string {
	if v == nil {
		return ""
	}
	return v.path
}

// Digest returns a SHA-256 over the vault file's bytes and every secret_file's
// path and bytes. Two vaults with the same digest hold the same content, which
// lets the watcher skip reloads that change nothing (and so stay out of the
// audit trail).
func (v *Vault) Digest() [32]byte {
	if v == nil {
		return [32]byte{}
	}
	return v.digest
}

// SecretFiles returns the resolved paths of every secret_file the vault read,
// sorted. The watcher watches their directories too.
func (v *Vault) SecretFiles() []string {
	if v == nil {
		return nil
	}
	return slices.Clone(v.secretFiles)
}

// versionCount returns how many versions the vault holds, for log summaries.
func (v *Vault) versionCount() int {
	n := 0
	for _, k := range v.sortedKeys {
		n += len(k.Versions)
	}
	return n
}
