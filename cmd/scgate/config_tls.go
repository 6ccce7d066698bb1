package main

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/certmagic"
)

// ACMEConfig is [server.acme]: certificates from an ACME CA for tls = "acme".
type ACMEConfig struct {
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

// letsEncrypt is the default ACME CA.
const letsEncrypt = certmagic.LetsEncryptProductionCA

func (a ACMEConfig) set() bool {
	return len(a.Domains) > 0 || a.Email != "" || a.CA != "" || a.CARootsFile != "" || a.Storage != "" ||
		a.HTTPChallengeListen != "" || a.TLSALPNChallenge != nil
}

// tlsALPN reports whether TLS-ALPN-01 is answered (the default).
func (a ACMEConfig) tlsALPN() bool { return a.TLSALPNChallenge == nil || *a.TLSALPNChallenge }

// applyCentralDefaults completes the settings of config_tls.go. (The
// durations of [identity.jwt] stay zero when absent: the resolver's own
// defaults apply.)
func (c *Config) applyCentralDefaults() {
	if c.Server.TLS == "acme" {
		c.Server.ACME.CA = orString(c.Server.ACME.CA, letsEncrypt)
	}
}

// validateCentral checks the central gateway's settings: ACME, the
// upstream's verification switch, and the jwt, header and trusted-proxy
// identity settings.
func (c *Config) validateCentral() []error {
	errs := c.validateACME()
	u := c.Upstream
	if u.DangerouslySkipTLSVerify && u.CAFile != "" {
		errs = append(errs, c.problem("ca_file is unused when verification is skipped: remove one of the two (keeping ca_file is the safe choice)", "upstream", "dangerously_skip_tls_verify"))
	}
	return append(errs, c.validateIdentityCentral()...)
}

func (c *Config) validateACME() []error {
	a := c.Server.ACME
	if c.Server.TLS != "acme" {
		if a.set() {
			return []error{c.problem(`[server.acme] is used only with tls = "acme"`, "server", "acme")}
		}
		return nil
	}
	var errs []error
	add := func(msg string, key ...string) {
		errs = append(errs, c.problem(msg, append([]string{"server", "acme"}, key...)...))
	}
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
	if l := a.HTTPChallengeListen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			add(fmt.Sprintf("%q is not host:port, e.g. \":80\" or \"0.0.0.0:8080\"", l), "http_challenge_listen")
		} else if slices.Contains([]string{c.Server.Listen, c.Admin.Listen}, l) && !strings.HasSuffix(l, ":0") {
			add("the HTTP-01 listener must not share the gateway's or the admin address", "http_challenge_listen")
		}
	}
	return errs
}
