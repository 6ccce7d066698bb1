package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
)

// Client authentication modes for ServerOptions.ClientAuth.
const (
	// ClientAuthRequire refuses a handshake without a client certificate
	// that chains to the client CAs.
	ClientAuthRequire = "require"
	// ClientAuthVerifyIfGiven accepts a handshake without a client
	// certificate, but refuses one whose certificate does not chain to the
	// client CAs. Identity resolvers behind it must cope with both.
	ClientAuthVerifyIfGiven = "verify-if-given"
)

// ServerOptions configures ServerConfig.
type ServerOptions struct {
	// GetCertificate returns the server certificate for a handshake.
	// Required. Any certificate source plugs in here: Files.GetCertificate,
	// a closure returning a SelfSigned certificate, or an ACME manager's
	// GetCertificate.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ClientCAs, when set, makes the server ask for client certificates and
	// verify them against the pool current at each handshake: a *ClientCAs,
	// or a *Trust for SPIFFE trust bundles. Nil means no client
	// certificates are asked for.
	ClientCAs CAPool
	// ClientAuth is ClientAuthRequire or ClientAuthVerifyIfGiven; empty
	// means ClientAuthRequire. It needs ClientCAs.
	ClientAuth string
	// NextProtos are the ALPN protocols offered; nil means h2 then
	// http/1.1. An ACME source using the TLS-ALPN challenge adds
	// "acme-tls/1".
	NextProtos []string
}

// tls12Suites are the TLS 1.2 cipher suites served: the AEAD suites with
// forward secrecy of Mozilla's "intermediate" profile. The CBC suites with
// SHA-1 MACs that crypto/tls also enables by default are left out (they
// have a history of padding-oracle and timing attacks, and every client
// still in support speaks an AEAD suite). TLS 1.3's suites are all AEAD and
// not configurable.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CAPool is a reloadable pool of client CAs. Pool returns the pool current
// now; a reload stores a new pool rather than modifying the old one, so its
// pointer identifies a version.
type CAPool interface {
	Pool() *x509.CertPool
}

// ServerConfig returns the listener's tls.Config: TLS 1.2 at least with
// AEAD cipher suites only (tls12Suites), the
// certificate from opts.GetCertificate and, with ClientCAs, a
// GetConfigForClient that hands each handshake a config built on the client-
// CA pool current at that moment. That config is cached on the pool's
// pointer, so a CA reload takes effect on the next handshake while ordinary
// handshakes share one config instead of cloning per connection.
//
// The returned config must not be modified.
func ServerConfig(opts ServerOptions) (*tls.Config, error) {
	if opts.GetCertificate == nil {
		return nil, errors.New("tlsconf: ServerOptions.GetCertificate is required: pass a certificate source (files, self-signed or ACME)")
	}
	protos := opts.NextProtos
	if protos == nil {
		protos = []string{"h2", "http/1.1"}
	}
	base := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   slices.Clone(tls12Suites),
		GetCertificate: opts.GetCertificate,
		NextProtos:     slices.Clone(protos),
	}
	switch c := opts.ClientCAs.(type) {
	case *ClientCAs:
		if c == nil { // a nil pointer in the interface still means none
			opts.ClientCAs = nil
		}
	case *Trust:
		if c == nil {
			opts.ClientCAs = nil
		}
	}
	if opts.ClientCAs == nil {
		if opts.ClientAuth != "" {
			return nil, fmt.Errorf("tlsconf: client auth %q needs a client CA file", opts.ClientAuth)
		}
		return base, nil
	}
	var mode tls.ClientAuthType
	switch opts.ClientAuth {
	case "", ClientAuthRequire:
		mode = tls.RequireAndVerifyClientCert
	case ClientAuthVerifyIfGiven:
		mode = tls.VerifyClientCertIfGiven
	default:
		return nil, fmt.Errorf("tlsconf: client auth %q is not known: use %q or %q", opts.ClientAuth, ClientAuthRequire, ClientAuthVerifyIfGiven)
	}

	// The outer config carries the same settings, so that anything reading
	// it before GetConfigForClient runs sees the truth; the pool it names is
	// only the one current at start-up.
	outer := base.Clone()
	outer.ClientAuth = mode
	outer.ClientCAs = opts.ClientCAs.Pool()
	cache := &configCache{base: base.Clone(), cas: opts.ClientCAs}
	cache.base.ClientAuth = mode
	if slices.Contains(protos, acmeTLS1) {
		// The CA validating a TLS-ALPN-01 challenge has no client
		// certificate. Its hello offers acme-tls/1 alone; such a handshake
		// gets only the challenge certificate and no HTTP is ever served on
		// it (net/http closes connections of an unknown protocol), so
		// waiving client auth for it opens nothing.
		cache.acme = base.Clone()
		cache.acme.NextProtos = []string{acmeTLS1}
	}
	outer.GetConfigForClient = cache.get
	return outer, nil
}

// configCache hands out a config built on the current client-CA pool.
//
// A tls.Config is only read during a handshake, so one config can serve any
// number of concurrent handshakes as long as nobody modifies it after it is
// published. The certificate comes through GetCertificate, which follows
// reloads by itself; the CA pool has no such callback, so its pointer is the
// cache key, and a reload (which stores a new pool) makes the next handshake
// build a fresh config. Two handshakes racing a reload may both build one;
// the loser's config is simply dropped.
//
// Session tickets stay valid across a rebuild because a config returned from
// GetConfigForClient without its own ticket keys uses the outer config's. A
// resumed session is still checked against the current pool: crypto/tls
// re-verifies the session's client chain against ClientCAs on resumption, so
// removing a CA also shuts out sessions it had vouched for.
type configCache struct {
	base *tls.Config
	acme *tls.Config // for TLS-ALPN-01 validation handshakes; nil without
	cas  CAPool
	cur  atomic.Pointer[cachedConfig]
}

// acmeTLS1 is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737).
const acmeTLS1 = "acme-tls/1"

type cachedConfig struct {
	pool   *x509.CertPool
	config *tls.Config
}

func (c *configCache) get(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if c.acme != nil && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLS1 {
		return c.acme, nil
	}
	pool := c.cas.Pool()
	if cur := c.cur.Load(); cur != nil && cur.pool == pool {
		return cur.config, nil
	}
	cfg := c.base.Clone()
	cfg.ClientCAs = pool
	c.cur.Store(&cachedConfig{pool: pool, config: cfg})
	return cfg, nil
}
