package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDryRunBindsAndStartsNothing: a dry-run Build reads every file and
// builds the handler, but binds no listener and leaves no goroutine behind
// (goleak checks right after Build, before Close), and cannot Run.
func TestDryRunBindsAndStartsNothing(t *testing.T) {
	dir := t.TempDir()
	vault := "[callers]\n\"svc\" = \"k\"\n[[keys.k]]\nsecret = \"TestKey1.FAKEfakeFAKEfakeFAKEfakeFAKEfake\"\n"
	if err := os.WriteFile(filepath.Join(dir, "keys.toml"), []byte(vault), 0o600); err != nil {
		t.Fatal(err)
	}
	// A fixed port that is certainly in use were it bound twice: the same
	// config is built twice below.
	cfg, err := config.Parse(filepath.Join(dir, "config.toml"), []byte(`[server]
listen = "127.0.0.1:18411"
tls = "self-signed"
[admin]
listen = "127.0.0.1:18412"
[upstream]
url = "https://radio.example:1030"
[vault]
file = "keys.toml"
[identity]
static = "svc"
`))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		g, err := Build(cfg, Options{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		goleak.VerifyNone(t)
		if g.Addr() != nil || g.AdminAddr() != nil {
			t.Fatal("a dry run bound a listener")
		}
		if g.Handler() == nil || len(g.Vault().Callers()) != 1 {
			t.Fatal("a dry run did not build the handler and vault")
		}
		if err := g.Run(t.Context(), nil); !errors.Is(err, errDryRun) {
			t.Fatalf("Run of a dry run: %v", err)
		}
		g.Close()
	}
}
