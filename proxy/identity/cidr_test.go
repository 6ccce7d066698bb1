package identity

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustCIDR(t testing.TB, rules ...CIDRRule) Resolver {
	t.Helper()
	r, err := NewCIDR(CIDROptions{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rule(prefix, id string) CIDRRule {
	return CIDRRule{Prefix: netip.MustParsePrefix(prefix), Identity: id}
}

func requestFrom(remote string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	return r
}

func TestCIDR(t *testing.T) {
	res := mustCIDR(t,
		rule("0.0.0.0/0", "anyone-v4"),
		rule("10.0.0.0/8", "internal"),
		rule("10.20.0.0/16", "radio"),
		rule("10.20.30.40/32", "stats-host"),
		rule("fd00::/8", "ula"),
		rule("fd00:1::/32", "radio-v6"),
		rule("::ffff:192.168.0.0/112", "mapped-rule"), // an IPv4 rule written mapped
		rule("fe80::/10", "link-local"),
	)
	tests := []struct {
		remote string
		want   string // "" means ErrNoIdentity
	}{
		{"10.20.30.40:5555", "stats-host"},
		{"10.20.30.41:5555", "radio"},
		{"10.21.0.1:5555", "internal"},
		{"203.0.113.9:443", "anyone-v4"},
		{"[fd00:1::5]:443", "radio-v6"},
		{"[fd00:2::5]:443", "ula"},
		{"[2001:db8::1]:443", ""},                    // no IPv6 catch-all
		{"[::ffff:10.20.30.40]:5555", "stats-host"},  // dual-stack socket
		{"[::ffff:192.168.7.7]:5555", "mapped-rule"}, // mapped rule, plain source
		{"192.168.7.7:5555", "mapped-rule"},          // mapped rule, plain source
		{"[fe80::1%eth0]:5555", "link-local"},        // zone ignored
		{"10.20.30.40", "stats-host"},                // bare addresses, as some proxies set
		{"fd00:1::5", "radio-v6"},
		{"", ""},
		{"@", ""}, // unix socket peer
		{"not-an-address:80", ""},
		{"[fd00::1:80", ""},
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			id, err := res.Resolve(requestFrom(tt.remote))
			switch {
			case tt.want == "" && !errors.Is(err, ErrNoIdentity):
				t.Errorf("got (%q, %v), want ErrNoIdentity", id, err)
			case tt.want != "" && (id != tt.want || err != nil):
				t.Errorf("got (%q, %v), want %q", id, err, tt.want)
			}
		})
	}
}

func TestCIDRRuleOrderDoesNotMatter(t *testing.T) {
	a := mustCIDR(t, rule("10.0.0.0/8", "wide"), rule("10.1.0.0/16", "narrow"))
	b := mustCIDR(t, rule("10.1.0.0/16", "narrow"), rule("10.0.0.0/8", "wide"))
	for _, r := range []Resolver{a, b} {
		if id, _ := r.Resolve(requestFrom("10.1.2.3:1")); id != "narrow" {
			t.Errorf("got %q, want the longest prefix", id)
		}
	}
}

func TestNewCIDRErrors(t *testing.T) {
	tests := []struct {
		name  string
		rules []CIDRRule
		want  []string
	}{
		{"duplicate", []CIDRRule{rule("10.0.0.0/8", "a"), rule("10.0.0.0/8", "b")}, []string{"rule 2", "10.0.0.0/8", "rule 1"}},
		{"duplicate once unmapped", []CIDRRule{rule("10.0.0.0/8", "a"), rule("::ffff:10.0.0.0/104", "b")}, []string{"rule 2", "already given by rule 1"}},
		{"empty identity", []CIDRRule{rule("10.0.0.0/8", "a"), rule("fd00::/8", "")}, []string{"rule 2", "fd00::/8", "empty"}},
		{"control character", []CIDRRule{rule("10.0.0.0/8", "a\x00")}, []string{"rule 1", "control"}},
		{"host bits", []CIDRRule{rule("10.1.0.0/8", "a")}, []string{"rule 1", "10.1.0.0/8", "did you mean 10.0.0.0/8"}},
		{"zero prefix", []CIDRRule{{Identity: "a"}}, []string{"rule 1", "not a valid prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewCIDR(CIDROptions{Rules: tt.rules})
			if err == nil {
				t.Fatalf("accepted; resolver %v", r)
			}
			for _, part := range tt.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}
}

func TestCIDRZeroAllocs(t *testing.T) {
	res := mustCIDR(t, rule("10.0.0.0/8", "internal"), rule("10.20.0.0/16", "radio"), rule("fd00::/8", "ula"))
	for _, remote := range []string{
		"10.20.30.40:5555",          // IPv4 hit
		"[fd00::1]:5555",            // IPv6 hit
		"[::ffff:10.20.30.40]:5555", // mapped hit
		"[fe80::1%eth0]:5555",       // zone, miss
		"192.0.2.1:5555",            // IPv4 miss
	} {
		r := requestFrom(remote)
		if n := testing.AllocsPerRun(100, func() { _, _ = res.Resolve(r) }); n != 0 {
			t.Errorf("%s: %v allocations per Resolve, want 0", remote, n)
		}
	}
}

// FuzzCIDR checks Resolve against a brute-force longest-prefix search, on
// whatever RemoteAddr it is given.
func FuzzCIDR(f *testing.F) {
	for _, s := range []string{"10.1.2.3:80", "[fd00::1]:80", "[::ffff:10.1.2.3]:1", "10.1.2.3", "[fe80::1%x]:1", "", "[", "1:2",
		"1.2.3.4:junk", "[::1]junk", "1.2.3.4%eth0", "[fe80::1%]:1", "[1.2.3.4]:80", "10.1.2.3:65536", "10.1.2.3:00080", "[::1]"} {
		f.Add(s)
	}
	rules := []CIDRRule{
		rule("0.0.0.0/0", "v4-any"), rule("10.0.0.0/8", "ten"), rule("10.1.0.0/16", "ten-one"),
		rule("::/0", "v6-any"), rule("fd00::/8", "ula"), rule("fe80::/10", "ll"),
	}
	res := mustCIDR(f, rules...)
	f.Fuzz(func(t *testing.T, remote string) {
		id, err := res.Resolve(requestFrom(remote))
		addr, ok := oracleAddr(remote)
		if !ok {
			if !errors.Is(err, ErrNoIdentity) {
				t.Fatalf("%q does not parse but resolved to (%q, %v)", remote, id, err)
			}
			return
		}
		want, bits := "", -1
		for _, r := range rules {
			if r.Prefix.Contains(addr) && r.Prefix.Bits() > bits {
				want, bits = r.Identity, r.Prefix.Bits()
			}
		}
		if id != want {
			t.Fatalf("%q (%s): got (%q, %v), want %q", remote, addr, id, err, want)
		}
	})
}

// TestAddressForms pins which spellings of an address are read (from
// RemoteAddr and from X-Forwarded-For entries) and which are refused: a
// malformed entry is an error, never read as the address it starts with.
func TestAddressForms(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3":            "10.1.2.3",
		"10.1.2.3:80":         "10.1.2.3",
		"10.1.2.3:0080":       "10.1.2.3",
		"[2001:db8::1]:443":   "2001:db8::1",
		"[2001:db8::1]":       "2001:db8::1",
		"2001:db8::1":         "2001:db8::1",
		"[fe80::1%eth0]:1":    "fe80::1",
		"fe80::1%eth0":        "fe80::1",
		"[::ffff:10.1.2.3]:1": "10.1.2.3",
		"[10.1.2.3]:80":       "10.1.2.3",
		"10.1.2.3:junk":       "",
		"10.1.2.3:":           "",
		"10.1.2.3:65536":      "",
		"10.1.2.3:+80":        "",
		"[::1]junk":           "",
		"[::1]:":              "",
		"[::1]:80:90":         "",
		"10.1.2.3%eth0":       "",
		"[fe80::1%]:1":        "",
		"unknown":             "",
		"_hidden":             "",
		"":                    "",
	} {
		got, ok := sourceAddr(in)
		if want == "" {
			if ok {
				t.Errorf("%q read as %v, want refused", in, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(want) {
			t.Errorf("%q: got %v (%v), want %s", in, got, ok, want)
		}
		if o, ook := oracleAddr(in); !ook || o != got {
			t.Errorf("%q: the fuzz oracle says %v (%v)", in, o, ook)
		}
	}
}
