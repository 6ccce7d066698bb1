package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/scgate/scgate/proxy/identity"
)

// buildTrustedProxies turns identity.trusted_proxies into the set, or nil
// when the list is empty (no one is trusted).
func buildTrustedProxies(list []string) (*identity.TrustedProxies, error) {
	if len(list) == 0 {
		return nil, nil
	}
	prefixes := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := parseNetwork(s)
		if err != nil {
			return nil, fmt.Errorf("identity.trusted_proxies %q: %w", s, err)
		}
		prefixes = append(prefixes, p)
	}
	return identity.NewTrustedProxies(prefixes)
}

// buildJWT fetches the key set once (so a wrong URL or file fails at start)
// and returns the jwt resolver.
func buildJWT(ctx context.Context, c JWTConfig, log *zap.Logger) (identity.Resolver, error) {
	var client *http.Client
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate found", c.CAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	fetchCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	keys, err := identity.NewJWKS(fetchCtx, identity.JWKSOptions{
		File: c.JWKSFile, URL: c.JWKSURL, DiscoveryURL: c.DiscoveryURL, Client: client,
		BearerTokenFile: c.TokenFile, MinRefreshInterval: c.MinRefreshInterval.Duration,
		MaxAge: c.MaxAge.Duration, MaxStale: c.MaxStale.Duration, FetchWait: c.FetchWait.Duration,
		Issuer: c.Issuer, AllowedHosts: c.AllowedJWKSHosts, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return identity.NewJWT(identity.JWTOptions{Issuer: c.Issuer, Audiences: c.Audiences, Keys: keys, Leeway: c.Leeway.Duration})
}
