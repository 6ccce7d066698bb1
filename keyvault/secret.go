package keyvault

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// MaxSecretLen bounds a secret's length. Streaming.Center keys are a few dozen
// bytes; anything much longer is almost certainly the wrong file.
const MaxSecretLen = 4096

// ErrInvalidSecret is wrapped by the errors of [NewSecret].
var ErrInvalidSecret = errors.New("keyvault: invalid secret")

// Secret holds an API key. Every way of printing or encoding it (String,
// GoString, Format for every verb, MarshalJSON, MarshalText, slog's LogValue,
// and therefore zap's Stringer and reflection encoders) yields only its prefix
// followed by "…", so a Secret that ends up in a log line or an error message
// leaks nothing. Only [Secret.Value] returns the key.
//
// Reflection-based printers cannot call methods on a Secret held in an
// unexported struct field, and fmt's bad-verb path prints such a value's
// fields, following pointers. So the key is not stored as a string field but
// returned by a function, which every printer shows as an address. Secrets
// compare equal with == only when they come from the same NewSecret call; use
// [Secret.Equal] to compare keys. The zero Secret holds no key.
type Secret struct {
	p *secretData
}

type secretData struct {
	prefix string
	reveal func() string
	// id is the key's SHA-256: it names a key across vault reloads (for
	// rejections and the audit trail) without holding the key itself.
	id [sha256.Size]byte
}

func newSecret(value string) Secret {
	return Secret{p: &secretData{prefix: Prefix(value), reveal: func() string { return value }, id: sha256.Sum256([]byte(value))}}
}

// identity returns the key's SHA-256, or zeros for the zero Secret.
func (s Secret) identity() [sha256.Size]byte {
	if s.p == nil {
		return [sha256.Size]byte{}
	}
	return s.p.id
}

// NewSecret validates s and wraps it. It refuses an empty key, one longer than
// [MaxSecretLen], and any byte outside printable ASCII (whitespace, control
// characters such as CR or LF, non-ASCII), because such a byte is never part
// of a real key but is a classic copy-paste accident, and a CR or LF would
// let a key split the header it is sent in. The error says where the bad byte
// is, never what the key is.
func NewSecret(s string) (Secret, error) {
	if reason := secretProblem(s); reason != "" {
		return Secret{}, fmt.Errorf("%w: it %s", ErrInvalidSecret, reason)
	}
	return newSecret(s), nil
}

// secretProblem describes what is wrong with s as a key, or returns "" if
// nothing is. The description names byte positions only.
func secretProblem(s string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > MaxSecretLen {
		return fmt.Sprintf("is longer than %d bytes", MaxSecretLen)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			return fmt.Sprintf("contains whitespace (a space, tab or line break) at byte %d", i+1)
		case c < 0x20 || c == 0x7f:
			return fmt.Sprintf("contains a control character at byte %d", i+1)
		case c > 0x7e:
			return fmt.Sprintf("contains a non-ASCII character at byte %d", i+1)
		}
	}
	return ""
}

// Value returns the key itself. Use it only to set the outgoing header.
func (s Secret) Value() string {
	if s.p == nil {
		return ""
	}
	return s.p.reveal()
}

// Equal reports whether s and o hold the same key, in constant time (with
// respect to the keys' content), so that comparing a presented key cannot be
// used as a timing oracle.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.Value()), []byte(o.Value())) == 1
}

// Prefix returns the key's [Prefix], computed once when the Secret was made.
func (s Secret) Prefix() string {
	if s.p == nil {
		return ""
	}
	return s.p.prefix
}

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return s.p == nil }

// String returns the prefix followed by "…", so a printed Secret is
// recognisably redacted. The zero Secret prints as "".
func (s Secret) String() string {
	if s.p == nil {
		return ""
	}
	return s.p.prefix + "…"
}

// GoString keeps %#v as safe as %v.
func (s Secret) GoString() string {
	return "keyvault.Secret(" + strconv.Quote(s.String()) + ")"
}

// Format makes every fmt verb print the redacted form: without it, verbs such
// as %x or %d would reach the unexported fields.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, s.GoString())
	case verb == 'q':
		_, _ = io.WriteString(f, strconv.Quote(s.String()))
	default:
		_, _ = io.WriteString(f, s.String())
	}
}

// MarshalJSON encodes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) {
	return json.Marshal(s.String())
}

// MarshalText encodes the redacted form (used by encoders that prefer text,
// such as zap's reflection encoder for map keys and TOML or YAML encoders).
func (s Secret) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// LogValue makes log/slog print the redacted form.
func (s Secret) LogValue() slog.Value {
	return slog.StringValue(s.String())
}

// prefixLen is the length of a Streaming.Center key's public prefix.
const prefixLen = 8

// minPrivateLen is how long the part after the dot must be before we show the
// part before it. It keeps the prefix of a short, key-shaped string from
// giving most of that string away; real keys are far longer.
const minPrivateLen = 16

// Prefix returns the part of secret that may be shown: the part before the
// first '.' when it is exactly 8 ASCII letters or digits (Streaming.Center
// keys look like "g0hsQEz6.JSXQ…") and at least 16 bytes follow the dot;
// otherwise "sha256:" and the first 8 hex digits of the secret's SHA-256.
// Only prefixes ever appear in logs, metrics, errors and CLI output.
func Prefix(secret string) string {
	if isKeyShaped(secret) {
		return secret[:prefixLen]
	}
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// isKeyShaped reports whether secret has a showable Streaming.Center prefix.
func isKeyShaped(secret string) bool {
	if strings.IndexByte(secret, '.') != prefixLen || len(secret) < prefixLen+1+minPrivateLen {
		return false
	}
	for i := 0; i < prefixLen; i++ {
		c := secret[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
