package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/internal/statuspage"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
)

// The admin listener of a running gateway: the probes are open, /metrics
// and the status page want the password, and a vault reload shows on the
// page with its audit lines.
func TestAdminStatusPage(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("keys.toml", "[callers]\n\"svc\" = \"k\"\n[[keys.k]]\nsecret = \"TestKey1.FAKEfakeFAKEfakeFAKEfakeFAKEfake\"\n")
	write("admin-password", "open sesame\n")
	cfg, err := config.Parse(filepath.Join(dir, "config.toml"), []byte(`[server]
listen = "127.0.0.1:0"
tls = "off"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
password_file = "admin-password"
[upstream]
url = "http://127.0.0.1:9"
[vault]
file = "keys.toml"
[identity]
static = "svc"
`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Build(cfg, Options{Version: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, hup) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + g.AdminAddr().String()
	fetch := func(path string, auth bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if auth {
			req.SetBasicAuth("admin", "open sesame")
		}
		client := &http.Client{Timeout: 10 * time.Second}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/status", "/status.json", "/metrics"} {
		if code, _ := fetch(path, false); code != http.StatusUnauthorized {
			t.Errorf("%s without the password: %d, want 401", path, code)
		}
	}
	if code, _ := fetch("/healthz", false); code != 200 {
		t.Errorf("/healthz: %d, want 200 without a password", code)
	}
	code, body := fetch("/status", true)
	if code != 200 || !strings.Contains(body, "v1.2.3") || !strings.Contains(body, "vault loaded: 1 keys, 1 callers") || strings.Contains(body, "FAKEfake") {
		t.Fatalf("/status: %d %.300s", code, body)
	}

	write("keys.toml", "[callers]\n\"svc\" = \"k\"\n\"other\" = \"k\"\n[[keys.k]]\nsecret = \"TestKey2.FAKEfakeFAKEfakeFAKEfakeFAKEfake\"\n")
	hup <- os.Interrupt
	var st statuspage.Status
	vaulttest.Eventually(t, 20*time.Second, "the reload on the status page", func() bool {
		_, body = fetch("/status.json", true)
		st = statuspage.Status{}
		return json.Unmarshal([]byte(body), &st) == nil && len(st.Reloads) == 2
	})
	lines := strings.Join(st.Reloads[0].Lines, "\n")
	if !strings.Contains(lines, "versions_added: k TestKey2") || !strings.Contains(lines, "callers_added: other -> k") ||
		st.Callers.Items[0].Active != "TestKey2" || len(st.Panels) != 1 || st.Panels[0].Name != keyvault.DefaultPanel {
		t.Errorf("after the reload: %+v", st)
	}
}
