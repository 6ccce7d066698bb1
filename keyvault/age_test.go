package keyvault_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
)

func identities(t *testing.T, path string) []age.Identity {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := keyvault.ParseIdentities(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestEncryptedVaultLoads(t *testing.T) {
	idPath, id := vaulttest.AgeIdentity(t)
	for _, armored := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "keys.toml.age")
		vaulttest.WriteEncrypted(t, path, vaultText(gen(1)), id.Recipient(), armored)
		raw, _ := os.ReadFile(path)
		if !keyvault.IsEncrypted(raw) || strings.Contains(string(raw), leakMarker) {
			t.Fatalf("armored=%v: the file is not an age file, or holds the secret in clear", armored)
		}
		if armored != strings.HasPrefix(string(raw), "-----BEGIN AGE ENCRYPTED FILE-----") {
			t.Errorf("armored=%v: file starts %q", armored, raw[:20])
		}
		v, _, err := keyvault.Load(path, keyvault.LoadOptions{Now: fixedNow, Identities: identities(t, idPath)})
		if err != nil {
			t.Fatalf("armored=%v: %v", armored, err)
		}
		if got, err := v.Select("svc", testNow); err != nil || got.Secret.Value() != gen(1) {
			t.Fatalf("armored=%v: Select = %v, %v", armored, got, err)
		}
	}
}

func TestEncryptedVaultErrors(t *testing.T) {
	_, id := vaulttest.AgeIdentity(t)
	otherPath, _ := vaulttest.AgeIdentity(t)
	path := filepath.Join(t.TempDir(), "keys.toml.age")
	vaulttest.WriteEncrypted(t, path, vaultText(gen(1)), id.Recipient(), true)

	_, _, err := keyvault.Load(path, keyvault.LoadOptions{Now: fixedNow})
	if !errors.Is(err, keyvault.ErrEncryptedNoIdentity) || !strings.Contains(err.Error(), "age_identity_file") {
		t.Errorf("no identity: %v", err)
	}
	_, _, err = keyvault.Load(path, keyvault.LoadOptions{Now: fixedNow, Identities: identities(t, otherPath)})
	var noMatch *age.NoIdentityMatchError
	if !errors.As(err, &noMatch) || !strings.Contains(err.Error(), "encrypted to other recipients") || !strings.Contains(err.Error(), path) {
		t.Errorf("wrong identity: %v", err)
	}

	// A problem inside the encrypted vault names the decrypted line.
	vaulttest.WriteEncrypted(t, path, brokenText, id.Recipient(), false)
	_, _, err = keyvault.Load(path, keyvault.LoadOptions{Now: fixedNow, Identities: []age.Identity{id}})
	var pe *keyvault.ParseError
	if !errors.As(err, &pe) || pe.Line != 5 || pe.File != path+" (decrypted)" || strings.Contains(err.Error(), leakMarker) {
		t.Errorf("broken encrypted vault: %v", err)
	}

	// A damaged file says so.
	raw, _ := os.ReadFile(path)
	vaulttest.WriteFile(t, path, string(raw[:len(raw)-10]))
	if _, _, err = keyvault.Load(path, keyvault.LoadOptions{Identities: []age.Identity{id}}); err == nil || !strings.Contains(err.Error(), "damaged or truncated") {
		t.Errorf("truncated: %v", err)
	}
}

func TestParseIdentitiesErrorsDoNotQuote(t *testing.T) {
	bad := "AGE-SECRET-KEY-1" + strings.ToUpper(leakMarker) + "\n"
	_, err := keyvault.ParseIdentities("id.txt", []byte(bad))
	if err == nil || !strings.Contains(err.Error(), "id.txt") || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(strings.ToUpper(err.Error()), strings.ToUpper(leakMarker)) {
		t.Errorf("error quotes the identity: %v", err)
	}
}

// TestEncryptedVaultRotatesLive: the watcher follows an encrypted vault
// rewritten in place, ignores a re-encryption of the same content, and keeps
// the last good vault when the file is encrypted to another recipient.
func TestEncryptedVaultRotatesLive(t *testing.T) {
	_, id := vaulttest.AgeIdentity(t)
	_, other := vaulttest.AgeIdentity(t)
	path := filepath.Join(t.TempDir(), "keys.toml.age")
	vaulttest.WriteEncrypted(t, path, vaultText(gen(1)), id.Recipient(), true)
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: -1, Identities: []age.Identity{id}})
	h.run()

	before := len(h.snapshot())
	vaulttest.WriteEncrypted(t, path, vaultText(gen(2)), id.Recipient(), true)
	h.waitSecret(gen(2), pickup)
	// OnReload runs just after the swap that waitSecret saw.
	vaulttest.Eventually(t, pickup, "the reload of gen 2 to be reported", func() bool { return len(h.snapshot()) > before })
	cur := h.w.Current()
	calls := len(h.snapshot())

	// Same content, new ciphertext: not a change.
	checks := h.logs.FilterMessage("vault checked; unchanged").Len()
	vaulttest.WriteEncrypted(t, path, vaultText(gen(2)), id.Recipient(), true)
	vaulttest.Eventually(t, pickup, "the re-encrypted file to be checked", func() bool {
		return h.logs.FilterMessage("vault checked; unchanged").Len() > checks
	})
	if h.w.Current() != cur || len(h.snapshot()) != calls {
		t.Error("re-encrypting the same vault was treated as a change")
	}

	// Encrypted to someone else: refused, the last good vault stays.
	vaulttest.WriteEncrypted(t, path, vaultText(gen(3)), other.Recipient(), true)
	err := h.waitFailure(calls)
	if !strings.Contains(err.Error(), "encrypted to other recipients") || h.secret() != gen(2) {
		t.Fatalf("wrong recipient: %v, serving %s", err, keyvault.Prefix(h.secret()))
	}
	if h.logs.FilterMessage("vault reload failed; keeping the last good vault").Len() != 1 {
		t.Error("the failed reload was not logged once")
	}

	vaulttest.WriteEncrypted(t, path, vaultText(gen(4)), id.Recipient(), false)
	h.waitSecret(gen(4), pickup)
}

func TestNewWatcherRefusesWrongIdentity(t *testing.T) {
	_, id := vaulttest.AgeIdentity(t)
	_, other := vaulttest.AgeIdentity(t)
	path := filepath.Join(t.TempDir(), "keys.toml.age")
	vaulttest.WriteEncrypted(t, path, vaultText(gen(1)), id.Recipient(), false)
	_, err := keyvault.NewWatcher(keyvault.WatcherOptions{Path: path, Identities: []age.Identity{other}})
	if err == nil || !strings.Contains(err.Error(), "encrypted to other recipients") {
		t.Fatalf("NewWatcher with the wrong identity = %v", err)
	}
}
