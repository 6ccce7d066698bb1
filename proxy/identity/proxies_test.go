package identity

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustProxies(t testing.TB, prefixes ...string) *TrustedProxies {
	t.Helper()
	ps := make([]netip.Prefix, len(prefixes))
	for i, p := range prefixes {
		ps[i] = netip.MustParsePrefix(p)
	}
	tp, err := NewTrustedProxies(ps)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func requestVia(remote string, xff ...string) *http.Request {
	r := requestFrom(remote)
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return r
}

func TestClientAddr(t *testing.T) {
	lb := mustProxies(t, "10.0.0.0/24", "fd00:1b::/64")
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
		err    string
	}{
		{"untrusted peer: header ignored", "192.0.2.7:1234", []string{"10.9.9.9"}, "192.0.2.7", ""},
		{"trusted peer without header is the client", "10.0.0.5:1", nil, "10.0.0.5", ""},
		{"one hop", "10.0.0.5:1", []string{"203.0.113.9"}, "203.0.113.9", ""},
		{"rightmost untrusted wins over a spoofed left", "10.0.0.5:1", []string{"10.20.0.1, 203.0.113.9"}, "203.0.113.9", ""},
		{"trusted hops skipped", "10.0.0.5:1", []string{"203.0.113.9, 10.0.0.7, 10.0.0.8"}, "203.0.113.9", ""},
		{"several lines are one list", "10.0.0.5:1", []string{"198.51.100.1", "203.0.113.9, 10.0.0.7"}, "203.0.113.9", ""},
		{"all trusted: leftmost", "10.0.0.5:1", []string{"10.0.0.9, 10.0.0.8"}, "10.0.0.9", ""},
		{"empty entries skipped", "10.0.0.5:1", []string{" , 203.0.113.9,, "}, "203.0.113.9", ""},
		{"entry with port", "10.0.0.5:1", []string{"203.0.113.9:4711"}, "203.0.113.9", ""},
		{"IPv6 entry", "[fd00:1b::2]:1", []string{"2001:db8::5"}, "2001:db8::5", ""},
		{"bracketed IPv6 with port", "[fd00:1b::2]:1", []string{"[2001:db8::5]:80"}, "2001:db8::5", ""},
		{"mapped peer", "[::ffff:10.0.0.5]:1", []string{"203.0.113.9"}, "203.0.113.9", ""},
		{"garbage from a trusted hop", "10.0.0.5:1", []string{"unknown, 10.0.0.8"}, "", "entry 2 from the right is not an IP address"},
		{"garbage left of the client is never read", "10.0.0.5:1", []string{"unknown, 203.0.113.9"}, "203.0.113.9", ""},
		{"too many hops", "10.0.0.5:1", []string{strings.Repeat("10.0.0.1,", 40) + "10.0.0.1"}, "", "more than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lb.ClientAddr(requestVia(tt.remote, tt.xff...))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got (%v, %v), want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("got (%v, %v), want %s", got, err, tt.want)
			}
		})
	}
}

func TestNilTrustedProxiesTrustNoOne(t *testing.T) {
	var none *TrustedProxies
	r := requestVia("10.0.0.5:1", "203.0.113.9")
	if none.Trusts(r) {
		t.Error("nil set trusts a peer")
	}
	if got, err := none.ClientAddr(r); err != nil || got != netip.MustParseAddr("10.0.0.5") {
		t.Errorf("got (%v, %v), want the peer", got, err)
	}
	if _, err := none.ClientAddr(requestFrom("@")); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("unparsable peer: %v, want ErrNoIdentity", err)
	}
}

func TestNewTrustedProxiesErrors(t *testing.T) {
	if _, err := NewTrustedProxies(nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty list: %v", err)
	}
	_, err := NewTrustedProxies([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/8")})
	if err == nil || !strings.Contains(err.Error(), "trusted proxy 2") || !strings.Contains(err.Error(), "did you mean 10.0.0.0/8") {
		t.Errorf("host bits: %v", err)
	}
}

// TestCIDRBehindLoadBalancer: the cidr resolver names the client behind a
// trusted balancer, and ignores the header from anyone else.
func TestCIDRBehindLoadBalancer(t *testing.T) {
	res, err := NewCIDR(CIDROptions{
		Rules:          []CIDRRule{rule("203.0.113.0/24", "partner"), rule("10.0.0.0/24", "lb-itself")},
		TrustedProxies: mustProxies(t, "10.0.0.0/24"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := res.Resolve(requestVia("10.0.0.5:1", "203.0.113.9")); id != "partner" || err != nil {
		t.Errorf("behind the balancer: (%q, %v)", id, err)
	}
	if id, err := res.Resolve(requestVia("10.0.0.5:1")); id != "lb-itself" || err != nil {
		t.Errorf("the balancer's own probe: (%q, %v)", id, err)
	}
	// A direct caller cannot claim to be a partner.
	if id, err := res.Resolve(requestVia("192.0.2.1:1", "203.0.113.9")); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("spoofed header from an untrusted peer: (%q, %v), want ErrNoIdentity", id, err)
	}
	if _, err := res.Resolve(requestVia("10.0.0.5:1", "not-an-ip")); err == nil || errors.Is(err, ErrNoIdentity) {
		t.Errorf("garbage from the balancer: %v, want a refusal", err)
	}
	r := requestVia("10.0.0.5:1", "198.51.100.1, 203.0.113.9")
	if n := testing.AllocsPerRun(100, func() { _, _ = res.Resolve(r) }); n != 0 {
		t.Errorf("%v allocations per Resolve behind a balancer, want 0", n)
	}
}
