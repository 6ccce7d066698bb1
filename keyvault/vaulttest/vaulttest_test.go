package vaulttest

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestSecretVolumeLooksLikeTheKubelets: files are symlinks through "..data",
// an update swaps "..data" to a new directory and removes the old one, and
// a file added by an update becomes visible.
func TestSecretVolumeLooksLikeTheKubelets(t *testing.T) {
	sv := NewSecretVolume(t, map[string]string{"keys.toml": "one"})
	if target, err := os.Readlink(sv.Path("keys.toml")); err != nil || target != filepath.Join("..data", "keys.toml") {
		t.Fatalf("keys.toml -> %q, %v", target, err)
	}
	first, _ := os.Readlink(filepath.Join(sv.Dir(), "..data"))
	sv.Update(map[string]string{"keys.toml": "two", "api.key": "k"})
	for name, want := range map[string]string{"keys.toml": "two", "api.key": "k"} {
		if b, err := os.ReadFile(sv.Path(name)); err != nil || string(b) != want {
			t.Fatalf("%s: %q, %v", name, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(sv.Dir(), first)); !os.IsNotExist(err) {
		t.Fatalf("the previous data directory %s is still there: %v", first, err)
	}
}

func TestWriteAtomicReplacesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "v.toml")
	WriteFile(t, p, "a")
	WriteAtomic(t, p, "b")
	if b, _ := os.ReadFile(p); string(b) != "b" {
		t.Fatalf("%q", b)
	}
	if matches, _ := filepath.Glob(p + "*"); len(matches) != 1 {
		t.Fatalf("temporary files left: %v", matches)
	}
}
