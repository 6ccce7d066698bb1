package cache

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/scgate/scgate/proxy/policy"
)

// Rule marks the GET requests matching Route as cacheable for up to TTL.
type Rule struct {
	// Route is "GET PATTERN", in the route policy's pattern syntax.
	Route policy.Rule
	// TTL is how long an answer is fresh, at most (the broadcaster's
	// max-age or s-maxage may shorten it, never lengthen it).
	TTL time.Duration
	// Shared stores one answer for every key of a panel; only for routes the
	// broadcaster answers the same whatever the key. Otherwise each vault
	// key has its own entries.
	Shared bool
}

func (r Rule) validate() error {
	switch {
	case r.Route.Method != http.MethodGet:
		return fmt.Errorf("cache: rule %q: only GET answers are cached", r.Route)
	case r.TTL <= 0:
		return fmt.Errorf("cache: rule %q: the TTL must be positive", r.Route)
	}
	return nil
}

// match returns the first rule matching a GET of the normalised path.
func match(rules []Rule, method, path string) (Rule, bool) {
	if method != http.MethodGet {
		return Rule{}, false
	}
	for _, r := range rules {
		if r.Route.Matches(method, path) {
			return r, true
		}
	}
	return Rule{}, false
}

// storable statuses (RFC 9111 §3 with the heuristically cacheable codes the
// broadcaster uses for its reads): 200, 203, 204 and 404. Every other
// answer, errors included, passes through and is not stored.
func storableStatus(code int) bool {
	switch code {
	case http.StatusOK, http.StatusNonAuthoritativeInfo, http.StatusNoContent, http.StatusNotFound:
		return true
	}
	return false
}

// directives are the Cache-Control response directives the cache obeys.
type directives struct {
	noStore, noCache, private bool
	maxAge, sMaxAge           time.Duration
	hasMaxAge, hasSMaxAge     bool
	invalid                   bool // a directive the cache cannot read safely
}

// parseCacheControl reads every Cache-Control field of h. Unknown
// directives are ignored (RFC 9111 §5.2); a max-age that is not a
// non-negative integer makes the answer uncacheable, which is the safe
// reading.
func parseCacheControl(h http.Header) directives {
	var d directives
	for _, field := range h.Values("Cache-Control") {
		for _, part := range strings.Split(field, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
			value = strings.Trim(value, `"`)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store":
				d.noStore = true
			case "no-cache":
				// With or without field names: revalidation is not
				// implemented, so such answers are not stored at all.
				d.noCache = true
			case "private":
				d.private = true
			case "max-age":
				v, ok := seconds(value)
				d.maxAge, d.hasMaxAge, d.invalid = v, true, d.invalid || !ok
			case "s-maxage":
				v, ok := seconds(value)
				d.sMaxAge, d.hasSMaxAge, d.invalid = v, true, d.invalid || !ok
			}
		}
	}
	return d
}

// seconds parses delta-seconds (RFC 9111 §1.2.2), capping huge values.
func seconds(s string) (time.Duration, bool) {
	if s == "" || len(s) > 10 {
		if len(s) > 10 && allDigits(s) {
			return 1 << 31 * time.Second, true
		}
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// errNotStored is why an answer is not stored; its text becomes the
// Cache-Status detail.
type errNotStored string

func (e errNotStored) Error() string { return string(e) }

// The reasons an answer is not stored, as Cache-Status details.
const (
	notStoredStatus    errNotStored = "status"
	notStoredNoStore   errNotStored = "no-store"
	notStoredNoCache   errNotStored = "no-cache"
	notStoredPrivate   errNotStored = "private"
	notStoredCookie    errNotStored = "set-cookie"
	notStoredVaryStar  errNotStored = "vary-star"
	notStoredMaxAge    errNotStored = "max-age"
	notStoredTooLarge  errNotStored = "too-large"
	notStoredTrailer   errNotStored = "trailer"
	notStoredAuthorize errNotStored = "authorization"
)

// lifetime decides whether an answer may be stored under rule and for how
// long it is fresh: the rule's TTL, capped by s-maxage or else max-age.
func lifetime(resp *http.Response, rule Rule) (time.Duration, error) {
	if !storableStatus(resp.StatusCode) {
		return 0, notStoredStatus
	}
	d := parseCacheControl(resp.Header)
	switch {
	case d.noStore:
		return 0, notStoredNoStore
	case d.noCache || d.invalid:
		return 0, notStoredNoCache
	case d.private && rule.Shared:
		return 0, notStoredPrivate
	case len(resp.Header.Values("Set-Cookie")) > 0:
		return 0, notStoredCookie
	case len(resp.Trailer) > 0:
		return 0, notStoredTrailer
	}
	for _, name := range varyNames(resp.Header) {
		if name == "*" {
			return 0, notStoredVaryStar
		}
	}
	ttl := rule.TTL
	switch {
	case d.hasSMaxAge:
		ttl = min(ttl, d.sMaxAge)
	case d.hasMaxAge:
		ttl = min(ttl, d.maxAge)
	}
	if ttl <= 0 {
		return 0, notStoredMaxAge
	}
	return ttl, nil
}

// upstreamAge is the broadcaster's Age header (0 when absent or unreadable).
func upstreamAge(h http.Header) time.Duration {
	v, ok := seconds(strings.TrimSpace(h.Get("Age")))
	if !ok {
		return 0
	}
	return v
}

// varyNames lists the canonical header names of every Vary field.
func varyNames(h http.Header) []string {
	var names []string
	for _, field := range h.Values("Vary") {
		for _, n := range strings.Split(field, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, http.CanonicalHeaderKey(n))
			}
		}
	}
	return names
}

// ErrStoreUnavailable wraps a shared store's failures; the gateway then
// forwards as if the cache missed.
var ErrStoreUnavailable = errors.New("cache: store unavailable")
