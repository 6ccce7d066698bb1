package policy

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// ErrBadPath is wrapped by every error of Normalize.
var ErrBadPath = errors.New("policy: the path cannot be forwarded safely")

// PathError says why Normalize refused a path. Reason is one of a fixed set of
// sentences, so it is safe to show to the caller.
type PathError struct{ Reason string }

func (e *PathError) Error() string { return "policy: bad path: " + e.Reason }

// Unwrap makes errors.Is(err, ErrBadPath) hold.
func (e *PathError) Unwrap() error { return ErrBadPath }

// The refusals, allocated once so that a refused path costs no allocation.
var (
	errNotAbsolute  = &PathError{"the path must start with /"}
	errBadEscape    = &PathError{"a % is not followed by two hex digits"}
	errEncodedSlash = &PathError{"the path has an encoded / (%2F)"}
	errEncodedDot   = &PathError{"the path has an encoded . (%2E)"}
	errEncodedPct   = &PathError{"the path has an encoded % (%25), which is double encoding"}
	errBackslash    = &PathError{`the path has a \ (or %5C)`}
	errNUL          = &PathError{"the path has a NUL byte"}
	errControl      = &PathError{"the path has a control character"}
	errUTF8         = &PathError{"the path is not valid UTF-8 once decoded"}
	errEmptySegment = &PathError{"the path has an empty segment (//)"}
	errDotSegment   = &PathError{`the path has a "." or ".." segment`}
	errTooLongPath  = &PathError{"the path is longer than 8192 bytes"}
	errNotEscaped   = &PathError{"the path has a raw ? or # (not a request path)"}
)

// maxPathLen bounds the work done on one path; real API paths are far shorter.
const maxPathLen = 8192

// Normalize checks the escaped path of a request (url.URL.EscapedPath) and
// returns it percent-decoded: the path that rules are matched against and
// that the broadcaster will read. It refuses, with a *PathError, any path
// whose meaning could differ between scgate and the broadcaster, instead of
// rewriting it. It allocates only when the path contains percent-escapes.
func Normalize(escaped string) (string, error) {
	if len(escaped) > maxPathLen {
		return "", errTooLongPath
	}
	if escaped == "" || escaped[0] != '/' {
		return "", errNotAbsolute
	}
	out := escaped
	if strings.IndexByte(escaped, '%') >= 0 {
		var err error
		if out, err = unescape(escaped); err != nil {
			return "", err
		}
	} else if err := checkLiteral(escaped); err != nil {
		return "", err
	}
	if !utf8.ValidString(out) {
		return "", errUTF8
	}
	if err := checkSegments(out); err != nil {
		return "", err
	}
	return out, nil
}

// checkLiteral applies the byte rules to a path without escapes.
func checkLiteral(p string) error {
	for i := 0; i < len(p); i++ {
		if err := checkByte(p[i], false); err != nil {
			return err
		}
	}
	return nil
}

// checkByte refuses the bytes that no API path needs and that servers are
// known to read in different ways. encoded says the byte came from a %XX.
func checkByte(c byte, encoded bool) error {
	switch {
	case c == 0:
		return errNUL
	case c < 0x20 || c == 0x7f:
		return errControl
	case c == '\\':
		return errBackslash
	case !encoded && (c == '?' || c == '#'):
		// An escaped path never holds these raw: they would start the query
		// or fragment, so whoever built this path did not escape it.
		return errNotEscaped
	case encoded && c == '/':
		return errEncodedSlash
	case encoded && c == '.':
		return errEncodedDot
	case encoded && c == '%':
		return errEncodedPct
	}
	return nil
}

func unescape(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c, encoded := s[i], false
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return "", errBadEscape
			}
			c, encoded = unhex(s[i+1])<<4|unhex(s[i+2]), true
			i += 2
		}
		if err := checkByte(c, encoded); err != nil {
			return "", err
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// checkSegments refuses empty segments (except the final one, which is the
// trailing slash every API path has) and dot segments, including the
// "..;param" form that some servers read as "..".
func checkSegments(p string) error {
	rest := p[1:]
	for {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "" && more {
			return errEmptySegment
		}
		if name, _, _ := strings.Cut(seg, ";"); name == "." || name == ".." {
			return errDotSegment
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
