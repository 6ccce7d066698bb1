package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/proxy/policy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

// FuzzConfig: config.Parse never panics on any file, decides the same way
// twice, names the file in every problem it reports (one per line, each
// FILE:LINE: or FILE: ...), and a config it accepts has what the gateway
// needs (an upstream, a vault, an identity order) and builds its limits and
// route policy without error.
func FuzzConfig(f *testing.F) {
	f.Add([]byte("[upstream]\nurl = \"https://radio.example:1030\"\n[vault]\nfile = \"keys.toml\"\n[identity]\nstatic = \"svc\"\n"))
	f.Add([]byte("[server]\nlisten = \"0.0.0.0:8443\"\ntls = \"files\"\ncert_file = \"a\"\nkey_file = \"b\"\nclient_ca_file = \"c\"\n" +
		"[upstream]\nurl = \"https://r:1\"\n[vault]\nfile = \"k\"\n[identity]\norder = [\"mtls\", \"cidr\"]\n[identity.cidr]\n\"10.0.0.0/8\" = \"x\"\n"))
	f.Add([]byte("[upstream]\nurl = \"http://127.0.0.1:1\"\n[vault]\nfile = \"k\"\n[identity]\nstatic = \"s\"\n[limits]\nrate = 5.0\nmode = \"wait\"\n" +
		"[limits.callers.\"s\"]\nburst = 3\n[limits.keys.\"k\"]\nrate = 1.0\n[policy.sets]\nro = [\"GET /api/v2/**\"]\n[policy.callers]\n\"s\" = \"ro\"\n"))
	f.Add([]byte("[server]\ntls = \"acme\"\n[server.acme]\ndomains = [\"*.x\"]\n[identity.jwt]\nissuer = \"https://k\"\naudiences = []\n"))
	f.Add([]byte("[identity]\ntrusted_proxies = [\"10.1.0.0/8\"]\n[identity.header]\nname = \"X\"\n[log]\nlevel = \"loud\"\n[server]\nread_timeout = \"-1s\"\n"))
	f.Add([]byte("[server]\ntls = \"self-signed\"\nmax_connection_age = \"1m\"\n[upstream]\nurl = \"https://r.example\"\n[vault]\nfile = \"k\"\n" +
		"[identity]\ntrusted_proxies = [\"10.0.0.0/8\"]\nallow_overlap = true\n[identity.cidr]\n\"10.1.0.0/16\" = \"s\"\n" +
		"[identity.mtls]\ntrust_domains = [\"prod.example\"]\n[identity.mtls.trust_bundles]\n\"prod.example\" = \"p.pem\"\n" +
		"[identity.jwt]\nissuer = \"https://k\"\naudiences = [\"a\"]\ndiscovery_url = \"https://k/d\"\nleeway = \"5m\"\nmax_stale = \"2h\"\nfetch_wait = \"1s\"\nallowed_jwks_hosts = [\"10.0.0.1:6443\"]\n"))
	f.Add([]byte("[server\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.toml", data)
		cfg2, err2 := config.Parse("fuzz.toml", data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("config.Parse is not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			if cfg != nil {
				t.Fatal("a config came with an error")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.toml") {
					t.Fatalf("a problem that does not name the file: %q", line)
				}
			}
			return
		}
		if len(config.RestartNeeded(cfg, cfg2)) > 0 || !reflect.DeepEqual(cfg.Policy, cfg2.Policy) ||
			!reflect.DeepEqual(cfg.Limits.RateLimits(), cfg2.Limits.RateLimits()) {
			t.Fatal("the same file gave two configs")
		}
		if cfg.Upstream.URL == "" || cfg.Vault.File == "" || len(cfg.Identity.Order) == 0 {
			t.Fatalf("accepted without upstream, vault or identity: %+v", cfg)
		}
		if _, err := policy.New(cfg.Policy.Options()); err != nil {
			t.Fatalf("accepted, but the route policy does not build: %v", err)
		}
		if _, err := ratelimit.New(ratelimit.Options{Limits: cfg.Limits.RateLimits()}); err != nil {
			t.Fatalf("accepted, but the limits do not build: %v", err)
		}
	})
}
