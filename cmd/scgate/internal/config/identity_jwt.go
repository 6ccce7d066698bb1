package config

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/scgate/scgate/proxy/identity"
)

// JWT is [identity.jwt]: callers present a signed token (a Kubernetes
// projected service-account token) as "Authorization: Bearer".
type JWT struct {
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

// The durations of [identity.jwt] stay zero when absent: the resolver's own
// defaults apply.

func (j JWT) set() bool {
	return j.Issuer != "" || len(j.Audiences) > 0 || j.JWKSFile != "" || j.JWKSURL != "" || j.DiscoveryURL != ""
}

// Set reports whether [identity.jwt] is configured.
func (j JWT) Set() bool { return j.set() }

func (j JWT) validate(p *problems, order []string) {
	if !j.set() {
		return
	}
	add := func(msg string, key string) { p.add(msg, "identity", "jwt", key) }
	if !slices.Contains(order, "jwt") {
		p.add(`[identity.jwt] is configured but "jwt" is not in identity.order`, "identity", "jwt")
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
	for _, key := range []string{"jwks_url", "discovery_url"} {
		u := map[string]string{"jwks_url": j.JWKSURL, "discovery_url": j.DiscoveryURL}[key]
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
	j.validateFetching(add)
}

// validateFetching checks the bounds of [identity.jwt]: leeway, the
// staleness and wait limits of the key refresh, the hosts a discovery
// document may send scgate to, and that the token never goes over http.
func (j JWT) validateFetching(add func(msg, key string)) {
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
		for _, key := range []string{"jwks_url", "discovery_url"} {
			u := map[string]string{"jwks_url": j.JWKSURL, "discovery_url": j.DiscoveryURL}[key]
			if pu, err := url.Parse(u); u != "" && err == nil && pu.Scheme != "https" {
				add("token_file is only ever sent over https: use an https URL", key)
			}
		}
	}
}

// JWKSOptions is [identity.jwt]'s key source as identity.NewJWKS takes it;
// it reads ca_file (the Logger is the gateway's to set).
func (c *Config) JWKSOptions() (identity.JWKSOptions, error) {
	j := c.Identity.JWT
	o := identity.JWKSOptions{
		File: j.JWKSFile, URL: j.JWKSURL, DiscoveryURL: j.DiscoveryURL,
		BearerTokenFile: j.TokenFile, MinRefreshInterval: j.MinRefreshInterval.Duration, MaxAge: j.MaxAge.Duration,
		MaxStale: j.MaxStale.Duration, FetchWait: j.FetchWait.Duration, Issuer: j.Issuer, AllowedHosts: j.AllowedJWKSHosts,
	}
	if j.CAFile != "" {
		roots, err := readCertPool(j.CAFile)
		if err != nil {
			return o, c.Wrap(err, "identity", "jwt", "ca_file")
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		o.Client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	return o, nil
}

// JWTOptions is [identity.jwt] as identity.NewJWT takes it.
func (j JWT) JWTOptions(keys *identity.JWKS) identity.JWTOptions {
	return identity.JWTOptions{Issuer: j.Issuer, Audiences: j.Audiences, Keys: keys, Leeway: j.Leeway.Duration}
}
