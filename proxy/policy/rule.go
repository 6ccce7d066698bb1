package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Rule is one "METHOD PATTERN" entry of an allow-list.
//
// METHOD is GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or *, which stands
// for those seven (the methods scgate forwards) and never for any other; GET
// also allows HEAD, which reads the same thing. PATTERN is a path whose segments
// are literal, or * (exactly one non-empty segment), or, as the last segment
// only, ** (the rest of the path: zero or more segments). A trailing slash is
// significant, as it is to the broadcaster: "/api/v2/playlists/" does not
// match "/api/v2/playlists".
type Rule struct {
	Method  string // "*" for any of Methods
	Pattern string
	segs    []string
}

// String returns the rule as written in the config: "GET /api/v2/**".
func (r Rule) String() string { return r.Method + " " + r.Pattern }

// Methods are the request methods scgate forwards, as written in an Allow
// header. Every other method (TRACE, which echoes the request and its key
// back, CONNECT, WebDAV's, custom tokens, lower-case spellings) is refused
// before any rule is consulted.
const Methods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// Forwarded reports whether scgate forwards method m. Methods are case
// sensitive: "get" is not GET.
func Forwarded(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return true
	}
	return false
}

// ParseRule parses "METHOD PATTERN". Its errors say what to write instead.
func ParseRule(s string) (Rule, error) {
	fields := strings.Fields(s)
	if len(fields) != 2 {
		return Rule{}, fmt.Errorf("%q: write a rule as METHOD PATTERN, e.g. \"GET /api/v2/**\"", s)
	}
	method, pattern := fields[0], fields[1]
	if method != "*" && !Forwarded(method) {
		return Rule{}, fmt.Errorf("%q: method %q: use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or * (in capitals)", s, method)
	}
	segs, err := parsePattern(pattern)
	if err != nil {
		return Rule{}, fmt.Errorf("%q: pattern %q: %w", s, pattern, err)
	}
	return Rule{Method: method, Pattern: pattern, segs: segs}, nil
}

func parsePattern(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, errors.New("must start with /")
	}
	if strings.ContainsAny(p, "%\\?#;") {
		return nil, errors.New(`write the path plainly: no %-escapes, \, ?, # or ;`)
	}
	if _, err := Normalize(p); err != nil {
		var pe *PathError
		if errors.As(err, &pe) {
			return nil, errors.New(strings.TrimPrefix(pe.Reason, "the path "))
		}
		return nil, err
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		switch {
		case seg == "**" && i != len(segs)-1:
			return nil, errors.New("** may only be the last segment (it matches the rest of the path)")
		case seg != "*" && seg != "**" && strings.Contains(seg, "*"):
			return nil, fmt.Errorf("segment %q: * stands for a whole segment, not part of one", seg)
		}
	}
	return segs, nil
}

// allowsMethod reports whether the rule's method covers m. A "*" covers only
// the methods scgate forwards, so that the policy alone never allows TRACE.
func (r Rule) allowsMethod(m string) bool {
	return (r.Method == "*" && Forwarded(m)) || r.Method == m || (r.Method == "GET" && m == "HEAD")
}

// matchPath reports whether a normalised path matches the pattern. It does not
// allocate.
func (r Rule) matchPath(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	rest := path[1:]
	last := len(r.segs) - 1
	for i, seg := range r.segs {
		if seg == "**" {
			return true
		}
		cur, tail, more := strings.Cut(rest, "/")
		if seg == "*" {
			if cur == "" {
				return false
			}
		} else if cur != seg {
			return false
		}
		if i == last {
			return !more
		}
		if !more {
			// The path ended; only a final ** still matches (zero segments).
			return i+1 == last && r.segs[last] == "**"
		}
		rest = tail
	}
	return false
}

// Matches reports whether the rule allows method on the normalised path.
func (r Rule) Matches(method, path string) bool {
	return r.allowsMethod(method) && r.matchPath(path)
}
