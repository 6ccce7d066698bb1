package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"time"
)

// TransportOptions tunes the one transport shared by every request to the
// broadcaster. Zero values take the documented defaults.
type TransportOptions struct {
	// RootCAs verifies the broadcaster's certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// ServerName overrides the name checked against the broadcaster's
	// certificate (and sent as SNI); empty means the upstream URL's host.
	ServerName string
	// DialTimeout bounds a TCP connect (default 5s).
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake (default 10s).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the broadcaster's response
	// headers once the request is sent (default 30s); past it the caller gets
	// 504 upstream_timeout.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes pooled connections unused this long (default 90s).
	IdleConnTimeout time.Duration
	// DangerouslySkipVerify accepts any certificate from the broadcaster,
	// so anyone on the path can read the keys scgate sends. It exists for a
	// broadcaster with a broken certificate that cannot be fixed at once;
	// RootCAs is the safe way to trust a private CA.
	DangerouslySkipVerify bool
	// MaxIdleConns is the idle pool size towards the broadcaster (default 512):
	// sized for hundreds of concurrent callers, since every caller goes to the
	// same host and a too-small pool means a new TLS handshake per request.
	MaxIdleConns int
}

// NewTransport returns the transport towards the broadcaster. It never uses
// proxy settings from the environment (a key must go only to the upstream),
// never decompresses (callers get the broadcaster's bytes unchanged) and uses
// HTTP/2 when the broadcaster offers it.
func NewTransport(o TransportOptions) *http.Transport {
	o.DialTimeout = orDefault(o.DialTimeout, DefaultDialTimeout)
	o.TLSHandshakeTimeout = orDefault(o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	o.ResponseHeaderTimeout = orDefault(o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	o.IdleConnTimeout = orDefault(o.IdleConnTimeout, DefaultIdleConnTimeout)
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = DefaultMaxIdleConns
	}
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          o.MaxIdleConns,
		MaxIdleConnsPerHost:   o.MaxIdleConns,
		IdleConnTimeout:       o.IdleConnTimeout,
		TLSHandshakeTimeout:   o.TLSHandshakeTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		// Per pooled connection, so they multiply with the pool (64 KiB
		// each would hold 16 MiB at 256 connections). net/http's 4 KiB
		// default is enough: bufio hands reads and writes of a whole copy
		// buffer straight to the connection, so large bodies bypass it.
		ReadBufferSize:  4 << 10,
		WriteBufferSize: 4 << 10,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    o.RootCAs,
			ServerName: o.ServerName,
			// The name says it all; cmd/scgate warns at every start.
			InsecureSkipVerify: o.DangerouslySkipVerify,
		},
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
