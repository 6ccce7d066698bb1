package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/scgate/scgate/proxy/identity"
)

// JWTConfig is [identity.jwt]: callers present a signed token (a
// Kubernetes projected service-account token) as "Authorization: Bearer".
type JWTConfig struct {
	Issuer             string   `toml:"issuer"`
	Audiences          []string `toml:"audiences"`
	JWKSFile           string   `toml:"jwks_file"`
	JWKSURL            string   `toml:"jwks_url"`
	DiscoveryURL       string   `toml:"discovery_url"`
	CAFile             string   `toml:"ca_file"`
	TokenFile          string   `toml:"token_file"`
	Leeway             Duration `toml:"leeway"`
	MinRefreshInterval Duration `toml:"min_refresh_interval"`
	MaxAge             Duration `toml:"max_age"`
	// MaxStale, FetchWait and AllowedJWKSHosts: see validateJWKSFetching.
	MaxStale         Duration `toml:"max_stale"`
	FetchWait        Duration `toml:"fetch_wait"`
	AllowedJWKSHosts []string `toml:"allowed_jwks_hosts"`
}

func (j JWTConfig) set() bool {
	return j.Issuer != "" || len(j.Audiences) > 0 || j.JWKSFile != "" || j.JWKSURL != "" || j.DiscoveryURL != ""
}

// HeaderConfig is [identity.header]: a trusted proxy names the caller.
type HeaderConfig struct {
	Name         string   `toml:"name"`
	Format       string   `toml:"format"`
	TrustDomains []string `toml:"trust_domains"`
}

// defaultOrder lists the configured jwt and header resolvers, between mtls
// and cidr in the default order: a signed token or a proxy's word is
// stronger evidence than a network.
func (id IdentityConfig) defaultOrder() []string {
	var order []string
	if id.JWT.set() {
		order = append(order, "jwt")
	}
	if id.Header.Name != "" {
		order = append(order, "header")
	}
	return order
}

// checkOrdered validates a jwt or header entry of identity.order.
func (c *Config) checkOrdered(r string) []error {
	id := c.Identity
	switch {
	case r == "jwt" && !id.JWT.set():
		return []error{c.problem(`"jwt" is in the order but [identity.jwt] is empty`, "identity", "order")}
	case r == "header" && id.Header.Name == "":
		return []error{c.problem(`"header" is in the order but identity.header.name is not set`, "identity", "order")}
	}
	return nil
}

// validateIdentityCentral checks [identity.jwt], [identity.header] and
// identity.trusted_proxies.
func (c *Config) validateIdentityCentral() []error {
	id := c.Identity
	var errs []error
	add := func(msg string, key ...string) {
		errs = append(errs, c.problem(msg, append([]string{"identity"}, key...)...))
	}
	for _, p := range id.TrustedProxies {
		if _, err := parseNetwork(p); err != nil {
			add(fmt.Sprintf("%q: %v", p, err), "trusted_proxies")
		}
	}
	if id.JWT.set() {
		if !slices.Contains(id.Order, "jwt") {
			add(`[identity.jwt] is configured but "jwt" is not in identity.order`, "jwt")
		}
		errs = append(errs, c.validateJWT()...)
	}
	h := id.Header
	if h.Name != "" || h.Format != "" || len(h.TrustDomains) > 0 {
		switch {
		case h.Name == "":
			add(`name the header, e.g. name = "X-Forwarded-Client-Cert"`, "header", "name")
		case !slices.Contains(id.Order, "header"):
			add(`[identity.header] is configured but "header" is not in identity.order`, "header")
		}
		if len(id.TrustedProxies) == 0 {
			add("the header resolver believes only trusted proxies: list their networks in identity.trusted_proxies", "header", "name")
		}
		if h.Format != "" && h.Format != "xfcc" && h.Format != "plain" {
			add(fmt.Sprintf("%q: use xfcc or plain", h.Format), "header", "format")
		}
		for _, td := range h.TrustDomains {
			if _, err := spiffeid.TrustDomainFromString(td); err != nil {
				add(fmt.Sprintf("%q is not a SPIFFE trust domain: %v", td, err), "header", "trust_domains")
			}
		}
	}
	return errs
}

func (c *Config) validateJWT() []error {
	j := c.Identity.JWT
	var errs []error
	add := func(msg string, key ...string) {
		errs = append(errs, c.problem(msg, append([]string{"identity", "jwt"}, key...)...))
	}
	if j.Issuer == "" {
		add(`the token issuer is required; for Kubernetes, the cluster's service-account issuer (kubectl get --raw /.well-known/openid-configuration shows it)`, "issuer")
	}
	if len(j.Audiences) == 0 || slices.Contains(j.Audiences, "") {
		add(`scgate's audience is required, e.g. audiences = ["scgate"]; callers request their token for it`, "audiences")
	}
	n := 0
	for _, s := range []string{j.JWKSFile, j.JWKSURL, j.DiscoveryURL} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		add("give exactly one of jwks_file, jwks_url and discovery_url", "issuer")
	}
	for key, u := range map[string]string{"jwks_url": j.JWKSURL, "discovery_url": j.DiscoveryURL} {
		if u == "" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || pu.Host == "" || (pu.Scheme != "https" && !(pu.Scheme == "http" && isLoopbackHost(pu.Hostname()))) {
			add(fmt.Sprintf("%q is not an https URL", u), key)
		}
	}
	if j.JWKSFile != "" && (j.CAFile != "" || j.TokenFile != "") {
		add("ca_file and token_file are for fetching keys over HTTPS; a jwks_file needs neither", "jwks_file")
	}
	return append(errs, c.validateJWKSFetching()...)
}

// validateJWKSFetching checks the bounds of [identity.jwt]: leeway, the
// staleness and wait limits of the key refresh, the hosts a discovery
// document may send scgate to, and that the token never goes over http.
func (c *Config) validateJWKSFetching() []error {
	j := c.Identity.JWT
	var errs []error
	add := func(msg string, key ...string) {
		errs = append(errs, c.problem(msg, append([]string{"identity", "jwt"}, key...)...))
	}
	if j.Leeway.Duration > identity.MaxLeeway {
		add(fmt.Sprintf("%v is more than the %v allowed: a larger leeway keeps expired tokens working; fix the clocks instead", j.Leeway.Duration, identity.MaxLeeway), "leeway")
	}
	maxAge := j.MaxAge.Duration
	if maxAge == 0 {
		maxAge = time.Hour
	}
	if j.MaxStale.set && j.MaxStale.Duration < maxAge {
		add(fmt.Sprintf("%v is shorter than max_age (%v): keys are refreshed at max_age and dropped at max_stale", j.MaxStale.Duration, maxAge), "max_stale")
	}
	if j.FetchWait.set && (j.FetchWait.Duration <= 0 || j.FetchWait.Duration > 10*time.Second) {
		add("give a wait between 1ms and 10s: it is how long a request may wait for a key fetch", "fetch_wait")
	}
	if len(j.AllowedJWKSHosts) > 0 && j.DiscoveryURL == "" {
		add("allowed_jwks_hosts only applies to the jwks_uri of a discovery_url", "allowed_jwks_hosts")
	}
	for _, h := range j.AllowedJWKSHosts {
		if h == "" || strings.ContainsAny(h, "/@?# ") {
			add(fmt.Sprintf("%q: write a host name or host:port, e.g. \"10.0.0.1:6443\"", h), "allowed_jwks_hosts")
		}
	}
	if j.TokenFile != "" {
		for key, u := range map[string]string{"jwks_url": j.JWKSURL, "discovery_url": j.DiscoveryURL} {
			if pu, err := url.Parse(u); u != "" && err == nil && pu.Scheme != "https" {
				add("token_file is only ever sent over https: use an https URL", key)
			}
		}
	}
	return errs
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
