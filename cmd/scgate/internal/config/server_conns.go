package config

import (
	"net/netip"

	"github.com/scgate/scgate/proxy"
)

// The connection limits of [server] (max_connections,
// max_connections_per_source, unidentified_timeout): their defaults are
// proxy's.

func (s *Server) connDefaults() {
	if s.MaxConnections == 0 {
		s.MaxConnections = proxy.DefaultMaxConnections
	}
	if s.MaxConnectionsPerSource == 0 {
		s.MaxConnectionsPerSource = proxy.DefaultMaxConnectionsPerSource
	}
	s.UnidentifiedTimeout.orDefault(proxy.DefaultUnidentifiedTimeout)
}

func (s Server) validateConns(p *problems) {
	if s.MaxConnections < 0 {
		p.add("must be a positive number of connections", "server", "max_connections")
	}
	if s.MaxConnectionsPerSource < 0 {
		p.add("must be a positive number of connections", "server", "max_connections_per_source")
	}
}

// ConnLimits converts the settings for the gateway listener. The trusted
// proxies carry many callers' connections, so they are not held to the
// per-source limit.
func (c *Config) ConnLimits(onRefused func(reason string)) proxy.ConnLimits {
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
