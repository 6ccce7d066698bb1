package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/caddyserver/certmagic"

	"github.com/scgate/scgate/proxy/tlsconf"
)

// ACME is [server.acme]: certificates from an ACME CA for tls = "acme".
type ACME struct {
	Domains             []string `toml:"domains"`
	Email               string   `toml:"email"`
	CA                  string   `toml:"ca"`
	CARootsFile         string   `toml:"ca_roots_file"`
	Storage             string   `toml:"storage"`
	HTTPChallengeListen string   `toml:"http_challenge_listen"`
	// TLSALPNChallenge is a pointer so that an absent setting can default
	// to true.
	TLSALPNChallenge *bool `toml:"tls_alpn_challenge"`
}

// DefaultACMECA is server.acme.ca's default.
const DefaultACMECA = certmagic.LetsEncryptProductionCA

func (a *ACME) defaults(mode string) {
	if mode == "acme" {
		a.CA = orString(a.CA, DefaultACMECA)
	}
}

func (a ACME) set() bool {
	return len(a.Domains) > 0 || a.Email != "" || a.CA != "" || a.CARootsFile != "" || a.Storage != "" ||
		a.HTTPChallengeListen != "" || a.TLSALPNChallenge != nil
}

// tlsALPN reports whether TLS-ALPN-01 is answered (the default).
func (a ACME) tlsALPN() bool { return a.TLSALPNChallenge == nil || *a.TLSALPNChallenge }

func (a ACME) validate(p *problems, c *Config) {
	if c.Server.TLS != "acme" {
		if a.set() {
			p.add(`[server.acme] is used only with tls = "acme"`, "server", "acme")
		}
		return
	}
	add := func(msg string, key string) { p.add(msg, "server", "acme", key) }
	if len(a.Domains) == 0 {
		add(`tls = "acme" needs the names callers use, e.g. domains = ["scgate.example.com"]`, "domains")
	}
	for _, d := range a.Domains {
		if !certmagic.SubjectQualifiesForCert(d) || strings.Contains(d, "*") {
			add(fmt.Sprintf("%q is not a domain name scgate can get a certificate for (no wildcards: they need the DNS challenge)", d), "domains")
		}
	}
	if pu, err := url.Parse(a.CA); err != nil || pu.Host == "" || (pu.Scheme != "https" && !(pu.Scheme == "http" && isLoopbackHost(pu.Hostname()))) {
		add(fmt.Sprintf("%q is not an https ACME directory URL", a.CA), "ca")
	}
	if a.Storage == "" {
		add(`the folder for the ACME account and certificates is required, e.g. "/var/lib/scgate/acme" on a persistent volume`, "storage")
	}
	if a.HTTPChallengeListen == "" && !a.tlsALPN() {
		add("both challenges are off: set http_challenge_listen, or leave tls_alpn_challenge on", "tls_alpn_challenge")
	}
	if l := a.HTTPChallengeListen; l != "" && checkListen(p, l, "server", "acme", "http_challenge_listen") {
		if slices.Contains([]string{c.Server.Listen, c.Admin.Listen}, l) && !hasZeroPort(l) {
			add("the HTTP-01 listener must not share the gateway's or the admin address", "http_challenge_listen")
		}
	}
}

// ACMEOptions is [server.acme] as tlsconf takes it; it reads ca_roots_file.
// Logger and OnCertificate are the gateway's to set.
func (c *Config) ACMEOptions() (tlsconf.ACMEOptions, error) {
	a := c.Server.ACME
	opts := tlsconf.ACMEOptions{
		Domains: a.Domains, CA: a.CA, Email: a.Email, Storage: a.Storage,
		HTTPChallenge: a.HTTPChallengeListen != "", TLSALPNChallenge: a.tlsALPN(),
	}
	if a.CARootsFile != "" {
		pool, err := readCertPool(a.CARootsFile)
		if err != nil {
			return opts, c.Wrap(err, "server", "acme", "ca_roots_file")
		}
		opts.TrustedRoots = pool
	}
	return opts, nil
}

// readCertPool reads a PEM bundle of CA certificates.
func readCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}
