package main

import (
	"net/netip"
	"time"

	"github.com/scgate/scgate/proxy"
)

// Defaults of the gateway's connection limits. An idle TLS connection from a
// stranger costs about 65 KiB of resident memory; 1024 of them stay well
// inside the Helm chart's 256 MiB memory limit together with the requests
// being served.
const (
	defaultMaxConnections      = 1024
	defaultMaxPerSource        = 256
	defaultUnidentifiedTimeout = 10 * time.Second
)

func (s *ServerConfig) applyConnDefaults() {
	if s.MaxConnections == 0 {
		s.MaxConnections = defaultMaxConnections
	}
	if s.MaxConnectionsPerSource == 0 {
		s.MaxConnectionsPerSource = defaultMaxPerSource
	}
	setDuration(&s.UnidentifiedTimeout, defaultUnidentifiedTimeout)
}

func (c *Config) validateConnLimits() []error {
	s := c.Server
	var errs []error
	if s.MaxConnections < 0 {
		errs = append(errs, c.problem("must be a positive number of connections", "server", "max_connections"))
	}
	if s.MaxConnectionsPerSource < 0 {
		errs = append(errs, c.problem("must be a positive number of connections", "server", "max_connections_per_source"))
	}
	return errs
}

// connLimits converts the settings for the gateway listener. The trusted
// proxies carry many callers' connections, so they are not held to the
// per-source limit.
func (c *Config) connLimits(onRefused func(reason string)) proxy.ConnLimits {
	var exempt []netip.Prefix
	for _, s := range c.Identity.TrustedProxies {
		if p, err := parseNetwork(s); err == nil { // validated with the config
			exempt = append(exempt, p)
		}
	}
	return proxy.ConnLimits{
		MaxConnections: c.Server.MaxConnections, MaxPerSource: c.Server.MaxConnectionsPerSource,
		ExemptSources: exempt, UnidentifiedTimeout: c.Server.UnidentifiedTimeout.Duration,
		OnRefused: onRefused,
	}
}
