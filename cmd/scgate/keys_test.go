package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
)

// Keys of the rotation CLI tests: fake, in the broadcaster's format.
const (
	keyGood    = "KeyGood1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	keyRevoked = "KeyRevk1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	keyStaged  = "KeyStag1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	keyOld     = "KeyOldd1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	keySpare   = "KeySpar1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
)

// writeSetup writes config (with upstream url and extra settings) and vault
// into a new folder and returns the config's path.
func writeSetup(t *testing.T, upstream, extra, vault string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keys.toml"), []byte(vault), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("[upstream]\nurl = %q\n[vault]\nfile = \"keys.toml\"\n%s\n[identity]\nstatic = \"svc\"\n", upstream, extra)
	p := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hasRow reports whether out has a line whose fields are those of want,
// whatever the column padding.
func hasRow(out, want string) bool {
	w := strings.Join(strings.Fields(want), " ")
	for _, line := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(line), " ") == w {
			return true
		}
	}
	return false
}

func noSecrets(t *testing.T, outs ...string) {
	t.Helper()
	for _, out := range outs {
		if strings.Contains(out, "FAKEfake") {
			t.Fatalf("output holds a secret:\n%s", out)
		}
	}
}

// A vault with every state: good is active (latest not_before), revoked is a
// standby, staged is pending, old has expired; "spare" has no caller.
var rotationVault = `[callers]
"svc" = "k"
"other" = "k"

[[keys.k]]
secret = "` + keyRevoked + `"

[[keys.k]]
secret = "` + keyGood + `"
not_before = 2020-01-01T00:00:00Z

[[keys.k]]
secret = "` + keyStaged + `"
not_before = 2099-01-01T00:00:00Z

[[keys.k]]
secret = "` + keyOld + `"
expires = 2020-01-01T00:00:00Z

[[keys.spare]]
secret = "` + keySpare + `"
`

func TestKeysListsEveryVersion(t *testing.T) {
	p := writeSetup(t, "https://radio.example:1030", "", rotationVault)
	code, out, errOut := run(t, "keys", "--config", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	noSecrets(t, out, errOut)
	for _, want := range []string{
		"KEY PREFIX NOT_BEFORE EXPIRES STATE CALLERS",
		"k KeyRevk1 - never standby other,svc",
		"k KeyGood1 2020-01-01T00:00:00Z never active other,svc",
		"k KeyStag1 2099-01-01T00:00:00Z never pending other,svc",
		"k KeyOldd1 - 2020-01-01T00:00:00Z expired other,svc",
		"spare KeySpar1 - never active -",
	} {
		if !hasRow(out, want) {
			t.Errorf("keys output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = run(t, "keys", "--config", p, "--json")
	if code != 0 {
		t.Fatal(code)
	}
	noSecrets(t, out)
	var rows []struct {
		Key, Prefix, State string
		Callers            []string
		NotBefore          *time.Time `json:"not_before"`
		Expires            *time.Time
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rows) != 5 || rows[1].State != "active" || rows[1].NotBefore == nil || rows[0].NotBefore != nil ||
		rows[3].Expires == nil || len(rows[0].Callers) != 2 || rows[4].Key != "spare" || rows[4].Callers == nil {
		t.Errorf("json rows = %+v", rows)
	}
}

func TestKeysVerify(t *testing.T) {
	si, err := standin.New(standin.Options{Keys: []string{keyGood, keyStaged, keySpare}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()

	// The active version is accepted, the revoked standby is not: exit 0.
	p := writeSetup(t, up.URL, "", rotationVault)
	code, out, errOut := run(t, "keys", "verify", "--config", p)
	noSecrets(t, out, errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"k KeyRevk1 - never standby other,svc rejected",
		"k KeyGood1 2020-01-01T00:00:00Z never active other,svc accepted",
		"k KeyStag1 2099-01-01T00:00:00Z never pending other,svc accepted", // a staged key tested before it goes live
		"k KeyOldd1 - 2020-01-01T00:00:00Z expired other,svc rejected",
		"spare KeySpar1 - never active - accepted",
	} {
		if !hasRow(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	// A made-up key first, then one request per version, each with one key.
	reqs := si.Requests()
	if len(reqs) != 6 || reqs[0].Accepted || len(reqs[0].KeyPrefixes) != 1 || reqs[0].Path != "/api/v2/playlists/" || reqs[0].RawQuery != "server=1" {
		t.Fatalf("the stand-in saw %d requests: %+v", len(reqs), reqs)
	}

	// The broadcaster revokes the active version: exit 1, naming it.
	si.SetKeys([]string{keyRevoked, keySpare})
	code, out, errOut = run(t, "keys", "verify", "--config", p, "--json")
	noSecrets(t, out, errOut)
	if code != exitInvalid || !strings.Contains(errOut, `the broadcaster rejects the active version of key "k" (prefix KeyGood1)`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []keyRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil || rows[0].Upstream != "accepted" || rows[1].Upstream != "rejected" {
		t.Fatalf("json: %v %+v", err, rows)
	}
}

func TestKeysVerifyRefusesAPathWithoutKey(t *testing.T) {
	si, err := standin.New(standin.Options{Keys: []string{keyGood}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()
	p := writeSetup(t, up.URL, "", rotationVault)
	// History needs no key: every version would look accepted.
	code, _, errOut := run(t, "keys", "verify", "--config", p, "--path", "/api/v2/history/?limit=1")
	if code != exitInvalid || !strings.Contains(errOut, "cannot tell keys apart") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(t, "keys", "verify", "--config", p, "--path", "http://elsewhere/x"); code != exitUsage {
		t.Fatalf("absolute URL as --path: exit %d: %s", code, errOut)
	}
	// Nothing listening: a clear error, exit 1.
	up.Close()
	if code, _, errOut := run(t, "keys", "verify", "--config", p); code != exitInvalid || !strings.Contains(errOut, "cannot reach the broadcaster") {
		t.Fatalf("upstream down: exit %d: %s", code, errOut)
	}
}

func TestCheckFailOnExpiry(t *testing.T) {
	in10days := time.Now().Add(10 * 24 * time.Hour).UTC().Format(time.RFC3339)
	in20days := time.Now().Add(20 * 24 * time.Hour).UTC().Format(time.RFC3339)
	lapsing := "[callers]\n\"svc\" = \"k\"\n[[keys.k]]\nsecret = \"" + keyGood + "\"\nexpires = " + in10days + "\n" +
		"[[keys.unused]]\nsecret = \"" + keyOld + "\"\nexpires = " + in10days + "\n"
	p := writeSetup(t, "https://radio.example:1030", "", lapsing)

	code, out, errOut := run(t, "check", "--config", p, "--fail-on-expiry", "336h")
	noSecrets(t, out, errOut)
	if code != exitInvalid || !strings.Contains(errOut, `key "k" (callers: svc) has no valid version from `) ||
		!strings.Contains(errOut, "(in 10d)") || strings.Contains(errOut, `key "unused" (callers`) {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if !hasRow(out, "svc k KeyGood1 active "+in10days) {
		t.Errorf("the table is still printed:\n%s", out)
	}
	if code, _, errOut := run(t, "check", "--config", p, "--fail-on-expiry", "168h"); code != 0 {
		t.Fatalf("7 days: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(t, "check", "--config", p); code != 0 {
		t.Fatalf("without the flag: exit %d: %s", code, errOut)
	}

	// A successor that takes over before the expiry: nothing lapses.
	covered := lapsing + "[[keys.k]]\nsecret = \"" + keyStaged + "\"\nnot_before = " + in10days + "\nexpires = " + in20days + "\n"
	p = writeSetup(t, "https://radio.example:1030", "", covered)
	if code, _, errOut := run(t, "check", "--config", p, "--fail-on-expiry", "336h"); code != 0 {
		t.Fatalf("covered by a successor: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(t, "check", "--config", p, "--fail-on-expiry", "720h"); code != exitInvalid || !strings.Contains(errOut, "(in 20d)") {
		t.Fatalf("30 days: exit %d: %s", code, errOut)
	}
	if code, _, _ := run(t, "check", "--config", p, "--fail-on-expiry", "soon"); code != exitUsage {
		t.Fatalf("a bad duration: exit %d", code)
	}
}

func TestRotationConfigErrors(t *testing.T) {
	cases := []struct{ extra, want string }{
		{"[rotation]\nrejection_cooldown = \"0s\"\n", "config.toml:6: rotation.rejection_cooldown: must be longer than 0"},
		{"[rotation]\nreplay_body_bytes = -1\n", "config.toml:6: rotation.replay_body_bytes: must be between 0"},
		{"[rotation]\nexpiry_warn_before = \"0s\"\n", "config.toml:6: rotation.expiry_warn_before"},
		{"[rotation]\nrejection_canary = \"POST /api/v2/playlists/\"\n", "config.toml:6: rotation.rejection_canary: canary \"POST /api/v2/playlists/\": the method must be GET or HEAD"},
		{"[rotation]\nrejection_canary = \"GET https://elsewhere.example/api/v2/\"\n", "config.toml:6: rotation.rejection_canary: canary"},
		{"[rotation]\nrejection_body_match = \" \"\n", "config.toml:6: rotation.rejection_body_match: the body match must not start or end with spaces"},
		{"[rotation]\nrejection_cooldwn = \"1m\"\n", `config.toml:6: unknown setting "rotation.rejection_cooldwn"`},
		{"age_identity_file = \"missing.txt\"\n", "config.toml:5: vault.age_identity_file: cannot read"},
	}
	for _, c := range cases {
		p := writeSetup(t, "https://radio.example:1030", c.extra, goodVault)
		code, _, errOut := run(t, "check", "--config", p)
		if code != exitInvalid || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, %s; want %q", c.extra, code, errOut, c.want)
		}
	}
	cfg, err := config.Load(writeSetup(t, "https://radio.example:1030", "[rotation]\nreplay_body_bytes = 0\n", goodVault))
	if err != nil {
		t.Fatal(err)
	}
	if rc := cfg.Rotation.RejectionCheck(); rc.Canary != (proxy.Canary{}) || rc.BodyMatch != "" {
		t.Errorf("the default rejection check is %+v, want the proxy's defaults", rc)
	}
	cfg, err = config.Load(writeSetup(t, "https://radio.example:1030",
		"[rotation]\nrejection_canary = \"HEAD /api/v2/playlists/1/\"\nrejection_body_match = \"Invalid API key.\"\n", goodVault))
	if err != nil {
		t.Fatal(err)
	}
	if rc := cfg.Rotation.RejectionCheck(); rc.Canary != (proxy.Canary{Method: "HEAD", Path: "/api/v2/playlists/1/"}) || rc.BodyMatch != "Invalid API key." {
		t.Errorf("rejection check %+v", rc)
	}
	cfg, err = config.Load(writeSetup(t, "https://radio.example:1030", "[rotation]\nreplay_body_bytes = 0\n", goodVault))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rotation.RejectionCooldown.Duration != keyvault.DefaultCoolDown || cfg.Rotation.ReplayBody() != -1 ||
		cfg.Rotation.ExpiryWarnBefore.Duration != 14*24*time.Hour {
		t.Errorf("defaults: %+v, replay %d", cfg.Rotation, cfg.Rotation.ReplayBody())
	}
}
