package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/proxy/tlsconf/acmetest"
)

func standinUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	si, err := standin.New(standin.Options{Keys: []string{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	t.Cleanup(up.Close)
	return up
}

// writeConfigVault writes cfg with a vault whose one caller is caller.
func writeConfigVault(t *testing.T, cfg, caller string) string {
	t.Helper()
	p := writeConfig(t, cfg)
	vault := strings.Replace(goodVault, `"svc"`, fmt.Sprintf("%q", caller), 1)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "keys.toml"), []byte(vault), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestACMEEndToEnd: with tls = "acme", scgate obtains its certificate from
// Pebble (HTTP-01 on its challenge listener, TLS-ALPN-01 on its gateway
// listener), becomes ready, and a client that trusts only Pebble's root
// completes a request through it.
func TestACMEEndToEnd(t *testing.T) {
	pebble := acmetest.New(t)
	up := standinUpstream(t)
	storage := t.TempDir()
	p := writeConfig(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
tls = "acme"
shutdown_delay = "0s"
[server.acme]
domains = ["localhost"]
email = "ops@example.com"
ca = %q
ca_roots_file = %q
storage = %q
http_challenge_listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity]
static = "svc"
`, pebble.DirectoryURL, pebble.ServerCAFile, storage, up.URL))
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.Build(c, gateway.Options{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	// Pebble's validation authority needs the ports scgate bound.
	pebble.Start(acmetest.Options{HTTPPort: g.ChallengeAddr().(*net.TCPAddr).Port, TLSPort: g.Addr().(*net.TCPAddr).Port})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for g.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready in time: %v", g.Ready())
		}
		select {
		case err := <-done:
			t.Fatalf("the gateway stopped: %v", err)
		case <-time.After(20 * time.Millisecond): // polling interval, not synchronisation
		}
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pebble.Roots(), ServerName: "localhost"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	code, body := get(t, client, "https://"+g.Addr().String()+"/api/v2/playlists/?server=1")
	if code != http.StatusOK {
		t.Fatalf("through the ACME certificate: %d %s", code, body)
	}
	_, metricsText := get(t, http.DefaultClient, "http://"+g.AdminAddr().String()+"/metrics")
	if !strings.Contains(metricsText, `scgate_tls_cert_expiry_timestamp_seconds{name="localhost"}`) {
		t.Errorf("no expiry metric for the ACME certificate:\n%s", grepLines(metricsText, "scgate_tls"))
	}
	// The challenge listener answers nothing but challenges.
	if code, _ := get(t, http.DefaultClient, "http://"+g.ChallengeAddr().String()+"/api/v2/history/"); code != http.StatusNotFound {
		t.Errorf("challenge listener: %d for a gateway path, want 404", code)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestJWTIdentityEndToEnd follows the service-account example of docs/identity.md: a
// projected token with scgate's audience is the caller's identity.
func TestJWTIdentityEndToEnd(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	up := standinUpstream(t)
	const sa = "system:serviceaccount:radio:playlist-sync"
	g, _ := startGatewayFrom(t, writeConfigVault(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity.jwt]
issuer = "https://kubernetes.default.svc.cluster.local"
audiences = ["scgate"]
jwks_file = %q
`, up.URL, filepath.Join(dir, "jwks.json")), sa))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	token := func(aud string) string {
		tok, err := jwt.Signed(signer).Claims(jwt.Claims{
			Issuer: "https://kubernetes.default.svc.cluster.local", Subject: sa, Audience: jwt.Audience{aud},
			Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour)), NotBefore: jwt.NewNumericDate(time.Now()),
		}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	base := "http://" + g.Addr().String()
	for _, tt := range []struct {
		aud  string
		want int
	}{{"scgate", http.StatusOK}, {"vault", http.StatusUnauthorized}} {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v2/playlists/?server=1", nil)
		req.Header.Set("Authorization", "Bearer "+token(tt.aud))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("audience %q: %d, want %d", tt.aud, resp.StatusCode, tt.want)
		}
	}
}

// TestHeaderIdentityEndToEnd follows the Istio example of docs/identity.md, with the
// sidecar on loopback as the trusted proxy.
func TestHeaderIdentityEndToEnd(t *testing.T) {
	up := standinUpstream(t)
	const id = "spiffe://prod.example/ns/radio/sa/stats"
	g, _ := startGatewayFrom(t, writeConfigVault(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity]
trusted_proxies = ["127.0.0.1"]
[identity.header]
name = "X-Forwarded-Client-Cert"
trust_domains = ["prod.example"]
`, up.URL), id))
	req, _ := http.NewRequest(http.MethodGet, "http://"+g.Addr().String()+"/api/v2/playlists/?server=1", nil)
	req.Header.Set("X-Forwarded-Client-Cert", `By=spiffe://prod.example/ns/radio/sa/scgate;Hash=abc;URI=`+id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d, want 200", resp.StatusCode)
	}
}

// TestUpstreamSkipVerifyIsOptInAndWarned: an upstream whose certificate
// does not verify is refused (502) unless the danger-named option is set,
// which logs a warning at start.
func TestUpstreamSkipVerifyIsOptInAndWarned(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) }))
	defer up.Close()
	for _, skip := range []bool{false, true} {
		t.Run(fmt.Sprint("skip=", skip), func(t *testing.T) {
			p := writeConfig(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
dangerously_skip_tls_verify = %v
[vault]
file = "keys.toml"
[identity]
static = "svc"
`, up.URL, skip))
			core, logs := observer.New(zapcore.WarnLevel)
			g, _ := startGatewayWith(t, p, zap.New(core), nil)
			code, _ := get(t, http.DefaultClient, "http://"+g.Addr().String()+"/api/v2/history/")
			warned := logs.FilterMessageSnippet("dangerously_skip_tls_verify").Len() == 1
			if skip && (code != http.StatusOK || !warned) {
				t.Errorf("skip set: %d, warned %v; want 200 and a warning", code, warned)
			}
			if !skip && (code != http.StatusBadGateway || warned) {
				t.Errorf("skip unset: %d, warned %v; want 502 and no warning", code, warned)
			}
		})
	}
}
