package main

import (
	"strings"
	"testing"
)

// TestIdentityHardeningConfigErrors: the settings of trust bundles, JWKS
// fetching and trusted-proxy overlap are checked at load, each error at the
// line of the setting, by `scgate check` and `scgate run` alike.
func TestIdentityHardeningConfigErrors(t *testing.T) {
	base := "[upstream]\nurl = \"https://radio.example:1030\"\n[vault]\nfile = \"keys.toml\"\n"
	jwt := "[identity.jwt]\nissuer = \"https://k.example\"\naudiences = [\"scgate\"]\n"
	cases := []struct {
		name, cfg string
		want      []string
	}{
		{"leeway above 5m", base + "[identity]\nstatic = \"svc\"\n" + jwt + "jwks_file = \"jwks.json\"\nleeway = \"6m\"\n",
			[]string{"config.toml:11: identity.jwt.leeway", "more than the 5m0s allowed"}},
		{"max_stale below max_age", base + "[identity]\nstatic = \"svc\"\n" + jwt + "jwks_file = \"jwks.json\"\nmax_age = \"2h\"\nmax_stale = \"1h\"\n",
			[]string{"config.toml:12: identity.jwt.max_stale", "shorter than max_age"}},
		{"fetch_wait too long", base + "[identity]\nstatic = \"svc\"\n" + jwt + "jwks_file = \"jwks.json\"\nfetch_wait = \"1m\"\n",
			[]string{"config.toml:11: identity.jwt.fetch_wait"}},
		{"allowed host with a path", base + "[identity]\nstatic = \"svc\"\n" + jwt + "discovery_url = \"https://k.example/.well-known/openid-configuration\"\nallowed_jwks_hosts = [\"evil.example/x\"]\n",
			[]string{"config.toml:11: identity.jwt.allowed_jwks_hosts", "host name or host:port"}},
		{"token over http", base + "[identity]\nstatic = \"svc\"\n" + jwt + "jwks_url = \"http://127.0.0.1:8001/keys\"\ntoken_file = \"t\"\n",
			[]string{"config.toml:10: identity.jwt.jwks_url", "only ever sent over https"}},
		{"trusted proxy overlaps a caller network", base + "[identity]\ntrusted_proxies = [\"10.0.0.0/8\"]\n[identity.cidr]\n\"10.1.0.0/16\" = \"stats\"\n",
			[]string{"config.toml:6: identity.trusted_proxies", `overlaps the caller network "10.1.0.0/16"`, "X-Forwarded-For"}},
		{"trusted proxy inside a caller network", base + "[identity]\ntrusted_proxies = [\"10.1.2.3\"]\n[identity.cidr]\n\"10.1.0.0/16\" = \"stats\"\n",
			[]string{"config.toml:6: identity.trusted_proxies", "overlaps"}},
		{"bad trust bundle domain", base + "[server]\ntls = \"self-signed\"\n[identity.mtls.trust_bundles]\n\"Prod.Example\" = \"prod.pem\"\n",
			[]string{"config.toml:8: identity.mtls.trust_bundles.Prod.Example", "not a SPIFFE trust domain"}},
		{"trust bundles without tls", base + "[identity.mtls.trust_bundles]\n\"prod.example\" = \"prod.pem\"\n",
			[]string{"identity.mtls.trust_bundles", "need TLS"}},
		{"trust bundles with dns source", base + "[server]\ntls = \"self-signed\"\n[identity.mtls]\nsource = \"dns\"\n[identity.mtls.trust_bundles]\n\"prod.example\" = \"prod.pem\"\n",
			[]string{"config.toml:8: identity.mtls.source", "SPIFFE IDs only"}},
		{"trust domain without bundle", base + "[server]\ntls = \"self-signed\"\n[identity.mtls]\ntrust_domains = [\"prod.example\", \"other.example\"]\n[identity.mtls.trust_bundles]\n\"prod.example\" = \"prod.pem\"\n",
			[]string{"config.toml:8: identity.mtls.trust_domains", `"other.example" has no bundle`}},
		{"two trust domains on one client CA", base + "[server]\ntls = \"self-signed\"\nclient_ca_file = \"ca.pem\"\n[identity.mtls]\ntrust_domains = [\"prod.example\", \"other.example\"]\n",
			[]string{"config.toml:9: identity.mtls.trust_domains", "trust_bundles"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, cmd := range []string{"check", "run"} {
				code, _, errOut := run(t, cmd, "--config", writeConfig(t, c.cfg))
				if code != exitInvalid {
					t.Fatalf("%s: exit %d, want %d; stderr: %s", cmd, code, exitInvalid, errOut)
				}
				for _, w := range c.want {
					if !strings.Contains(errOut, w) {
						t.Errorf("%s: error lacks %q:\n%s", cmd, w, errOut)
					}
				}
			}
		})
	}
}

// TestTrustedProxyOverlapAllowedIsWarned: allow_overlap turns the refusal
// into a warning that `scgate check` prints.
func TestTrustedProxyOverlapAllowedIsWarned(t *testing.T) {
	cfg := "[upstream]\nurl = \"https://radio.example:1030\"\n[vault]\nfile = \"keys.toml\"\n" +
		"[identity]\ntrusted_proxies = [\"10.0.0.0/8\"]\nallow_overlap = true\n[identity.cidr]\n\"10.1.0.0/16\" = \"svc\"\n"
	code, _, errOut := run(t, "check", "--config", writeConfig(t, cfg))
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errOut)
	}
	if !strings.Contains(errOut, "warning: identity.allow_overlap is set") || !strings.Contains(errOut, "X-Forwarded-For") {
		t.Fatalf("no overlap warning:\n%s", errOut)
	}
}
