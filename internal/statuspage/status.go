package statuspage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy/ratelimit"
)

// Bounds on what one page holds.
const (
	// DefaultLimit is how many callers a page shows without ?limit.
	DefaultLimit = 50
	// MaxLimit is the most callers one page shows, whatever ?limit asks.
	MaxLimit = 200
	// MaxQueryLen is the longest search (?q) accepted, in bytes.
	MaxQueryLen = 200
	// maxVersions bounds the versions shown for one key.
	maxVersions = 16
	// maxAttention bounds the keys listed as needing attention.
	maxAttention = 20
	// maxCertificates bounds the certificates shown.
	maxCertificates = 50
)

// Build is what the page says about the running binary.
type Build struct {
	Version   string    `json:"version"`
	Revision  string    `json:"revision"`
	GoVersion string    `json:"go_version"`
	Started   time.Time `json:"started"`
}

// Certificate is a served certificate's (or a CA bundle's) expiry.
type Certificate struct {
	Name     string    `json:"name"`
	NotAfter time.Time `json:"not_after"`
}

// Limiter reads the limiter's state for a caller and its key:
// *ratelimit.Limiter implements it.
type Limiter interface {
	State(caller, key string) ratelimit.State
}

// Options configures New. Vault is required; the others may be nil.
type Options struct {
	Build Build
	// Vault returns the vault in service.
	Vault func() *keyvault.Vault
	// Rejections is the set of versions the broadcaster refused.
	Rejections *keyvault.Rejections
	// Limiter reads the rate limiter's buckets.
	Limiter Limiter
	// Panels lists the panels the gateway forwards to; Prober checks them
	// (nil: a Prober with its defaults).
	Panels func() []PanelTarget
	Prober *Prober
	// Certificates lists the certificate expiries to show.
	Certificates func() []Certificate
	// Reloads is the log of vault reloads.
	Reloads *ReloadLog
	// ExpiryWarnBefore is rotation.expiry_warn_before: a version valid
	// now that expires within it is a warning. 0 means
	// keyvault.DefaultWarnBefore.
	ExpiryWarnBefore time.Duration
	// Refresh is how often the HTML page reloads itself; 0 means 30 s.
	Refresh time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Page builds the status and serves it. Create it with New.
type Page struct {
	opts Options
}

// New validates opts and returns the page.
func New(opts Options) (*Page, error) {
	if opts.Vault == nil {
		return nil, errors.New("statuspage: Options.Vault is required")
	}
	if opts.ExpiryWarnBefore < 0 || opts.Refresh < 0 {
		return nil, errors.New("statuspage: ExpiryWarnBefore and Refresh must not be negative")
	}
	if opts.ExpiryWarnBefore == 0 {
		opts.ExpiryWarnBefore = keyvault.DefaultWarnBefore
	}
	if opts.Refresh == 0 {
		opts.Refresh = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Prober == nil {
		opts.Prober = &Prober{}
	}
	if opts.Reloads == nil {
		opts.Reloads = &ReloadLog{}
	}
	return &Page{opts: opts}, nil
}

// Query selects the callers a page shows: those whose name or key
// contains Q (case-insensitively), from Offset, at most Limit.
type Query struct {
	Q      string
	Offset int
	Limit  int
}

// ErrBadQuery is wrapped by ParseQuery's errors.
var ErrBadQuery = errors.New("statuspage: bad query")

// ParseQuery reads q, offset and limit from a URL query. A limit above
// MaxLimit is lowered to it; a negative or malformed number, or a search
// longer than MaxQueryLen, is an error.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Q: v.Get("q"), Limit: DefaultLimit}
	if len(q.Q) > MaxQueryLen {
		return q, fmt.Errorf("%w: q is longer than %d bytes", ErrBadQuery, MaxQueryLen)
	}
	num := func(name string, dst *int) error {
		s := v.Get(name)
		if s == "" {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: %s must be a whole number of 0 or more", ErrBadQuery, name)
		}
		*dst = n
		return nil
	}
	if err := errors.Join(num("offset", &q.Offset), num("limit", &q.Limit)); err != nil {
		return q, err
	}
	if q.Limit == 0 || q.Limit > MaxLimit {
		q.Limit = min(max(q.Limit, DefaultLimit), MaxLimit)
	}
	return q, nil
}

// Status is everything the page shows; /status.json serves it as is.
type Status struct {
	GeneratedAt time.Time `json:"generated_at"`
	Build       Build     `json:"build"`
	// UptimeSeconds is the time since Build.Started.
	UptimeSeconds int64 `json:"uptime_seconds"`
	// ExpiryWarnSeconds is rotation.expiry_warn_before.
	ExpiryWarnSeconds int64         `json:"expiry_warn_before_seconds"`
	Panels            []Panel       `json:"panels"`
	Summary           Summary       `json:"summary"`
	Callers           CallerPage    `json:"callers"`
	Reloads           []Reload      `json:"reloads"`
	Certificates      []Certificate `json:"certificates"`
}

// Summary counts, over the whole vault, what needs attention.
type Summary struct {
	Callers int `json:"callers"`
	Keys    int `json:"keys"`
	// KeysWarning: a version valid now expires within expiry_warn_before.
	KeysWarning int `json:"keys_warning"`
	// KeysNoValid: no version is valid now (requests get no_valid_key).
	KeysNoValid int `json:"keys_no_valid"`
	// VersionsRejected: versions set aside after the broadcaster refused them.
	VersionsRejected int `json:"versions_rejected"`
	// Attention lists up to 20 keys with a warning, no valid version or a
	// rejected version, worst first.
	Attention []Attention `json:"attention"`
}

// Attention is one key that needs a look, and why.
type Attention struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// CallerPage is one page of callers.
type CallerPage struct {
	Q string `json:"q"`
	// Matched is how many entries (a caller on a panel) the search matched
	// (all of them without one); Offset and Limit select Items from those.
	Matched int      `json:"matched"`
	Offset  int      `json:"offset"`
	Limit   int      `json:"limit"`
	Items   []Caller `json:"items"`
}

// Caller is one caller, its key and the key's versions.
type Caller struct {
	Name string `json:"name"`
	// Panel is the panel the key belongs to: a caller holding keys on
	// several panels has one entry per panel.
	Panel string `json:"panel"`
	Key   string `json:"key"`
	// Active is the prefix of the version requests carry; empty when none
	// is valid.
	Active string `json:"active"`
	// Standby lists the prefixes of the other versions valid now.
	Standby  []string  `json:"standby"`
	Versions []Version `json:"versions"`
	// MoreVersions counts the versions left out beyond the cap.
	MoreVersions int      `json:"more_versions,omitempty"`
	Warnings     []string `json:"warnings"`
	Limits       Limits   `json:"limits"`
}

// Version is one key version: its prefix, never its secret.
type Version struct {
	Prefix    string         `json:"prefix"`
	State     keyvault.State `json:"state"`
	NotBefore *time.Time     `json:"not_before,omitempty"`
	Expires   *time.Time     `json:"expires,omitempty"`
	// RejectedUntil is when a rejected version comes back.
	RejectedUntil *time.Time `json:"rejected_until,omitempty"`
	// Warning: valid now and expiring within expiry_warn_before.
	Warning bool `json:"warning"`
}

// Limits is the limiter's state for a caller and its key. A nil token
// count is unknown (a shared backend) or unlimited (Limited false).
type Limits struct {
	CallerLimited bool `json:"caller_limited"`
	CallerTokens  *int `json:"caller_tokens,omitempty"`
	CallerBurst   int  `json:"caller_burst"`
	KeyLimited    bool `json:"key_limited"`
	KeyTokens     *int `json:"key_tokens,omitempty"`
	KeyBurst      int  `json:"key_burst"`
	InFlight      int  `json:"in_flight"`
	Concurrency   int  `json:"concurrency"`
	// PausedUntil is set while the key is paused after an upstream 429.
	PausedUntil *time.Time `json:"paused_until,omitempty"`
}

// Snapshot builds the status for q.
func (p *Page) Snapshot(ctx context.Context, q Query) Status {
	now := p.opts.Now()
	v := p.opts.Vault()
	st := Status{
		GeneratedAt: now, Build: p.opts.Build,
		ExpiryWarnSeconds: int64(p.opts.ExpiryWarnBefore / time.Second),
		Panels:            []Panel{}, Reloads: p.opts.Reloads.Recent(), Certificates: []Certificate{},
	}
	if !p.opts.Build.Started.IsZero() {
		st.UptimeSeconds = int64(now.Sub(p.opts.Build.Started) / time.Second)
	}
	if p.opts.Panels != nil {
		st.Panels = p.opts.Prober.Check(ctx, p.opts.Panels())
	}
	if p.opts.Certificates != nil {
		certs := p.opts.Certificates()
		st.Certificates = certs[:min(len(certs), maxCertificates)]
	}
	st.Summary = p.summary(v, now)
	st.Callers = p.callers(v, q, now)
	return st
}

// summary walks every key once: with 10,000 keys it stays a few
// milliseconds, and only counts and up to maxAttention names come out.
func (p *Page) summary(v *keyvault.Vault, now time.Time) Summary {
	keys := v.Keys()
	s := Summary{Callers: len(v.Callers()), Keys: len(keys), Attention: []Attention{}}
	var noValid, warning, rejected []Attention
	for _, k := range keys {
		kv := p.versions(k, now)
		switch {
		case k.Pick(now, p.opts.Rejections) == nil:
			s.KeysNoValid++
			noValid = append(noValid, Attention{k.Name, "no version valid now"})
		case kv.warning != "":
			s.KeysWarning++
			warning = append(warning, Attention{k.Name, kv.warning})
		}
		if kv.rejected > 0 {
			s.VersionsRejected += kv.rejected
			rejected = append(rejected, Attention{k.Name, "a version was refused by the broadcaster"})
		}
	}
	for _, list := range [][]Attention{noValid, rejected, warning} {
		for _, a := range list {
			if len(s.Attention) == maxAttention {
				return s
			}
			s.Attention = append(s.Attention, a)
		}
	}
	return s
}

// keyVersions is one key's versions as shown, with what they add up to.
type keyVersions struct {
	list     []Version
	more     int
	active   string
	standby  []string
	warning  string // the first warning, for the summary
	warnings []string
	rejected int
}

func (p *Page) versions(k *keyvault.Key, now time.Time) keyVersions {
	out := keyVersions{list: []Version{}, standby: []string{}, warnings: []string{}}
	rej := p.opts.Rejections
	for i, ver := range k.Versions {
		state := k.StateWith(ver, now, rej)
		pv := Version{Prefix: ver.Secret.Prefix(), State: state, NotBefore: timePtr(ver.NotBefore), Expires: timePtr(ver.Expires)}
		if until, ok := rej.Until(ver); ok && state == keyvault.StateRejected {
			pv.RejectedUntil = timePtr(until)
			out.rejected++
			out.warnings = append(out.warnings, fmt.Sprintf("%s was refused by the broadcaster; set aside until %s",
				pv.Prefix, until.UTC().Format(time.RFC3339)))
		}
		switch state {
		case keyvault.StateActive:
			out.active = pv.Prefix
		case keyvault.StateStandby:
			out.standby = append(out.standby, pv.Prefix)
		}
		if ver.ValidAt(now) && !ver.Expires.IsZero() && ver.Expires.Sub(now) <= p.opts.ExpiryWarnBefore {
			pv.Warning = true
			w := fmt.Sprintf("%s expires in %s (%s)", pv.Prefix, Human(ver.Expires.Sub(now)), ver.Expires.UTC().Format(time.RFC3339))
			out.warnings = append(out.warnings, w)
			if out.warning == "" {
				out.warning = w
			}
		}
		if i < maxVersions {
			out.list = append(out.list, pv)
		} else {
			out.more++
		}
	}
	if out.active == "" {
		out.warnings = append(out.warnings, "no version is valid now: requests get no_valid_key")
	}
	return out
}

func (p *Page) callers(v *keyvault.Vault, q Query, now time.Time) CallerPage {
	page := CallerPage{Q: q.Q, Offset: q.Offset, Limit: q.Limit, Items: []Caller{}}
	needle := strings.ToLower(q.Q)
	// One row per caller and panel: a caller holding keys on several panels
	// has a key (and versions, limits) on each.
	type row struct {
		caller string
		key    *keyvault.Key
	}
	var rows []row
	for _, name := range v.Callers() {
		for _, panel := range v.PanelsOf(name) {
			k, _ := v.KeyFor(name, panel)
			if k == nil {
				continue
			}
			if needle != "" && !strings.Contains(strings.ToLower(name), needle) &&
				!strings.Contains(strings.ToLower(k.Name), needle) && !strings.Contains(strings.ToLower(panel), needle) {
				continue
			}
			rows = append(rows, row{name, k})
		}
	}
	page.Matched = len(rows)
	if q.Offset >= len(rows) {
		return page
	}
	for _, r := range rows[q.Offset:min(len(rows), q.Offset+q.Limit)] {
		kv := p.versions(r.key, now)
		c := Caller{Name: r.caller, Panel: r.key.Panel, Key: r.key.Name, Active: kv.active, Standby: kv.standby,
			Versions: kv.list, MoreVersions: kv.more, Warnings: kv.warnings}
		if p.opts.Limiter != nil {
			c.Limits = limitsOf(p.opts.Limiter.State(r.caller, r.key.Name), now)
		}
		page.Items = append(page.Items, c)
	}
	return page
}

func limitsOf(s ratelimit.State, now time.Time) Limits {
	l := Limits{
		CallerLimited: s.Caller.Limited, CallerBurst: s.Caller.Burst,
		KeyLimited: s.Key.Limited, KeyBurst: s.Key.Burst,
		InFlight: s.InFlight, Concurrency: s.Concurrency,
	}
	if s.Caller.Limited && s.Caller.Known {
		l.CallerTokens = &s.Caller.Tokens
	}
	if s.Key.Limited && s.Key.Known {
		l.KeyTokens = &s.Key.Tokens
	}
	if s.PausedFor > 0 {
		l.PausedUntil = timePtr(now.Add(s.PausedFor))
	}
	return l
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// Human writes d in days, hours and minutes, the largest two units: "3d 4h",
// "5h 10m", "42s".
func Human(d time.Duration) string {
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	days, h, m := int(d/(24*time.Hour)), int(d/time.Hour)%24, int(d/time.Minute)%60
	switch {
	case days > 0:
		return fmt.Sprintf("%s%dd %dh", neg, days, h)
	case h > 0:
		return fmt.Sprintf("%s%dh %dm", neg, h, m)
	case m > 0:
		return fmt.Sprintf("%s%dm", neg, m)
	}
	return fmt.Sprintf("%s%ds", neg, int(d/time.Second))
}
