package identity

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// CIDRRule names the caller for requests from one source network.
type CIDRRule struct {
	// Prefix is the source network, such as 10.20.0.0/16 or fd00::/8. Host
	// bits must be zero. An IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104)
	// is taken as the IPv4 prefix it maps.
	Prefix netip.Prefix
	// Identity is the caller's identity.
	Identity string
}

// CIDROptions configures NewCIDR.
type CIDROptions struct {
	// Rules map source networks to identities. At least one is needed.
	Rules []CIDRRule
	// TrustedProxies, when set, are the load balancers or proxies in front
	// of scgate: for a request from one of them the source address is read
	// from X-Forwarded-For (see TrustedProxies.ClientAddr). Nil means the
	// TCP peer is always the source, and X-Forwarded-For is never read.
	TrustedProxies *TrustedProxies
}

// cidr holds the rules per address family, longest prefix first, so the
// first match is the longest.
type cidr struct {
	v4, v6  []CIDRRule
	proxies *TrustedProxies
}

// NewCIDR returns a Resolver that names the caller by the request's source
// address: r.RemoteAddr, the TCP peer, or, when that peer is one of
// opts.TrustedProxies, the client address X-Forwarded-For gives. The longest
// matching prefix wins. An IPv4-mapped IPv6 source,
// as seen on a dual-stack socket, is matched as the IPv4 address it maps, so
// IPv4 rules cover it. A source no rule matches gives ErrNoIdentity.
//
// An invalid prefix, one with host bits set, a duplicate prefix or an
// unusable identity is an error naming the rule (1-based).
func NewCIDR(opts CIDROptions) (Resolver, error) {
	c := &cidr{proxies: opts.TrustedProxies}
	seen := make(map[netip.Prefix]int, len(opts.Rules))
	for i, rule := range opts.Rules {
		n := i + 1
		p, err := normalizePrefix(rule.Prefix)
		if err != nil {
			return nil, fmt.Errorf("identity: cidr rule %d (%s): %w", n, rule.Prefix, err)
		}
		if err := checkIdentity(rule.Identity); err != nil {
			return nil, fmt.Errorf("identity: cidr rule %d (%s): %w", n, rule.Prefix, err)
		}
		if first, dup := seen[p]; dup {
			return nil, fmt.Errorf("identity: cidr rule %d (%s): prefix %s is already given by rule %d", n, rule.Prefix, p, first)
		}
		seen[p] = n
		rule.Prefix = p
		if p.Addr().Is4() {
			c.v4 = append(c.v4, rule)
		} else {
			c.v6 = append(c.v6, rule)
		}
	}
	longestFirst := func(a, b CIDRRule) int { return cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits()) }
	slices.SortStableFunc(c.v4, longestFirst)
	slices.SortStableFunc(c.v6, longestFirst)
	return c, nil
}

// normalizePrefix validates p and turns an IPv4-mapped prefix into IPv4.
func normalizePrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return p, errors.New("not a valid prefix")
	}
	if p.Masked() != p {
		return p, fmt.Errorf("host bits are set; did you mean %s?", p.Masked())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96), nil
	}
	return p, nil
}

// Resolve implements Resolver. It does not allocate unless it refuses a
// malformed X-Forwarded-For.
func (c *cidr) Resolve(r *http.Request) (string, error) {
	addr, err := c.proxies.ClientAddr(r)
	if err != nil {
		return "", err
	}
	rules := c.v6
	if addr.Is4() {
		rules = c.v4
	}
	for _, rule := range rules {
		if rule.Prefix.Contains(addr) {
			return rule.Identity, nil
		}
	}
	return "", ErrNoIdentity
}

// sourceAddr extracts the IP address from a RemoteAddr or an
// X-Forwarded-For entry: "v4:port", "[v6]:port", "[v6]" or a bare address,
// IPv4-mapped addresses unmapped. Anything else, such as "1.2.3.4:junk" or
// "[::1]junk", is refused rather than read leniently: the entries come from
// a trusted proxy, and one that writes them malformed is misbehaving. The
// zone of an IPv6 address is dropped because prefixes carry none; it is cut
// off before parsing because netip would allocate to keep it.
func sourceAddr(s string) (netip.Addr, bool) {
	host := s
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host = s[1:end]
		if strings.IndexByte(host, '[') >= 0 {
			return netip.Addr{}, false
		}
		if rest := s[end+1:]; rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return netip.Addr{}, false
		}
	case strings.Count(s, ":") == 1:
		i := strings.IndexByte(s, ':')
		if !validPort(s[i+1:]) {
			return netip.Addr{}, false
		}
		host = s[:i]
	}
	if i := strings.IndexByte(host, '%'); i >= 0 && strings.IndexByte(host[:i], ':') >= 0 {
		if i == len(host)-1 {
			return netip.Addr{}, false // an empty zone
		}
		host = host[:i]
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// validPort reports whether s is a decimal port number, 0 to 65535.
func validPort(s string) bool {
	if s == "" {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return false
		}
	}
	return true
}
