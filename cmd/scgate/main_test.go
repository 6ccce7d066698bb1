package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/proxy/tlsconf/acmetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, acmetest.IgnoreLeaks()...)
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runMain(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDemoSelftest(t *testing.T) {
	code, out, errOut := run(t, "demo", "--selftest")
	if code != 0 {
		t.Fatalf("selftest exit %d\n%s\n%s", code, out, errOut)
	}
	if len(steps) < 12 || !strings.Contains(out, fmt.Sprintf("%d passed, 0 failed", len(steps))) || !strings.Contains(out, "refused station 4 every way") ||
		!strings.Contains(out, "the second answer says hit") {
		t.Fatalf("selftest output:\n%s", out)
	}
	for _, k := range []string{demoKeyAdmin, demoKeyRotated, demoKeyExpired, demoKeySouth} {
		if strings.Contains(out+errOut, k) {
			t.Fatal("a demo key appeared in the demo's output")
		}
	}
}

func TestCheckExampleConfig(t *testing.T) {
	code, out, errOut := run(t, "check", "--config", "../../config.example.toml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"playlist-sync", "playlist-admin", "Exmpl0d", "spiffe://prod.example/ns/radio/sa/stats"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAKEfake") {
		t.Fatal("check printed a secret")
	}
}

func TestUsageAndVersion(t *testing.T) {
	if code, _, _ := run(t); code != exitUsage {
		t.Errorf("no command: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := run(t, "frobnicate"); code != exitUsage {
		t.Errorf("unknown command: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := run(t, "check"); code != exitUsage {
		t.Errorf("check without --config: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := run(t, "check", "--nope"); code != exitUsage {
		t.Errorf("unknown flag: exit %d, want %d", code, exitUsage)
	}
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "scgate ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errOut := run(t, "check", "--config", filepath.Join(t.TempDir(), "missing.toml")); code != exitInvalid || !strings.Contains(errOut, "missing.toml") {
		t.Errorf("missing config: exit %d, %q", code, errOut)
	}
}

const goodVault = `[callers]
"svc" = "k"
[[keys.k]]
secret = "TestKey1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
`

// writeConfig writes a config and a vault beside it and returns the config path.
func writeConfig(t *testing.T, cfg string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keys.toml"), []byte(goodVault), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigErrorsNameFileLineAndFix(t *testing.T) {
	base := "[upstream]\nurl = \"https://radio.example:1030\"\n[vault]\nfile = \"keys.toml\"\n[identity]\nstatic = \"svc\"\n"
	cases := []struct {
		name, cfg string
		want      []string
	}{
		{"unknown setting", base + "[server]\nlisten = \"127.0.0.1:0\"\nlisen = \"x\"\n", []string{"config.toml:9:", `unknown setting "server.lisen"`}},
		{"bad duration", base + "[server]\nread_timeout = \"soon\"\n", []string{"config.toml:8:", "not a duration"}},
		{"bad tls mode", base + "[server]\ntls = \"maybe\"\n", []string{"config.toml:8:", "not a TLS mode"}},
		{"files without cert", base + "[server]\ntls = \"files\"\n", []string{"config.toml:8:", "cert_file"}},
		{"acme without domains or storage", base + "[server]\ntls = \"acme\"\n", []string{"config.toml:7: server.acme.domains", "config.toml:7: server.acme.storage"}},
		{"acme settings without acme", base + "[server.acme]\ndomains = [\"a.example\"]\n", []string{"config.toml:7:", `used only with tls = "acme"`}},
		{"acme wildcard and bad CA", base + "[server]\ntls = \"acme\"\n[server.acme]\ndomains = [\"*.example.com\"]\nca = \"http://acme.example/dir\"\nstorage = \"acme\"\n", []string{"config.toml:10:", "no wildcards", "config.toml:11:", "not an https ACME directory URL"}},
		{"acme no challenge", base + "[server]\ntls = \"acme\"\n[server.acme]\ndomains = [\"a.example\"]\nstorage = \"acme\"\ntls_alpn_challenge = false\n", []string{"config.toml:12:", "both challenges are off"}},
		{"skip verify with ca_file", strings.Replace(base, "[vault]", "ca_file = \"ca.pem\"\ndangerously_skip_tls_verify = true\n[vault]", 1), []string{"config.toml:4:", "ca_file is unused"}},
		{"jwt without issuer and two sources", base + "[identity.jwt]\naudiences = [\"scgate\"]\njwks_file = \"a\"\njwks_url = \"https://x/keys\"\n", []string{"issuer is required", "exactly one of jwks_file"}},
		{"jwt not in order", strings.Replace(base, "static = \"svc\"", "order = [\"static\"]\nstatic = \"svc\"", 1) + "[identity.jwt]\nissuer = \"https://k\"\naudiences = [\"scgate\"]\njwks_file = \"a\"\n", []string{"config.toml:8:", `"jwt" is not in identity.order`}},
		{"header without trusted proxies", base + "[identity.header]\nname = \"X-Forwarded-Client-Cert\"\nformat = \"json\"\n", []string{"config.toml:8:", "trusted_proxies", "config.toml:9:", `"json": use xfcc or plain`}},
		{"bad trusted proxy", strings.Replace(base, "static = \"svc\"", "static = \"svc\"\ntrusted_proxies = [\"10.1.0.0/8\", \"lb\"]", 1), []string{"config.toml:7:", "did you mean 10.0.0.0/8", "not a network or address"}},
		{"plain http upstream", strings.Replace(base, "https://radio.example:1030", "http://radio.example:1030", 1), []string{"config.toml:2:", "clear text"}},
		{"upstream with path", strings.Replace(base, "https://radio.example:1030", "https://radio.example:1030/api/v2", 1), []string{"config.toml:2:", "scheme://host:port"}},
		{"bad cidr", base + "[identity.cidr]\n\"10.0.0/8\" = \"x\"\n", []string{"config.toml:8:", "not a network"}},
		{"mtls without CA", strings.Replace(base, "static = \"svc\"", "order = [\"mtls\"]", 1), []string{"config.toml:6:", "client_ca_file"}},
		{"syntax", base + "[server\n", []string{"config.toml:7:"}},
		{"two problems at once", base + "[log]\nlevel = \"loud\"\nformat = \"xml\"\n", []string{"config.toml:8:", "config.toml:9:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := run(t, "check", "--config", writeConfig(t, c.cfg))
			if code != exitInvalid {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitInvalid, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

func TestRelativePathsResolveAgainstTheConfigFolder(t *testing.T) {
	p := writeConfig(t, "[upstream]\nurl = \"https://radio.example:1030\"\n[vault]\nfile = \"keys.toml\"\n[identity]\nstatic = \"svc\"\n")
	t.Chdir(t.TempDir()) // anywhere but the config's folder
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vault.File != filepath.Join(filepath.Dir(p), "keys.toml") {
		t.Fatalf("vault path %q", cfg.Vault.File)
	}
	if code, out, errOut := run(t, "check", "--config", p); code != 0 {
		t.Fatalf("check from another folder: %d %s %s", code, out, errOut)
	}
}

func TestExplicitZeroDurationIsKept(t *testing.T) {
	p := writeConfig(t, "[server]\nshutdown_delay = \"0s\"\n[upstream]\nurl = \"https://radio.example:1030\"\n[vault]\nfile = \"keys.toml\"\n[identity]\nstatic = \"svc\"\n")
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.ShutdownDelay.Duration != 0 || cfg.Server.ShutdownTimeout.Duration != 30*time.Second {
		t.Fatalf("shutdown_delay %v, shutdown_timeout %v", cfg.Server.ShutdownDelay, cfg.Server.ShutdownTimeout)
	}
}
