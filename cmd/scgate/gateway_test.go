package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

const testKey = "TestKey1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"

// startGateway runs a gateway built from cfg (the vault is goodVault) and
// returns it with a function that stops it (like SIGTERM) and waits.
func startGateway(t *testing.T, cfg string) (*gateway.Gateway, func() error) {
	t.Helper()
	return startGatewayFrom(t, writeConfig(t, cfg))
}

func startGatewayFrom(t *testing.T, path string) (*gateway.Gateway, func() error) {
	t.Helper()
	return startGatewayWith(t, path, zap.NewNop(), nil)
}

// startGatewayWith runs the gateway of the config at path with logger, and
// hup as its SIGHUP channel (nil: none), until the test ends or stop is
// called (like SIGTERM).
func startGatewayWith(t *testing.T, path string, logger *zap.Logger, hup <-chan os.Signal) (*gateway.Gateway, func() error) {
	t.Helper()
	return startGatewayOpts(t, path, gateway.Options{Logger: logger}, hup)
}

// startGatewayOpts is startGatewayWith with the gateway's Options.
func startGatewayOpts(t *testing.T, path string, opts gateway.Options, hup <-chan os.Signal) (*gateway.Gateway, func() error) {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.Build(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, hup) }()
	waitUntil(t, "readiness", func() bool { return g.Ready() == nil })
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return g, stop
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestGracefulShutdown stops the gateway with a request in flight: /readyz
// fails at once, a new request is still served during the shutdown delay
// (an hour here, so no machine is slow enough to outlast it; the test ends
// it as a second SIGTERM would), and the request in flight completes.
func TestGracefulShutdown(t *testing.T) {
	arrived := make(chan struct{}, 8)
	release := make(chan struct{})
	var releaseOnce sync.Once
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		if r.URL.Path == "/api/v2/history/" {
			<-release
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	// Deferred after up.Close, so it runs first: a failure anywhere below
	// must not leave the held request blocking the upstream's Close.
	defer releaseOnce.Do(func() { close(release) })
	skip := make(chan struct{})
	var skipOnce sync.Once
	defer skipOnce.Do(func() { close(skip) })
	path := writeConfig(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
shutdown_delay = "1h"
shutdown_timeout = "10s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity]
static = "svc"
`, up.URL))
	g, stop := startGatewayOpts(t, path, gateway.Options{Logger: zap.NewNop(), SkipDelay: skip}, nil)
	base := "http://" + g.Addr().String()
	admin := "http://" + g.AdminAddr().String()
	if code, _ := get(t, http.DefaultClient, admin+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d before shutdown", code)
	}

	inflight := make(chan error, 1)
	go func() {
		resp, err := http.Get(base + "/api/v2/history/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != `{"ok":true}` {
				err = fmt.Errorf("in-flight request got %d %q", resp.StatusCode, b)
			}
		}
		inflight <- err
	}()
	<-arrived // the request is at the upstream

	stopErr := make(chan error, 1)
	go func() { stopErr <- stop() }()
	waitUntil(t, "/readyz to fail", func() bool {
		code, body := get(t, http.DefaultClient, admin+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "draining")
	})
	noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if code, body := get(t, noKeepAlive, base+"/api/v2/channels/"); code != http.StatusOK {
		t.Fatalf("request during the shutdown delay: %d %s", code, body)
	}
	skipOnce.Do(func() { close(skip) })
	waitUntil(t, "the listener to close once the delay is cut short", func() bool {
		c, err := net.Dial("tcp", g.Addr().String())
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	releaseOnce.Do(func() { close(release) })
	if err := <-inflight; err != nil {
		t.Fatal(err)
	}
	if err := <-stopErr; err != nil {
		t.Fatalf("run returned %v", err)
	}
}

func TestMTLSIdentityEndToEnd(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	other := tlstest.NewCA(t, "other-ca")
	dir := t.TempDir()
	_, srvCert, srvKey := ca.Issue(t, tlstest.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	tlstest.WriteFiles(t, dir, map[string][]byte{"ca.pem": ca.PEM, "tls.crt": srvCert, "tls.key": srvKey})
	caFile := filepath.Join(dir, "ca.pem")
	si, err := standin.New(standin.Options{Keys: []string{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()
	cfg := fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
tls = "files"
cert_file = %q
key_file = %q
client_ca_file = %q
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity]
order = ["mtls"]
[identity.mtls]
source = "uri"
trust_domains = ["prod.example"]
`, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), caFile, up.URL)
	// The vault's caller is the SPIFFE ID.
	p := writeConfig(t, cfg)
	vault := strings.Replace(goodVault, `"svc"`, `"spiffe://prod.example/ns/radio/sa/sync"`, 1)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "keys.toml"), []byte(vault), 0o600); err != nil {
		t.Fatal(err)
	}
	g, _ := startGatewayFrom(t, p)
	base := "https://" + g.Addr().String()

	clientWith := func(cert tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{
			RootCAs: ca.Pool(),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &cert, nil
			},
		}}}
	}
	good, _, _ := ca.Issue(t, tlstest.LeafOptions{URIs: []string{"spiffe://prod.example/ns/radio/sa/sync"}, Client: true})
	client := clientWith(good)
	resp, err := client.Get(base + "/api/v2/playlists/?server=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SPIFFE client: %d %s", resp.StatusCode, body)
	}
	if resp.Proto != "HTTP/2.0" {
		t.Errorf("TLS callers should get HTTP/2, got %s", resp.Proto)
	}
	reqs := si.Requests()
	if got := reqs[len(reqs)-1].KeyPrefixes; !slices.Equal(got, []string{keyvault.Prefix(testKey)}) {
		t.Fatalf("the stand-in saw %v", got)
	}

	// A certificate from another CA does not complete the handshake.
	bad, _, _ := other.Issue(t, tlstest.LeafOptions{URIs: []string{"spiffe://prod.example/ns/radio/sa/sync"}, Client: true})
	if _, err := clientWith(bad).Get(base + "/api/v2/playlists/"); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
	// A certificate from the right CA in another trust domain is refused (401).
	foreign, _, _ := ca.Issue(t, tlstest.LeafOptions{URIs: []string{"spiffe://evil.example/ns/x/sa/y"}, Client: true})
	if code, _ := get(t, clientWith(foreign), base+"/api/v2/playlists/"); code != http.StatusUnauthorized {
		t.Fatalf("foreign trust domain: %d, want 401", code)
	}
	client.CloseIdleConnections()
}

func TestHeaderLimitAndSIGHUP(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	core, logs := observer.New(zapcore.InfoLevel)
	p := writeConfig(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
max_header_bytes = 4096
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity]
static = "svc"
`, up.URL))
	hup := make(chan os.Signal, 1)
	g, _ := startGatewayWith(t, p, zap.New(core), hup)

	req, _ := http.NewRequest("GET", "http://"+g.Addr().String()+"/api/v2/history/", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 8192))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %d, want 431", resp.StatusCode)
	}

	// SIGHUP reloads; a changed setting that needs a restart is reported.
	cfgText, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(strings.Replace(string(cfgText), "4096", "8192", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	waitUntil(t, "the SIGHUP reload to be logged", func() bool {
		return logs.FilterMessageSnippet("restart scgate").Len() == 1 &&
			logs.FilterMessage("SIGHUP: reloading").Len() == 1
	})
	// The line names the setting, from the config schema (not a list kept
	// by hand), and only it.
	line := logs.FilterMessageSnippet("restart scgate").All()[0]
	if got := fmt.Sprint(line.ContextMap()["settings"]); got != "[server.max_header_bytes]" {
		t.Fatalf("restart needed for %s, want [server.max_header_bytes]", got)
	}
}
