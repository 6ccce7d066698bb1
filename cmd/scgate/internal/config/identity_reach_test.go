package config

import (
	"strings"
	"testing"
)

// TestUnreachableResolverIsWarned: with client_auth = "require" the handshake
// refuses callers without a certificate and mtls settles every caller with
// one, so a resolver listed after mtls is never asked; check and run warn
// (IdentityWarnings feeds both), naming the file, the line and the fix.
func TestUnreachableResolverIsWarned(t *testing.T) {
	const base = "[upstream]\nurl = \"https://radio.example:1030\"\n[vault]\nfile = \"keys.toml\"\n"
	const tlsFiles = "[server]\nlisten = \"0.0.0.0:8443\"\ntls = \"files\"\ncert_file = \"tls.crt\"\nkey_file = \"tls.key\"\nclient_ca_file = \"ca.crt\"\n"
	const mtlsThenCIDR = "[identity]\norder = [\"mtls\", \"cidr\"]\n[identity.mtls]\ntrust_domains = [\"prod.example\"]\n[identity.cidr]\n\"10.20.0.0/16\" = \"legacy\"\n"
	cases := []struct {
		name, file string
		warn       string // "" when no such warning is wanted
	}{
		{"require, cidr after mtls", tlsFiles + base + mtlsThenCIDR,
			`cfg.toml:12: identity.order asks cidr after mtls, but server.client_auth = "require"`},
		{"require by default, order derived", tlsFiles + base +
			"[identity.mtls]\ntrust_domains = [\"prod.example\"]\n[identity.cidr]\n\"10.20.0.0/16\" = \"legacy\"\n",
			`identity.order asks cidr after mtls`},
		{"require, several after mtls", tlsFiles + base +
			"[identity]\norder = [\"mtls\", \"cidr\", \"static\"]\nstatic = \"svc\"\n[identity.mtls]\ntrust_domains = [\"prod.example\"]\n[identity.cidr]\n\"10.20.0.0/16\" = \"legacy\"\n",
			`asks cidr, static after mtls`},
		{"verify-if-given lets callers without certificates reach cidr",
			strings.Replace(tlsFiles, "client_ca_file", "client_auth = \"verify-if-given\"\nclient_ca_file", 1) + base + mtlsThenCIDR, ""},
		{"cidr before mtls is asked first", tlsFiles + base +
			"[identity]\norder = [\"cidr\", \"mtls\"]\n[identity.mtls]\ntrust_domains = [\"prod.example\"]\n[identity.cidr]\n\"10.20.0.0/16\" = \"legacy\"\n", ""},
		{"mtls alone", tlsFiles + base + "[identity.mtls]\ntrust_domains = [\"prod.example\"]\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("cfg.toml", []byte(c.file))
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			for _, w := range cfg.IdentityWarnings() {
				if strings.Contains(w, "is never asked") {
					found = append(found, w)
				}
			}
			if c.warn == "" {
				if len(found) > 0 {
					t.Errorf("unexpected warning %q", found)
				}
				return
			}
			if len(found) != 1 || !strings.Contains(found[0], c.warn) {
				t.Fatalf("warnings %q, want one containing %q", found, c.warn)
			}
			if !strings.Contains(found[0], `set server.client_auth = "verify-if-given"`) {
				t.Errorf("warning %q does not say what to fix", found[0])
			}
		})
	}
}
