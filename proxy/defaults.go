package proxy

import "time"

// The defaults of the Options structs of this package. A zero value in an
// Options field means the default; scgate's config file takes its defaults
// from these constants, so each default is written once.
const (
	// DefaultReadHeaderTimeout is ServerOptions.ReadHeaderTimeout's default.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout is ServerOptions.ReadTimeout's default.
	DefaultReadTimeout = 2 * time.Minute
	// DefaultWriteTimeout is ServerOptions.WriteTimeout's default.
	DefaultWriteTimeout = 2 * time.Minute
	// DefaultIdleTimeout is ServerOptions.IdleTimeout's default.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes is ServerOptions.MaxHeaderBytes's default.
	DefaultMaxHeaderBytes = 64 << 10

	// DefaultShutdownDelay is how long scgate keeps serving new requests
	// after SIGTERM by default (LifecycleOptions.ShutdownDelay has no
	// default of its own: zero means no delay).
	DefaultShutdownDelay = 5 * time.Second
	// DefaultShutdownTimeout is LifecycleOptions.ShutdownTimeout's default.
	DefaultShutdownTimeout = 30 * time.Second

	// DefaultMaxBodyBytes is Options.MaxBodyBytes's default.
	DefaultMaxBodyBytes = 32 << 20
	// DefaultMaxUpstreamPause is Options.MaxUpstreamPause's default.
	DefaultMaxUpstreamPause = 5 * time.Minute

	// DefaultMaxConnections is the gateway listener's default cap on open
	// connections (ConnLimits.MaxConnections). An idle TLS connection from a
	// stranger costs about 65 KiB of resident memory; 1024 of them stay well
	// inside the Helm chart's 256 MiB memory limit together with the
	// requests being served.
	DefaultMaxConnections = 1024
	// DefaultMaxConnectionsPerSource is the default cap per source address
	// (ConnLimits.MaxPerSource).
	DefaultMaxConnectionsPerSource = 256
	// DefaultUnidentifiedTimeout is the default ConnLimits.UnidentifiedTimeout.
	DefaultUnidentifiedTimeout = 10 * time.Second

	// DefaultDialTimeout is TransportOptions.DialTimeout's default.
	DefaultDialTimeout = 5 * time.Second
	// DefaultTLSHandshakeTimeout is TransportOptions.TLSHandshakeTimeout's default.
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// DefaultResponseHeaderTimeout is TransportOptions.ResponseHeaderTimeout's default.
	DefaultResponseHeaderTimeout = 30 * time.Second
	// DefaultIdleConnTimeout is TransportOptions.IdleConnTimeout's default.
	DefaultIdleConnTimeout = 90 * time.Second
	// DefaultMaxIdleConns is TransportOptions.MaxIdleConns's default.
	DefaultMaxIdleConns = 512
)
