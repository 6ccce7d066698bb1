package docs_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

// quickStartKey is the fake key the stand-in accepts in the quick starts.
const quickStartKey = "QuickSt1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"

// TestQuickStartsServeThroughTheStandin runs README's two quick-start
// configs, as written, with only what a reader supplies themselves swapped
// in: free loopback ports, the stand-in broadcaster as the upstream, a vault,
// and (for the central gateway) a throwaway CA with a server and a client
// certificate. Each must serve a real request with the caller's key.
func TestQuickStartsServeThroughTheStandin(t *testing.T) {
	root := repoRoot(t)
	var quick []block
	for _, f := range docFiles(t) {
		if f.rel != "README.md" {
			continue
		}
		for _, b := range blocks(f) {
			if b.info == "toml "+kindConfig {
				quick = append(quick, b)
			}
		}
	}
	if len(quick) < 2 {
		t.Fatalf("README has %d runnable configs; want the sidecar and the central gateway quick starts", len(quick))
	}
	si, err := standin.New(standin.Options{Keys: []string{quickStartKey}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()
	bin := buildScgate(t, root)

	for i, name := range []string{"sidecar", "central gateway"} {
		t.Run(name, func(t *testing.T) {
			b := quick[i]
			dir := t.TempDir()
			var cfg map[string]any
			if err := toml.Unmarshal([]byte(b.text), &cfg); err != nil {
				t.Fatalf("%s:%d: %v", b.file, b.line, err)
			}
			section := func(name string) map[string]any { return cfg[name].(map[string]any) }
			listen, admin := freeAddr(t), freeAddr(t)
			section("server")["listen"] = listen
			section("admin")["listen"] = admin
			section("upstream")["url"] = up.URL
			vault := filepath.Join(dir, "keys.toml")
			section("vault")["file"] = vault

			client := &http.Client{Timeout: 10 * time.Second}
			scheme, caller := "http", "playlist-sync"
			if tls := section("server")["tls"]; tls == "files" {
				scheme, caller = "https", "spiffe://prod.example/ns/radio/sa/stats"
				client = gatewayClient(t, dir, section("server"), caller)
			}
			write(t, vault, "[callers]\n\""+caller+"\" = \"radio\"\n[[keys.radio]]\nsecret = \""+quickStartKey+"\"\n")
			out, err := toml.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			config := filepath.Join(dir, "config.toml")
			write(t, config, string(out))

			cmd := exec.Command(bin, "run", "--config", config)
			var logs lockedLog
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
			})
			ready := func() bool {
				resp, err := http.Get("http://" + admin + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			}
			deadline := time.Now().Add(30 * time.Second)
			for !ready() {
				if time.Now().After(deadline) {
					t.Fatalf("the gateway never became ready; its log:\n%s", logs.String())
				}
				time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
			}
			sent := len(si.Requests())
			resp, err := client.Get(scheme + "://" + listen + "/api/v2/playlists/?server=1")
			if err != nil {
				t.Fatalf("request: %v\nlog:\n%s", err, logs.String())
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200; log:\n%s", resp.StatusCode, logs.String())
			}
			reqs := si.Requests()[sent:]
			if len(reqs) != 1 || !slices.Equal(reqs[0].KeyPrefixes, []string{keyvault.Prefix(quickStartKey)}) {
				t.Fatalf("the stand-in saw %+v, want one request with the caller's key", reqs)
			}
		})
	}
}

// gatewayClient writes a throwaway CA, a serving certificate for 127.0.0.1
// and the client CA where the config names them, and returns a client that
// presents a certificate for caller.
func gatewayClient(t *testing.T, dir string, server map[string]any, caller string) *http.Client {
	t.Helper()
	ca := tlstest.NewCA(t, "quick start CA")
	_, certPEM, keyPEM := ca.Issue(t, tlstest.LeafOptions{CommonName: "scgate", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	clientPair, _, _ := ca.Issue(t, tlstest.LeafOptions{URIs: []string{caller}, Client: true})
	for setting, content := range map[string][]byte{"cert_file": certPEM, "key_file": keyPEM, "client_ca_file": ca.PEM} {
		path := filepath.Join(dir, setting+".pem")
		write(t, path, string(content))
		server[setting] = path
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: ca.Pool(), Certificates: []tls.Certificate{clientPair},
	}}}
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedLog collects a child process's output for failure messages, read
// while the process still writes.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
