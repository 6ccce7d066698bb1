package policy

import (
	"regexp"
	"strings"
	"testing"
)

// referenceMatch is an independent statement of the pattern language, as a
// regular expression: a literal segment matches itself, * one non-empty
// segment, and a final ** the rest of the path, zero or more segments.
func referenceMatch(pattern, path string) bool {
	segs := strings.Split(pattern[1:], "/")
	var re strings.Builder
	re.WriteString("^")
	for i, seg := range segs {
		switch {
		case seg == "**" && i == len(segs)-1:
			re.WriteString("(/.*)?")
		case seg == "*":
			re.WriteString("/[^/]+")
		default:
			re.WriteString("/" + regexp.QuoteMeta(seg))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(path)
}

// FuzzRuleMatch checks route matching against referenceMatch, for every
// rule ParseRule accepts and every path Normalize accepts, and the method
// part against the documented list (a "*" rule allows those seven methods
// and no other).
func FuzzRuleMatch(f *testing.F) {
	for _, s := range [][3]string{
		{"GET /api/v2/**", "GET", "/api/v2/history/"}, {"GET /api/v2/**", "HEAD", "/api/v2"},
		{"* /api/v2/playlists/*/tracks/**", "DELETE", "/api/v2/playlists/3/tracks/"},
		{"POST /api/v2/playlists/", "POST", "/api/v2/playlists"}, {"GET /**", "GET", "/"},
		{"GET /", "GET", "/"}, {"PUT /a/*/", "PUT", "/a//"}, {"GET /a/*", "GET", "/a/b/c"},
		{"GET /a.b/(x)/**", "GET", "/a.b/(x)"}, {"OPTIONS /a/**/b", "OPTIONS", "/a/x/b"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	methods := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}
	f.Fuzz(func(t *testing.T, text, method, rawPath string) {
		r, err := ParseRule(text)
		if err != nil {
			return
		}
		path, err := Normalize(rawPath)
		if err != nil {
			return
		}
		if !methods[r.Method] && r.Method != "*" {
			t.Fatalf("ParseRule(%q) accepted method %q", text, r.Method)
		}
		want := ((r.Method == "*" && methods[method]) || r.Method == method || (r.Method == "GET" && method == "HEAD")) && referenceMatch(r.Pattern, path)
		if got := r.Matches(method, path); got != want {
			t.Fatalf("%q.Matches(%q, %q) = %v, the reference says %v", text, method, path, got, want)
		}
	})
}
