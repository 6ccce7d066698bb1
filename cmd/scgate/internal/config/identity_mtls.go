package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// DefaultMaxConnectionAge is server.max_connection_age when absent: how long
// a caller's connection (and the identity its handshake established) lives
// before the caller must reconnect and be verified again.
const DefaultMaxConnectionAge = 5 * time.Minute

// maxConnectionAge is server.max_connection_age for proxy.ServerOptions:
// "0s" in the file switches the limit off.
func (s Server) maxConnectionAge() time.Duration {
	if s.MaxConnectionAge.Duration == 0 {
		return -1
	}
	return s.MaxConnectionAge.Duration
}

// ClientCertsConfigured reports whether client certificates are asked for:
// a client CA file, SPIFFE trust bundles, or both.
func (c *Config) ClientCertsConfigured() bool {
	return c.Server.ClientCAFile != "" || len(c.Identity.MTLS.TrustBundles) > 0
}

// resolveBundlePaths makes the trust bundles' relative paths relative to the
// config file's folder.
func (c *Config) resolveBundlePaths(dir string) {
	for td, p := range c.Identity.MTLS.TrustBundles {
		if p != "" && !filepath.IsAbs(p) {
			c.Identity.MTLS.TrustBundles[td] = filepath.Join(dir, p)
		}
	}
}

// validateMTLS checks [identity.mtls.trust_bundles] and how it fits the
// other mTLS settings, and identity.trusted_proxies against [identity.cidr].
func (c *Config) validateMTLS(p *problems) {
	m := c.Identity.MTLS
	add := p.add
	if len(m.TrustBundles) > 0 {
		if c.Server.TLS == "off" {
			add("client certificates need TLS: set server.tls to files, acme or self-signed", "identity", "mtls", "trust_bundles")
		}
		if m.Source != "uri" {
			add(`trust bundles vouch for SPIFFE IDs only: use source = "uri", or server.client_ca_file for DNS or common-name identities`, "identity", "mtls", "source")
		}
	}
	names := make([]string, 0, len(m.TrustBundles))
	for td := range m.TrustBundles {
		names = append(names, td)
	}
	sort.Strings(names)
	for _, name := range names {
		td, err := spiffeid.TrustDomainFromString(name)
		switch {
		case err != nil:
			add(fmt.Sprintf("%q is not a SPIFFE trust domain: write the bare name, e.g. \"prod.example\"", name), "identity", "mtls", "trust_bundles", name)
		case td.Name() != name:
			add(fmt.Sprintf("write the trust domain as %q", td.Name()), "identity", "mtls", "trust_bundles", name)
		case m.TrustBundles[name] == "":
			add("give the path of the trust domain's PEM bundle", "identity", "mtls", "trust_bundles", name)
		}
	}
	for _, s := range m.TrustDomains {
		td, err := spiffeid.TrustDomainFromString(s)
		if err != nil {
			add(fmt.Sprintf("%q is not a SPIFFE trust domain: %v", s, err), "identity", "mtls", "trust_domains")
			continue
		}
		if len(m.TrustBundles) > 0 && m.TrustBundles[td.Name()] == "" {
			add(fmt.Sprintf("%q has no bundle in [identity.mtls.trust_bundles], so none of its IDs could be accepted: add its bundle", td.Name()), "identity", "mtls", "trust_domains")
		}
	}
	if len(m.TrustBundles) == 0 && len(m.TrustDomains) > 1 && m.Source == "uri" {
		add("with more than one trust domain, one client CA file would let any of their CAs mint IDs of the others: bind each trust domain to its own bundle in [identity.mtls.trust_bundles]", "identity", "mtls", "trust_domains")
	}
	if !c.Identity.AllowOverlap {
		for _, o := range c.proxyOverlaps() {
			add(o+"; a caller there could claim any identity through X-Forwarded-For: list only the proxies' own addresses (or set identity.allow_overlap = true if you really must)", "identity", "trusted_proxies")
		}
	}
}

// proxyOverlaps describes each trusted proxy network that overlaps a
// caller network of [identity.cidr].
func (c *Config) proxyOverlaps() []string {
	var out []string
	for _, p := range c.Identity.TrustedProxies {
		proxy, err := parseNetwork(p)
		if err != nil {
			continue // reported by Identity.validate
		}
		var callers []string
		for network := range c.Identity.CIDR {
			n, err := netip.ParsePrefix(network)
			if err == nil && proxy.Overlaps(n.Masked()) {
				callers = append(callers, network)
			}
		}
		slices.Sort(callers)
		for _, n := range callers {
			out = append(out, fmt.Sprintf("trusted proxy %q overlaps the caller network %q of [identity.cidr] (caller %q)", p, n, c.Identity.CIDR[n]))
		}
	}
	return out
}

// IdentityWarnings are the identity settings that are allowed but weaken
// it; `scgate check` prints them and the gateway logs them at start.
func (c *Config) IdentityWarnings() []string {
	var out []string
	if c.Identity.AllowOverlap {
		for _, o := range c.proxyOverlaps() {
			out = append(out, "identity.allow_overlap is set and "+o+": a caller in that network can claim any identity through X-Forwarded-For")
		}
	}
	m := c.Identity.MTLS
	if slices.Contains(c.Identity.Order, "mtls") && m.Source == "uri" && len(m.TrustBundles) == 0 && len(m.TrustDomains) == 0 {
		out = append(out, "identity.mtls: any CA in server.client_ca_file vouches for SPIFFE IDs of any trust domain: list the trust domain in identity.mtls.trust_domains, or bind each to its bundle in [identity.mtls.trust_bundles]")
	}
	if w := c.unreachableResolvers(); w != "" {
		out = append(out, w)
	}
	return out
}

// unreachableResolvers warns about resolvers listed after mtls when
// server.client_auth = "require": the handshake refuses every caller without
// a client certificate, and mtls settles every caller with one (an identity,
// or a refusal), so the chain never asks the later resolvers. The usual
// mistake is a cidr resolver meant for callers without certificates.
func (c *Config) unreachableResolvers() string {
	if !c.ClientCertsConfigured() || c.Server.ClientAuth != "require" {
		return ""
	}
	i := slices.Index(c.Identity.Order, "mtls")
	if i < 0 || i == len(c.Identity.Order)-1 {
		return ""
	}
	later := c.Identity.Order[i+1:]
	line := c.lines.Line("identity", "order")
	if line == 0 { // the order is derived from the resolvers configured
		line = c.lines.Line("server", "client_auth")
	}
	return fmt.Sprintf("%s:%d: identity.order asks %s after mtls, but server.client_auth = \"require\" refuses the TLS handshake of every caller without a client certificate "+
		"and mtls answers (or refuses) every caller with one, so %s is never asked: set server.client_auth = \"verify-if-given\" to let callers without certificates in, "+
		"or remove %s from identity.order",
		c.path, line, strings.Join(later, ", "), strings.Join(later, ", "), strings.Join(later, ", "))
}
