package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
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
	if !strings.Contains(out, "9 passed, 0 failed") {
		t.Fatalf("selftest output:\n%s", out)
	}
	for _, k := range []string{demoKeyAdmin, demoKeyRotated, demoKeyExpired} {
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
		{"acme not yet", base + "[server]\ntls = \"acme\"\n", []string{"config.toml:8:", "not available"}},
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
	cfg, err := loadConfig(p)
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
	cfg, err := loadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.ShutdownDelay.Duration != 0 || cfg.Server.ShutdownTimeout.Duration != 30*time.Second {
		t.Fatalf("shutdown_delay %v, shutdown_timeout %v", cfg.Server.ShutdownDelay, cfg.Server.ShutdownTimeout)
	}
}
