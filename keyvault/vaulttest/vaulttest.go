// Package vaulttest helps tests that need a vault: writing vault files (plain
// or age-encrypted), simulating a Kubernetes Secret volume, parsing a vault
// from a string, and waiting for a condition with a deadline instead of
// sleeping.
package vaulttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/scgate/scgate/keyvault"
)

// Parse parses content as a vault file named "vault.toml" in t's temporary
// directory (so relative secret_file paths resolve there) and fails the test
// if it is invalid.
func Parse(t testing.TB, content string) *keyvault.Vault {
	t.Helper()
	v, _, err := keyvault.Parse(filepath.Join(t.TempDir(), "vault.toml"), []byte(content), keyvault.LoadOptions{})
	if err != nil {
		t.Fatalf("vaulttest.Parse: %v", err)
	}
	return v
}

// WriteFile writes content to path in place (truncate and write), the way a
// careless editor or `echo >` does.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("vaulttest.WriteFile: %v", err)
	}
}

// WriteAtomic writes content to a temporary file beside path and renames it
// over path, the way careful tools and most editors do.
func WriteAtomic(t testing.TB, path, content string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vaulttest-*")
	if err != nil {
		t.Fatalf("vaulttest.WriteAtomic: %v", err)
	}
	_, werr := tmp.WriteString(content)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		t.Fatalf("vaulttest.WriteAtomic: write %s: %v %v", tmp.Name(), werr, cerr)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatalf("vaulttest.WriteAtomic: %v", err)
	}
}

// Eventually calls cond until it returns true, failing the test with what if
// timeout passes first. It polls on a ticker, so a test waits on a condition
// rather than guessing a sleep.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			if !cond() {
				t.Fatalf("timed out after %v waiting for %s", timeout, what)
			}
			return
		case <-tick.C:
		}
	}
}

// SecretVolume lays files out the way the kubelet mounts a Kubernetes Secret:
// the data lives in a timestamped directory, "..data" is a symlink to it, and
// each visible file is a symlink through "..data". Update swaps "..data"
// atomically with a rename, which is the event sequence a watcher must
// survive.
type SecretVolume struct {
	t   testing.TB
	dir string
	gen int
	cur string // current timestamped directory name
}

// NewSecretVolume creates the volume in a new temporary directory.
func NewSecretVolume(t testing.TB, files map[string]string) *SecretVolume {
	t.Helper()
	sv := &SecretVolume{t: t, dir: t.TempDir()}
	sv.Update(files)
	return sv
}

// Dir returns the mount directory.
func (sv *SecretVolume) Dir() string { return sv.dir }

// Path returns the visible path of a file in the volume.
func (sv *SecretVolume) Path(name string) string { return filepath.Join(sv.dir, name) }

// Update replaces the volume's content as the kubelet does: write a new
// timestamped directory, point "..data_tmp" at it, rename that over "..data",
// add visible symlinks for new names, and remove the old directory.
func (sv *SecretVolume) Update(files map[string]string) {
	sv.t.Helper()
	sv.gen++
	name := fmt.Sprintf("..%s.%d", time.Now().UTC().Format("2006_01_02_15_04_05"), sv.gen)
	must := func(err error) {
		sv.t.Helper()
		if err != nil {
			sv.t.Fatalf("vaulttest.SecretVolume: %v", err)
		}
	}
	must(os.Mkdir(filepath.Join(sv.dir, name), 0o755))
	for f, content := range files {
		if strings.ContainsRune(f, os.PathSeparator) {
			sv.t.Fatalf("vaulttest.SecretVolume: %q: nested paths are not supported", f)
		}
		must(os.WriteFile(filepath.Join(sv.dir, name, f), []byte(content), 0o600))
	}
	tmp := filepath.Join(sv.dir, "..data_tmp")
	must(os.Symlink(name, tmp))
	must(os.Rename(tmp, filepath.Join(sv.dir, "..data")))
	for f := range files {
		link := filepath.Join(sv.dir, f)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			must(os.Symlink(filepath.Join("..data", f), link))
		}
	}
	if sv.cur != "" {
		must(os.RemoveAll(filepath.Join(sv.dir, sv.cur)))
	}
	sv.cur = name
}

// AgeIdentity generates an age X25519 identity, writes it as an identity file
// (as age-keygen does) in t's temporary directory, and returns the file's
// path and the identity (whose Recipient encrypts to it).
func AgeIdentity(t testing.TB) (string, *age.X25519Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatalf("vaulttest.AgeIdentity: %v", err)
	}
	path := filepath.Join(t.TempDir(), "age-identity.txt")
	content := "# created: by a test\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("vaulttest.AgeIdentity: %v", err)
	}
	return path, id
}

// WriteEncrypted encrypts content to the recipient with age (armored or
// binary) and replaces path with it atomically, as `scgate vault encrypt`
// does.
func WriteEncrypted(t testing.TB, path, content string, to age.Recipient, armored bool) {
	t.Helper()
	data, err := keyvault.Encrypt([]byte(content), []age.Recipient{to}, armored)
	if err != nil {
		t.Fatalf("vaulttest.WriteEncrypted: %v", err)
	}
	WriteAtomic(t, path, string(data))
}
