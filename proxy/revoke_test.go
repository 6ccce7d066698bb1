package proxy_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
)

// TestRevokedCallerIsRefused is the revocation runbook of docs/operations.md: remove the
// caller from the vault, and its next requests are refused (403 forbidden,
// from scgate), while the other callers carry on. How fast is measured by
// BenchmarkReloadLatency (well under a second); the deadline here only
// bounds the test.
func TestRevokedCallerIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.toml")
	vaulttest.WriteAtomic(t, path, testVault)
	w, err := keyvault.NewWatcher(keyvault.WatcherOptions{Path: path, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e := newEnv(t, envOptions{vault: w})
	if resp, body := e.do("GET", "/api/v2/playlists/", "reader", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the revocation: %d %s", resp.StatusCode, body)
	}

	vaulttest.WriteAtomic(t, path, strings.Replace(testVault, "\"reader\" = \"reader\"\n", "", 1))
	start := time.Now()
	vaulttest.Eventually(t, 5*time.Second, "the removed caller to be refused", func() bool {
		resp, _ := e.do("GET", "/api/v2/playlists/", "reader", nil, nil)
		return resp.StatusCode == http.StatusForbidden && resp.Header.Get("Scgate-Error") == "forbidden"
	})
	t.Logf("refused %v after the write", time.Since(start).Round(time.Millisecond))
	if resp, body := e.do("GET", "/api/v2/playlists/", "admin", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("another caller after the revocation: %d %s", resp.StatusCode, body)
	}
}
