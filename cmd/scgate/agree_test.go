package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// agreeBase is a valid config; each case of TestCheckAndRunAgree appends to
// it (a TOML table may be given once, so the cases add whole sections the
// base lacks, or replace a line of it).
const agreeBase = `[server]
listen = "127.0.0.1:0"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = "https://radio.example:1030"
[vault]
file = "keys.toml"
[identity]
static = "svc"
`

// TestCheckAndRunAgree: for each broken config, `scgate check` fails with
// exactly the message `scgate run` fails with, and the message names the
// config file and line (or the vault file and line) and the setting. The
// two build the gateway with the same gateway.Build, so a config check
// accepts cannot fail run for anything a dry run can see.
func TestCheckAndRunAgree(t *testing.T) {
	cases := []struct {
		name    string
		replace [2]string // a line of agreeBase and what replaces it
		extra   string
		vault   string // instead of goodVault
		files   map[string]string
		chmod   map[string]os.FileMode
		want    []string // in the message
	}{
		{name: "vault writable by others", chmod: map[string]os.FileMode{"keys.toml": 0o666},
			want: []string{"vault.file", "is writable by", "chmod go-w"}},
		{name: "missing upstream CA", replace: [2]string{`url = "https://radio.example:1030"`, "url = \"https://radio.example:1030\"\nca_file = \"/nonexistent/ca.pem\""},
			want: []string{"config.toml:8: upstream.ca_file", "/nonexistent/ca.pem", "no such file"}},
		{name: "upstream CA without a certificate", replace: [2]string{`url = "https://radio.example:1030"`, "url = \"https://radio.example:1030\"\nca_file = \"ca.pem\""},
			files: map[string]string{"ca.pem": "not a certificate\n"}, want: []string{"config.toml:8: upstream.ca_file", "no PEM certificate"}},
		{name: "missing certificate", replace: [2]string{`shutdown_delay = "0s"`, "shutdown_delay = \"0s\"\ntls = \"files\"\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\""},
			want: []string{"config.toml:5: server.cert_file", "cert.pem"}},
		{name: "missing client CA", replace: [2]string{`shutdown_delay = "0s"`, "shutdown_delay = \"0s\"\ntls = \"self-signed\"\nclient_ca_file = \"clients.pem\""},
			want: []string{"config.toml:5: server.client_ca_file", "clients.pem"}},
		{name: "missing JWKS file", extra: "[identity.jwt]\nissuer = \"https://k8s\"\naudiences = [\"scgate\"]\njwks_file = \"jwks.json\"\n",
			want: []string{"config.toml:", "identity.jwt", "jwks.json"}},
		{name: "missing age identity", replace: [2]string{`file = "keys.toml"`, "file = \"keys.toml\"\nage_identity_file = \"age.key\""},
			want: []string{"config.toml:10: vault.age_identity_file", "age.key", "no such file"}},
		{name: "missing secret_file", vault: "[callers]\n\"svc\" = \"k\"\n[[keys.k]]\nsecret_file = \"nope.secret\"\n",
			want: []string{"keys.toml:4", "nope.secret"}},
		{name: "missing Redis password", extra: "[limits]\nbackend = \"redis\"\n[limits.redis]\naddress = \"127.0.0.1:1\"\nfallback_share = 0.5\npassword_file = \"redis.pw\"\n",
			want: []string{"config.toml:17: limits.redis.password_file", "redis.pw"}},
		{name: "listen without host", replace: [2]string{`listen = "127.0.0.1:0"`, `listen = "8090"`},
			want: []string{"config.toml:2: server.listen", `"8090" is not host:port`}},
		{name: "admin listen without port", replace: [2]string{"[admin]\nlisten = \"127.0.0.1:0\"", "[admin]\nlisten = \"localhost\""},
			want: []string{"config.toml:5: admin.listen", "is not host:port"}},
		{name: "bad upstream", replace: [2]string{`url = "https://radio.example:1030"`, `url = "ftp://radio.example"`},
			want: []string{"config.toml:7: upstream.url", "not an http(s) URL"}},
		{name: "resolver listed twice", replace: [2]string{`static = "svc"`, "static = \"svc\"\norder = [\"static\", \"static\"]"},
			want: []string{"config.toml:12: identity.order", "listed twice"}},
		{name: "listeners sharing an address", replace: [2]string{"127.0.0.1:0\"\nshutdown_delay = \"0s\"\n[admin]\nlisten = \"127.0.0.1:0\"",
			"127.0.0.1:9\"\nshutdown_delay = \"0s\"\n[admin]\nlisten = \"127.0.0.1:9\""},
			want: []string{"config.toml:5: admin.listen", "must not share"}},
		{name: "unknown setting", replace: [2]string{`shutdown_delay = "0s"`, "shutdown_delay = \"0s\"\nlistn = \"x\""},
			want: []string{"config.toml:4", `unknown setting "server.listn"; did you mean "server.listen"?`}},
		{name: "a string for a number", extra: "[limits]\nrate = \"fast\"\n",
			want: []string{"config.toml:13: limits.rate", "write a number"}},
	}
	goTypeName := regexp.MustCompile(`\b(main|config)\.[A-Z]\w*`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := agreeBase
			if c.replace[0] != "" {
				if !strings.Contains(cfg, c.replace[0]) {
					t.Fatalf("the base lacks %q", c.replace[0])
				}
				cfg = strings.Replace(cfg, c.replace[0], c.replace[1], 1)
			}
			p := writeConfig(t, cfg+c.extra)
			dir := filepath.Dir(p)
			if c.vault != "" {
				writeFile(t, filepath.Join(dir, "keys.toml"), c.vault)
			}
			for name, data := range c.files {
				writeFile(t, filepath.Join(dir, name), data)
			}
			for name, mode := range c.chmod {
				if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
					t.Fatal(err)
				}
			}
			checkCode, _, checkErr := run(t, "check", "--config", p)
			// A cancelled context: were the config to build, run would stop
			// at once instead of serving.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var out, runErr bytes.Buffer
			runCode := runMain(ctx, []string{"run", "--config", p}, &out, &runErr)
			if checkCode != exitInvalid || runCode != exitInvalid {
				t.Fatalf("check exit %d, run exit %d, want %d for both\ncheck: %s\nrun: %s", checkCode, runCode, exitInvalid, checkErr, runErr.String())
			}
			checkMsg, runMsg := failure(checkErr), failure(runErr.String())
			if checkMsg != runMsg {
				t.Fatalf("check and run disagree:\ncheck: %s\nrun:   %s", checkMsg, runMsg)
			}
			for _, w := range c.want {
				if !strings.Contains(checkMsg, w) {
					t.Errorf("message lacks %q:\n%s", w, checkMsg)
				}
			}
			if m := goTypeName.FindString(checkMsg); m != "" {
				t.Errorf("message names the Go type %s:\n%s", m, checkMsg)
			}
		})
	}
}

// failure is the error scgate reported last: printed after any log lines
// ("scgate: ..."), or, once run has its logger, the error of its last
// JSON log line at level error.
func failure(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if last := lines[len(lines)-1]; strings.HasPrefix(last, "{") {
		var entry struct{ Level, Error string }
		if json.Unmarshal([]byte(last), &entry) == nil && entry.Level == "error" && entry.Error != "" {
			return "scgate: " + strings.TrimSpace(entry.Error)
		}
	}
	i := strings.LastIndex(stderr, "scgate: ")
	if i < 0 {
		return ""
	}
	return strings.TrimSpace(stderr[i:])
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckAndRunAgreeOnAGoodConfig is the corpus' control: the base config
// passes check and run builds, serves and stops.
func TestCheckAndRunAgreeOnAGoodConfig(t *testing.T) {
	p := writeConfig(t, agreeBase)
	if code, out, errOut := run(t, "check", "--config", p); code != exitOK {
		t.Fatalf("check: %d %s %s", code, out, errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	if code := runMain(ctx, []string{"run", "--config", p}, &out, &errOut); code != exitOK {
		t.Fatalf("run: %d %s", code, errOut.String())
	}
}
