package policy

import (
	"errors"
	"strings"
	"testing"
)

func testPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := New(Options{
		Sets: map[string][]string{
			"readonly": {"GET /api/v2/**"},
			"editor": {
				"GET /api/v2/**",
				"POST /api/v2/playlists/",
				"* /api/v2/playlists/*/tracks/**",
			},
			"history": {"* /api/v2/history/"},
		},
		Callers: map[string]string{"stats": "readonly", "sync": "editor", "board": "history"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAllow(t *testing.T) {
	p := testPolicy(t)
	cases := []struct {
		caller, method, path string
		allowed              bool
		set, rule            string
	}{
		{"stats", "GET", "/api/v2/history/", true, "readonly", "GET /api/v2/**"},
		{"stats", "HEAD", "/api/v2/history/", true, "readonly", "GET /api/v2/**"},
		{"stats", "GET", "/api/v2/", true, "readonly", "GET /api/v2/**"},
		{"stats", "GET", "/api/v2", true, "readonly", "GET /api/v2/**"},
		{"stats", "POST", "/api/v2/playlists/", false, "readonly", ""},
		{"stats", "DELETE", "/api/v2/playlists/3/", false, "readonly", ""},
		{"stats", "GET", "/api/v3/history/", false, "readonly", ""},
		{"stats", "GET", "/api/v2x/history/", false, "readonly", ""},
		{"stats", "GET", "/", false, "readonly", ""},
		{"sync", "POST", "/api/v2/playlists/", true, "editor", "POST /api/v2/playlists/"},
		{"sync", "POST", "/api/v2/playlists", false, "editor", ""},
		{"sync", "POST", "/api/v2/playlists/3/", false, "editor", ""},
		{"sync", "DELETE", "/api/v2/playlists/3/tracks/9/", true, "editor", "* /api/v2/playlists/*/tracks/**"},
		{"sync", "POST", "/api/v2/playlists/3/tracks/", true, "editor", "* /api/v2/playlists/*/tracks/**"},
		{"sync", "POST", "/api/v2/playlists/3/tracks", true, "editor", "* /api/v2/playlists/*/tracks/**"},
		{"sync", "POST", "/api/v2/playlists//tracks/", false, "editor", ""},
		{"sync", "PUT", "/api/v2/playlists/3/copy/", false, "editor", ""},
		{"board", "GET", "/api/v2/history/", true, "history", "* /api/v2/history/"},
		{"board", "PATCH", "/api/v2/history/", true, "history", "* /api/v2/history/"},
		{"board", "GET", "/api/v2/history/1/", false, "history", ""},
		{"nobody-listed", "DELETE", "/anything/at/all", true, "", ""},
	}
	for _, c := range cases {
		d := p.Allow(c.caller, c.method, c.path)
		rule := ""
		if d.Rule != nil {
			rule = d.Rule.String()
		}
		if d.Allowed != c.allowed || d.Set != c.set || rule != c.rule {
			t.Errorf("%s %s %s: got %+v (rule %q), want allowed=%v set=%q rule=%q", c.caller, c.method, c.path, d, rule, c.allowed, c.set, c.rule)
		}
	}
}

func TestDefaultSetAndNilPolicy(t *testing.T) {
	p, err := New(Options{Sets: map[string][]string{"ro": {"GET /api/v2/**"}}, Default: "ro"})
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Allow("anyone", "POST", "/api/v2/playlists/"); d.Allowed || d.Set != "ro" {
		t.Fatalf("default set not applied: %+v", d)
	}
	var none *Policy
	if d := none.Allow("anyone", "DELETE", "/api/v2/playlists/1/"); !d.Allowed {
		t.Fatal("a nil policy refused")
	}
	var h Holder
	if d := h.Current().Allow("x", "GET", "/"); !d.Allowed {
		t.Fatal("an empty holder refused")
	}
	h.Store(p)
	if h.Current() != p {
		t.Fatal("Holder did not store")
	}
}

func TestExplain(t *testing.T) {
	p := testPolicy(t)
	d, err := p.Explain("sync", "DELETE", "/api/v2/playlists/3/tracks/%39/")
	if err != nil || !d.Allowed || d.Rule.String() != "* /api/v2/playlists/*/tracks/**" {
		t.Fatalf("Explain = %+v, %v", d, err)
	}
	_, err = p.Explain("sync", "GET", "/api/v2/%2e%2e/x/")
	var pe *PathError
	if !errors.As(err, &pe) || pe != errEncodedDot {
		t.Fatalf("Explain of a traversal: %v", err)
	}
}

func TestRuleErrors(t *testing.T) {
	cases := map[string]string{
		"/api/v2/":               "METHOD PATTERN",
		"GET":                    "METHOD PATTERN",
		"GET /a/ extra":          "METHOD PATTERN",
		"get /api/v2/":           "in capitals",
		"FETCH /api/v2/":         "in capitals",
		"GET api/v2/":            "must start with /",
		"GET /api/**/history/":   "** may only be the last segment",
		"GET /api/v2/play*/":     "whole segment",
		"GET /api/v2/%2e/":       "no %-escapes",
		"GET /api/v2/../":        `"." or ".." segment`,
		"GET /api//v2/":          "empty segment",
		"GET /api/v2/history/?x": "no %-escapes",
		`GET /api/v2\history/`:   "no %-escapes",
		"GET /api/v2/a;b/":       "no %-escapes",
	}
	for rule, want := range cases {
		_, err := ParseRule(rule)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRule(%q) = %v, want an error containing %q", rule, err, want)
		}
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Options{
		Sets:    map[string][]string{"a": {"GET /x/", "BAD"}, "empty": {}},
		Callers: map[string]string{"svc": "missing"},
		Default: "nope",
	})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`rule set "a", rule 2`, `rule set "empty" is empty`, `caller "svc" names rule set "missing"`, `default rule set "nope"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	p := testPolicy(t)
	allocs := testing.AllocsPerRun(100, func() {
		p.Allow("sync", "DELETE", "/api/v2/playlists/3/tracks/9/")
		p.Allow("stats", "POST", "/api/v2/playlists/")
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per decision, want 0", allocs)
	}
}

func BenchmarkAllow(b *testing.B) {
	p, _ := New(Options{
		Sets:    map[string][]string{"editor": {"GET /api/v2/**", "POST /api/v2/playlists/", "* /api/v2/playlists/*/tracks/**"}},
		Callers: map[string]string{"sync": "editor"},
	})
	b.ReportAllocs()
	for b.Loop() {
		path, _ := Normalize("/api/v2/playlists/3/tracks/9/")
		p.Allow("sync", "DELETE", path)
	}
}
