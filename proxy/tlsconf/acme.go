package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"
)

// ACMEOptions configures NewACME.
type ACMEOptions struct {
	// Domains are the names to obtain certificates for, one certificate
	// each. Required.
	Domains []string
	// CA is the ACME directory URL, such as Let's Encrypt's
	// https://acme-v02.api.letsencrypt.org/directory or a private step-ca or
	// Pebble. Required.
	CA string
	// Email is the contact address given to the CA for expiry notices.
	// Optional.
	Email string
	// TrustedRoots, when set, verify the CA's own HTTPS certificate instead
	// of the system roots: for a private ACME CA.
	TrustedRoots *x509.CertPool
	// Storage is the folder for the account key, certificates and locks.
	// Required; it is created if missing. Keep it on a persistent volume
	// (shared by the replicas): every restart with an empty folder orders
	// new certificates, and public CAs limit how often.
	Storage string
	// HTTPChallenge and TLSALPNChallenge say which challenges to answer, at
	// least one: HTTP-01 through HTTPHandler on the listener the CA reaches
	// on port 80, TLS-ALPN-01 through GetCertificate on the TLS listener the
	// CA reaches on port 443.
	HTTPChallenge, TLSALPNChallenge bool
	// RenewCheckInterval is how often certificates are checked for renewal;
	// zero means certmagic's default (10 minutes). Renewal starts when a
	// third of a certificate's lifetime is left, or when the CA's renewal
	// information (ARI) says so.
	RenewCheckInterval time.Duration
	// Logger receives certmagic's reports (obtain, renew, OCSP). Nil
	// discards them.
	Logger *zap.Logger
	// OnCertificate, when set, is called with each certificate put into
	// service (loaded from storage, obtained or renewed): the place for an
	// expiry metric. It must return quickly.
	OnCertificate func(domain string, leaf *x509.Certificate)
}

// ACME obtains and renews the listener's certificates from an ACME CA
// through certmagic, with a certificate cache and config of its own: it
// never touches certmagic.Default or the package-level convenience
// functions, so several can coexist (tests do) and nothing leaks between
// them. OCSP responses are stapled as certmagic does by default.
type ACME struct {
	domains  []string
	cache    *certmagic.Cache
	cfg      *certmagic.Config
	issuer   *certmagic.ACMEIssuer
	opts     ACMEOptions
	log      *zap.Logger
	stopOnce sync.Once
}

// NewACME prepares certificate management; nothing is obtained until
// Manage. Call Stop to end the background maintenance.
func NewACME(opts ACMEOptions) (*ACME, error) {
	if err := checkACMEOptions(opts); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if err := checkStorage(opts.Storage); err != nil {
		return nil, err
	}
	a := &ACME{domains: slices.Clone(opts.Domains), opts: opts, log: log}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return a.cfg, nil },
		RenewCheckInterval: opts.RenewCheckInterval,
		Logger:             log,
	})
	a.cfg = certmagic.New(a.cache, certmagic.Config{
		Storage:           &certmagic.FileStorage{Path: opts.Storage},
		DefaultServerName: a.domains[0], // for clients that send no SNI
		Logger:            log,
		OnEvent:           a.onEvent,
		// Only the events onEvent uses: the others include one per handshake.
		ShouldEmitFunc: func(event string) bool { return event == "cached_managed_cert" || event == "cert_obtained" },
	})
	a.issuer = certmagic.NewACMEIssuer(a.cfg, certmagic.ACMEIssuer{
		CA:                      opts.CA,
		TestCA:                  opts.CA, // never fall back to another CA's staging
		Email:                   opts.Email,
		Agreed:                  true,
		TrustedRoots:            opts.TrustedRoots,
		DisableHTTPChallenge:    !opts.HTTPChallenge,
		DisableTLSALPNChallenge: !opts.TLSALPNChallenge,
		Logger:                  log,
	})
	a.cfg.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

func checkACMEOptions(opts ACMEOptions) error {
	switch {
	case len(opts.Domains) == 0:
		return errors.New("tlsconf: ACME: no domains given: list the names callers use to reach scgate")
	case opts.CA == "":
		return errors.New("tlsconf: ACME: no CA directory URL given")
	case opts.Storage == "":
		return errors.New("tlsconf: ACME: no storage folder given: name a persistent folder for the account and certificates")
	case !opts.HTTPChallenge && !opts.TLSALPNChallenge:
		return errors.New("tlsconf: ACME: both challenges are off: enable HTTP-01, TLS-ALPN-01 or both")
	}
	for _, d := range opts.Domains {
		if !certmagic.SubjectQualifiesForCert(d) || strings.Contains(d, "*") {
			return fmt.Errorf("tlsconf: ACME: %q is not a domain name scgate can obtain a certificate for (wildcards need the DNS challenge, which scgate does not do)", d)
		}
	}
	return nil
}

// checkStorage makes sure the storage folder exists and is writable now,
// rather than failing in the middle of the first order.
func checkStorage(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tlsconf: ACME storage: %w (create the folder or give scgate write access)", err)
	}
	f, err := os.CreateTemp(dir, ".scgate-write-test-*")
	if err != nil {
		return fmt.Errorf("tlsconf: ACME storage %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// GetCertificate serves the managed certificate for the handshake's name,
// or the TLS-ALPN-01 challenge certificate while the CA validates. It has
// the signature of tls.Config.GetCertificate.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.cfg.GetCertificate(hello)
}

// NextProtos are the ALPN protocols the listener must offer: h2, http/1.1
// and, with TLS-ALPN-01, acme-tls/1.
func (a *ACME) NextProtos() []string {
	protos := []string{"h2", "http/1.1"}
	if a.opts.TLSALPNChallenge {
		protos = append(protos, acmez.ACMETLS1Protocol)
	}
	return protos
}

// HTTPHandler answers HTTP-01 challenges and hands every other request to
// next. Serve it on the listener the CA reaches on port 80.
func (a *ACME) HTTPHandler(next http.Handler) http.Handler {
	return a.issuer.HTTPChallengeHandler(next)
}

// Manage loads the certificates from storage or obtains them, and returns
// once every domain has one (certmagic's ManageSync); renewal then runs in
// the background until Stop. The challenge listeners must already be
// serving: httpAddr is where HTTPHandler is served (nil without HTTP-01) and
// tlsAddr the listener using GetCertificate (nil without TLS-ALPN-01).
// certmagic finds those addresses taken and so leaves the answering to
// them, rather than starting servers of its own.
func (a *ACME) Manage(ctx context.Context, httpAddr, tlsAddr net.Addr) error {
	if a.opts.HTTPChallenge {
		host, port, err := hostPort(httpAddr)
		if err != nil {
			return fmt.Errorf("tlsconf: ACME HTTP-01 listener: %w", err)
		}
		a.issuer.ListenHost, a.issuer.AltHTTPPort = host, port
	}
	if a.opts.TLSALPNChallenge {
		host, port, err := hostPort(tlsAddr)
		if err != nil {
			return fmt.Errorf("tlsconf: ACME TLS-ALPN-01 listener: %w", err)
		}
		if !a.opts.HTTPChallenge {
			a.issuer.ListenHost = host
		}
		a.issuer.AltTLSALPNPort = port
	}
	if err := a.cfg.ManageSync(ctx, a.domains); err != nil {
		return fmt.Errorf("tlsconf: ACME: obtaining certificates for %v from %s: %w", a.domains, a.opts.CA, err)
	}
	return nil
}

func hostPort(addr net.Addr) (string, int, error) {
	if addr == nil {
		return "", 0, errors.New("no listener address given")
	}
	host, p, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "" // certmagic probes all interfaces, as the listener binds them
	}
	return host, port, nil
}

// Leaf returns the certificate currently served for domain, or nil.
func (a *ACME) Leaf(domain string) *x509.Certificate {
	var best *x509.Certificate
	for _, c := range a.cache.AllMatchingCertificates(domain) {
		if c.Leaf != nil && (best == nil || c.Leaf.NotAfter.After(best.NotAfter)) {
			best = c.Leaf
		}
	}
	return best
}

// Stop ends the background renewal and OCSP maintenance and waits for it.
// It may be called more than once.
func (a *ACME) Stop() {
	a.stopOnce.Do(a.cache.Stop)
}

// onEvent reports each certificate put into service to OnCertificate: a
// certificate loaded into the cache ("cached_managed_cert"), and a
// certificate just obtained or renewed ("cert_obtained"), read from storage
// because certmagic swaps it into the cache only afterwards.
func (a *ACME) onEvent(ctx context.Context, event string, data map[string]any) error {
	if a.opts.OnCertificate == nil {
		return nil
	}
	switch event {
	case "cached_managed_cert":
		sans, _ := data["sans"].([]string)
		for _, name := range sans {
			if slices.Contains(a.domains, name) {
				if leaf := a.Leaf(name); leaf != nil {
					a.opts.OnCertificate(name, leaf)
				}
			}
		}
	case "cert_obtained":
		name, _ := data["identifier"].(string)
		path, _ := data["certificate_path"].(string)
		if name == "" || path == "" {
			return nil
		}
		leaf, err := a.loadLeaf(ctx, path)
		if err != nil {
			a.log.Warn("tlsconf: ACME: cannot read the certificate just obtained", zap.String("domain", name), zap.Error(err))
			return nil
		}
		a.opts.OnCertificate(name, leaf)
	}
	return nil
}

func (a *ACME) loadLeaf(ctx context.Context, key string) (*x509.Certificate, error) {
	data, err := a.cfg.Storage.Load(ctx, key)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", filepath.Base(key))
	}
	return x509.ParseCertificate(block.Bytes)
}
