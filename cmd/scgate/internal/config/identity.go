package config

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/scgate/scgate/proxy/identity"
)

// Identity is [identity]: the resolvers and their order.
type Identity struct {
	Order          []string          `toml:"order"`
	Static         string            `toml:"static"`
	CIDR           map[string]string `toml:"cidr"`
	MTLS           MTLS              `toml:"mtls"`
	TrustedProxies []string          `toml:"trusted_proxies"`
	JWT            JWT               `toml:"jwt"`    // identity_jwt.go
	Header         Header            `toml:"header"` // identity_header.go
	// AllowOverlap: identity_mtls.go.
	AllowOverlap bool `toml:"allow_overlap"`
}

// MTLS is [identity.mtls]: which part of a verified client certificate is
// the identity.
type MTLS struct {
	Source       string   `toml:"source"`
	TrustDomains []string `toml:"trust_domains"`
	// TrustBundles binds each SPIFFE trust domain to its own CA bundle
	// (identity_mtls.go).
	TrustBundles map[string]string `toml:"trust_bundles"`
}

func (id *Identity) defaults(clientCerts bool) {
	id.MTLS.Source = orString(id.MTLS.Source, "uri")
	if len(id.Order) > 0 {
		return
	}
	// Strongest evidence first: a verified certificate, then a signed
	// token or a trusted proxy's word, then the network.
	if clientCerts {
		id.Order = append(id.Order, "mtls")
	}
	if id.JWT.set() {
		id.Order = append(id.Order, "jwt")
	}
	if id.Header.Name != "" {
		id.Order = append(id.Order, "header")
	}
	if len(id.CIDR) > 0 {
		id.Order = append(id.Order, "cidr")
	}
	if id.Static != "" {
		id.Order = append(id.Order, "static")
	}
}

func (id Identity) validate(p *problems, c *Config) {
	if len(id.Order) == 0 {
		p.add("no identity resolver is configured: set identity.static (sidecar), identity.cidr, [identity.jwt], [identity.header], or a client CA for mtls", "identity")
	}
	seen := map[string]bool{}
	for _, r := range id.Order {
		if seen[r] {
			p.add(fmt.Sprintf("%q is listed twice", r), "identity", "order")
		}
		seen[r] = true
		var missing bool
		switch r {
		case "static":
			missing = id.Static == ""
		case "cidr":
			missing = len(id.CIDR) == 0
		case "mtls":
			missing = !c.ClientCertsConfigured()
		case "jwt":
			missing = !id.JWT.set()
		case "header":
			missing = id.Header.Name == ""
		default:
			p.add(fmt.Sprintf("%q is not a resolver: use mtls, jwt, header, cidr or static", r), "identity", "order")
		}
		if missing {
			p.add(fmt.Sprintf("%q is in the order but %s", r, map[string]string{
				"static": "identity.static is empty", "cidr": "[identity.cidr] is empty",
				"mtls": "neither server.client_ca_file nor [identity.mtls.trust_bundles] is set", "jwt": "[identity.jwt] is empty",
				"header": "identity.header.name is not set",
			}[r]), "identity", "order")
		}
	}
	for network := range id.CIDR {
		if _, err := netip.ParsePrefix(network); err != nil {
			p.add(fmt.Sprintf("%q is not a network: write it like \"10.1.0.0/16\"", network), "identity", "cidr", network)
		}
	}
	if s := id.MTLS.Source; s != "uri" && s != "dns" && s != "cn" {
		p.add(fmt.Sprintf("%q: use uri, dns or cn", s), "identity", "mtls", "source")
	}
	for _, tp := range id.TrustedProxies {
		if _, err := parseNetwork(tp); err != nil {
			p.add(fmt.Sprintf("%q: %v", tp, err), "identity", "trusted_proxies")
		}
	}
	c.validateMTLS(p)
	id.JWT.validate(p, id.Order)
	id.Header.validate(p, id)
}

// parseNetwork reads a trusted proxy: a network ("10.0.0.0/8") or one
// address ("10.0.0.7").
func parseNetwork(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Masked() != p {
			return p, fmt.Errorf("host bits are set; did you mean %s?", p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a network or address: write it like \"10.0.0.0/8\" or \"10.0.0.7\"")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// TrustedProxies is identity.trusted_proxies as the set, or nil when the
// list is empty (no one is trusted).
func (id Identity) TrustedProxySet() (*identity.TrustedProxies, error) {
	if len(id.TrustedProxies) == 0 {
		return nil, nil
	}
	prefixes := make([]netip.Prefix, 0, len(id.TrustedProxies))
	for _, s := range id.TrustedProxies {
		p, err := parseNetwork(s)
		if err != nil {
			return nil, fmt.Errorf("identity.trusted_proxies %q: %w", s, err)
		}
		prefixes = append(prefixes, p)
	}
	return identity.NewTrustedProxies(prefixes)
}

// CIDROptions is [identity.cidr] as identity.NewCIDR takes it.
func (id Identity) CIDROptions(proxies *identity.TrustedProxies) identity.CIDROptions {
	rules := make([]identity.CIDRRule, 0, len(id.CIDR))
	for network, who := range id.CIDR {
		p, _ := netip.ParsePrefix(network) // validated with the config
		rules = append(rules, identity.CIDRRule{Prefix: p, Identity: who})
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].Prefix.String() < rules[j].Prefix.String() })
	return identity.CIDROptions{Rules: rules, TrustedProxies: proxies}
}

// MTLSOptions is [identity.mtls] as identity.NewMTLS takes it; anchors
// are the gateway's (the client CA file and the trust bundles in force).
func (id Identity) MTLSOptions(anchors func() *identity.Anchors) identity.MTLSOptions {
	return identity.MTLSOptions{Source: id.MTLS.Source, TrustDomains: id.MTLS.TrustDomains, Anchors: anchors}
}
