package standin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
)

// KeyHeader is the header Streaming.Center reads the API key from.
const KeyHeader = "SC-API-KEY"

// Prefix is the loggable name of a key, defined as scgate defines it: the part before the first
// '.' when that part is exactly 8 ASCII letters or digits (Streaming.Center keys look like
// "Ab3dEf7h.Q1w2..."), otherwise "sha256:" followed by the first 8 hex digits of the key's
// SHA-256, so that even a malformed key can be told apart from others without being shown.
func Prefix(key string) string {
	// The same rule as keyvault.Prefix (which this package must not import):
	// a short key-shaped string is hashed, so its prefix never shows most of it.
	if len(key) >= 8+1+16 && strings.IndexByte(key, '.') == 8 && isAlnum(key[:8]) {
		return key[:8]
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

func isAlnum(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// checkKeyValue rejects what cannot arrive intact in an HTTP header value.
func checkKeyValue(k string) error {
	if k == "" {
		return errors.New("is empty")
	}
	for i := range len(k) {
		if c := k[i]; c <= ' ' || c == 0x7f {
			return errors.New("contains whitespace or a control character")
		}
	}
	return nil
}

// keySet holds digests rather than keys: comparing fixed-size digests takes the same time
// whatever the length or content of the candidate, and no key is kept in memory in clear.
type keySet struct {
	digests [][sha256.Size]byte
}

func newKeySet(keys []string) *keySet {
	ks := &keySet{digests: make([][sha256.Size]byte, len(keys))}
	for i, k := range keys {
		ks.digests[i] = sha256.Sum256([]byte(k))
	}
	return ks
}

// valid reports whether candidate is one of the keys. It compares against every key without
// stopping early, so the timing does not reveal which key (or how many) matched.
func (ks *keySet) valid(candidate string) bool {
	d := sha256.Sum256([]byte(candidate))
	match := 0
	for i := range ks.digests {
		match |= subtle.ConstantTimeCompare(d[:], ks.digests[i][:])
	}
	return match == 1
}

// keyValues returns every SC-API-KEY value in h. net/http canonicalises header names it parses,
// but a handler called directly may get any casing, so every spelling counts; names are sorted
// so the order of several spellings is stable.
func keyValues(h http.Header) []string {
	var names []string
	for name := range h {
		if strings.EqualFold(name, KeyHeader) {
			names = append(names, name)
		}
	}
	switch len(names) {
	case 0:
		return nil
	case 1:
		return h[names[0]]
	}
	slices.Sort(names)
	var vals []string
	for _, name := range names {
		vals = append(vals, h[name]...)
	}
	return vals
}

// Forbidden is a route that a valid key may not use (Options.Forbidden).
type Forbidden struct {
	Key    string // the SC-API-KEY value
	Method string // GET also forbids HEAD, as Django serves HEAD with the GET view
	Path   string // the exact request path, e.g. /api/v2/playlists/3/
}

// forbidSet holds the rules with the keys as digests, like keySet.
type forbidSet struct {
	rules []forbidRule
}

type forbidRule struct {
	digest       [sha256.Size]byte
	method, path string
}

func newForbidSet(rules []Forbidden) *forbidSet {
	fs := &forbidSet{rules: make([]forbidRule, len(rules))}
	for i, r := range rules {
		fs.rules[i] = forbidRule{digest: sha256.Sum256([]byte(r.Key)), method: r.Method, path: r.Path}
	}
	return fs
}

// forbids reports whether key may not send method to path.
func (fs *forbidSet) forbids(key, method, path string) bool {
	if len(fs.rules) == 0 {
		return false
	}
	if method == http.MethodHead {
		method = http.MethodGet
	}
	d := sha256.Sum256([]byte(key))
	for _, r := range fs.rules {
		if r.method == method && r.path == path && subtle.ConstantTimeCompare(d[:], r.digest[:]) == 1 {
			return true
		}
	}
	return false
}
