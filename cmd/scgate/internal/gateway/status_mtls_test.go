package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

// With admin.client_ca_file the admin listener speaks TLS: the probes
// answer any client, /status and /metrics only a client certificate from
// the admin CA (not one from another CA), and
// the admin certificate is on the status page.
func TestAdminStatusPageMTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, "admin CA"), tlstest.NewCA(t, "other CA")
	_, certPEM, keyPEM := ca.Issue(t, tlstest.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	tlstest.WriteFiles(t, dir, map[string][]byte{
		"admin.crt": certPEM, "admin.key": keyPEM, "admin-ca.crt": ca.PEM,
		"keys.toml": []byte("[callers]\n\"svc\" = \"k\"\n[[keys.k]]\nsecret = \"TestKey1.FAKEfakeFAKEfakeFAKEfakeFAKEfake\"\n"),
	})
	for _, f := range []string{"admin.key", "keys.toml"} {
		if err := os.Chmod(filepath.Join(dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse(filepath.Join(dir, "config.toml"), []byte(`[server]
listen = "127.0.0.1:0"
tls = "off"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
cert_file = "admin.crt"
key_file = "admin.key"
client_ca_file = "admin-ca.crt"
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
	g, err := Build(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := func(cert *tls.Certificate) *http.Client {
		tc := &tls.Config{RootCAs: roots}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	get := func(c *http.Client, path string) (int, string, error) {
		resp, err := c.Get("https://" + g.AdminAddr().String() + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	good, _, _ := ca.Issue(t, tlstest.LeafOptions{CommonName: "ops", Client: true})
	stranger, _, _ := other.Issue(t, tlstest.LeafOptions{CommonName: "ops", Client: true})
	if code, _, err := get(client(nil), "/healthz"); err != nil || code != 200 {
		t.Errorf("/healthz without a client certificate: %d %v", code, err)
	}
	for _, path := range []string{"/status", "/status.json", "/metrics"} {
		if code, _, err := get(client(nil), path); err != nil || code != http.StatusForbidden {
			t.Errorf("%s without a client certificate: %d %v, want 403", path, code, err)
		}
		// Go's client offers no certificate the server's CA list does not
		// name, so this is a 403; a client that offers it anyway fails
		// the handshake. Either way, no page.
		if code, _, err := get(client(&stranger), path); err == nil && code != http.StatusForbidden {
			t.Errorf("%s with another CA's certificate: %d, want 403 or a refused handshake", path, code)
		}
	}
	code, body, err := get(client(&good), "/status")
	if err != nil || code != 200 || !strings.Contains(body, "admin_client_ca") || !strings.Contains(body, `<th scope="row">admin</th>`) {
		t.Errorf("/status with the admin CA's certificate: %d %v %.300s", code, err, body)
	}
}
