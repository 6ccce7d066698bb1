package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
)

func TestVaultEncryptDecryptRoundTrip(t *testing.T) {
	idPath, id := vaulttest.AgeIdentity(t)
	otherPath, _ := vaulttest.AgeIdentity(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "keys.toml")
	enc := filepath.Join(dir, "keys.toml.age")
	back := filepath.Join(dir, "keys.decrypted.toml")
	vaulttest.WriteFile(t, plain, rotationVault)

	for _, armor := range []bool{false, true} {
		args := []string{"vault", "encrypt", "--recipient", id.Recipient().String(), "--in", plain, "--out", enc}
		if armor {
			args = append(args, "--armor")
		}
		code, out, errOut := run(t, args...)
		if code != 0 || !strings.Contains(out, "encrypted "+plain+" (2 callers, 2 keys) to 1 recipient(s)") {
			t.Fatalf("encrypt: exit %d: %s %s", code, out, errOut)
		}
		data, _ := os.ReadFile(enc)
		noSecrets(t, string(data), out, errOut)
		if armor != bytes.HasPrefix(data, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) {
			t.Errorf("armor=%v: the file starts %q", armor, data[:16])
		}

		code, out, errOut = run(t, "vault", "decrypt", "--identity", idPath, "--in", enc, "--out", back)
		noSecrets(t, out, errOut)
		if code != 0 {
			t.Fatalf("decrypt: exit %d: %s", code, errOut)
		}
		got, _ := os.ReadFile(back)
		if string(got) != rotationVault {
			t.Fatal("the decrypted vault differs from the original")
		}
		if fi, _ := os.Stat(back); fi.Mode().Perm() != 0o600 {
			t.Errorf("the decrypted vault has mode %v, want 0600", fi.Mode().Perm())
		}
	}

	// The wrong identity: a clear error.
	code, _, errOut := run(t, "vault", "decrypt", "--identity", otherPath, "--in", enc, "--out", back)
	if code != exitInvalid || !strings.Contains(errOut, "encrypted to other recipients") {
		t.Errorf("wrong identity: exit %d: %s", code, errOut)
	}
	// Usage errors: no --out (never to the terminal), no recipient, bad recipient.
	for _, args := range [][]string{
		{"vault", "decrypt", "--identity", idPath, "--in", enc},
		{"vault", "encrypt", "--in", plain, "--out", enc},
		{"vault", "encrypt", "--recipient", "age1notakey", "--in", plain, "--out", enc},
		{"vault", "rekey"},
		{"vault"},
	} {
		if code, _, errOut := run(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitUsage, errOut)
		}
	}
	// An invalid vault is refused, and so is encrypting twice.
	vaulttest.WriteFile(t, plain, "[callers]\nsvc = \"missing\"\n")
	if code, _, errOut := run(t, "vault", "encrypt", "--recipient", id.Recipient().String(), "--in", plain, "--out", enc); code != exitInvalid ||
		!strings.Contains(errOut, "refusing to encrypt an invalid vault") || !strings.Contains(errOut, "keys.toml:2:") {
		t.Errorf("invalid vault: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(t, "vault", "encrypt", "--recipient", id.Recipient().String(), "--in", enc, "--out", enc+"2"); code != exitInvalid ||
		!strings.Contains(errOut, "already age-encrypted") {
		t.Errorf("encrypting twice: exit %d: %s", code, errOut)
	}
}

// encryptedSetup writes a config whose vault is encrypted to to, and
// returns the config's path and the vault's.
func encryptedSetup(t *testing.T, upstream, identityFile string, vault string, to *age.X25519Identity) (string, string) {
	t.Helper()
	p := writeSetup(t, upstream, fmt.Sprintf("age_identity_file = %q\n", identityFile), "unused = true\n")
	dir := filepath.Dir(p)
	vaultPath := filepath.Join(dir, "keys.toml.age")
	vaulttest.WriteEncrypted(t, vaultPath, vault, to.Recipient(), true)
	cfg, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(cfg, []byte(`file = "keys.toml"`), []byte(`file = "keys.toml.age"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, vaultPath
}

func TestEncryptedVaultCheckAndStart(t *testing.T) {
	idPath, id := vaulttest.AgeIdentity(t)
	otherPath, _ := vaulttest.AgeIdentity(t)
	p, _ := encryptedSetup(t, "https://radio.example:1030", idPath, rotationVault, id)
	code, out, errOut := run(t, "check", "--config", p)
	if code != 0 || !strings.Contains(out, "KeyGood1") {
		t.Fatalf("check: exit %d: %s %s", code, out, errOut)
	}
	noSecrets(t, out, errOut)

	// The wrong identity: check fails and the gateway refuses to start.
	p, _ = encryptedSetup(t, "https://radio.example:1030", otherPath, rotationVault, id)
	code, _, errOut = run(t, "check", "--config", p)
	if code != exitInvalid || !strings.Contains(errOut, "encrypted to other recipients") {
		t.Fatalf("check with the wrong identity: exit %d: %s", code, errOut)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := gateway.Build(cfg, gateway.Options{Logger: zap.NewNop()}); err == nil || !strings.Contains(err.Error(), "encrypted to other recipients") {
		if g != nil {
			g.Close()
		}
		t.Fatalf("the gateway started with the wrong identity: %v", err)
	}
	// No identity configured at all.
	p = writeSetup(t, "https://radio.example:1030", "", "")
	vaulttest.WriteEncrypted(t, filepath.Join(filepath.Dir(p), "keys.toml"), goodVault, id.Recipient(), false)
	if code, _, errOut := run(t, "check", "--config", p); code != exitInvalid || !strings.Contains(errOut, "set vault.age_identity_file") {
		t.Fatalf("no identity: exit %d: %s", code, errOut)
	}
}

// TestEncryptedVaultRotatesThroughTheGateway: ops re-encrypt the vault with a
// new key in place (scgate vault encrypt --out on the watched file), and the
// running gateway uses it; a vault encrypted to someone else is refused and
// the last good one keeps serving.
func TestEncryptedVaultRotatesThroughTheGateway(t *testing.T) {
	idPath, id := vaulttest.AgeIdentity(t)
	_, other := vaulttest.AgeIdentity(t)
	si, err := standin.New(standin.Options{Keys: []string{testKey, keyGood}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()
	p, vaultPath := encryptedSetup(t, up.URL, idPath, goodVault, id)
	cfg, _ := os.ReadFile(p)
	serverCfg := "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay = \"0s\"\n[admin]\nlisten = \"127.0.0.1:0\"\n"
	if err := os.WriteFile(p, append([]byte(serverCfg), cfg...), 0o600); err != nil {
		t.Fatal(err)
	}
	g, _ := startGatewayFrom(t, p)
	base := "http://" + g.Addr().String()
	lastKey := func() string {
		if code, body := get(t, http.DefaultClient, base+"/api/v2/playlists/"); code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		reqs := si.Requests()
		return strings.Join(reqs[len(reqs)-1].KeyPrefixes, ",")
	}
	if got := lastKey(); got != keyvault.Prefix(testKey) {
		t.Fatalf("served with %s", got)
	}

	plain := filepath.Join(t.TempDir(), "new.toml")
	vaulttest.WriteFile(t, plain, strings.Replace(goodVault, testKey, keyGood, 1))
	if code, _, errOut := run(t, "vault", "encrypt", "--recipient", id.Recipient().String(), "--armor", "--in", plain, "--out", vaultPath); code != 0 {
		t.Fatal(errOut)
	}
	waitUntil(t, "the re-encrypted vault to be served", func() bool { return lastKey() == keyvault.Prefix(keyGood) })

	vaulttest.WriteEncrypted(t, vaultPath, goodVault, other.Recipient(), true)
	waitUntil(t, "the refused reload to be counted", func() bool {
		_, body := get(t, http.DefaultClient, "http://"+g.AdminAddr().String()+"/metrics")
		return strings.Contains(body, `scgate_vault_reloads_total{result="error"} 1`)
	})
	if got := lastKey(); got != keyvault.Prefix(keyGood) {
		t.Fatalf("after a vault encrypted to someone else: served with %s", got)
	}
	if !slices.Contains(g.Vault().Callers(), "svc") {
		t.Fatal("the vault in service changed")
	}
}
