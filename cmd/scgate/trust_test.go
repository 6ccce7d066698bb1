package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

// TestTrustBundlesEndToEnd: the binary's wiring of
// [identity.mtls.trust_bundles]: an ID of prod.example signed by the CA of
// other.example is refused with 401 while prod's own CA is accepted; when
// the prod bundle file is replaced, the watcher picks it up and the old CA's
// caller is refused on its open connection.
func TestTrustBundlesEndToEnd(t *testing.T) {
	serverCA, prodCA, otherCA := tlstest.NewCA(t, "server CA"), tlstest.NewCA(t, "prod CA"), tlstest.NewCA(t, "other CA")
	dir := t.TempDir()
	_, srvCert, srvKey := serverCA.Issue(t, tlstest.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	tlstest.WriteFiles(t, dir, map[string][]byte{"bundles/prod.pem": prodCA.PEM, "bundles/other.pem": otherCA.PEM, "tls.crt": srvCert, "tls.key": srvKey})
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
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity.mtls.trust_bundles]
"prod.example" = %q
"other.example" = %q
`, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), up.URL,
		filepath.Join(dir, "bundles/prod.pem"), filepath.Join(dir, "bundles/other.pem"))
	p := writeConfig(t, cfg)
	const prodID = "spiffe://prod.example/ns/radio/sa/sync"
	vault := strings.Replace(goodVault, `"svc"`, `"`+prodID+`"`, 1)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "keys.toml"), []byte(vault), 0o600); err != nil {
		t.Fatal(err)
	}
	g, _ := startGatewayFrom(t, p)
	base := "https://" + g.Addr().String() + "/api/v2/playlists/?server=1"
	clientWith := func(ca *tlstest.CA) *http.Client {
		cert, _, _ := ca.Issue(t, tlstest.LeafOptions{URIs: []string{prodID}, Client: true})
		tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: serverCA.Pool(), Certificates: []tls.Certificate{cert}}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	prod := clientWith(prodCA)
	if code, body := get(t, prod, base); code != http.StatusOK {
		t.Fatalf("prod ID from the prod CA: %d %s", code, body)
	}
	if code, _ := get(t, clientWith(otherCA), base); code != http.StatusUnauthorized {
		t.Fatalf("prod ID from the other domain's CA: %d, want 401", code)
	}
	// Rotate the prod bundle to a new CA: the watcher reloads it, and the
	// old CA's caller is refused on the connection it already has.
	tlstest.WriteFiles(t, dir, map[string][]byte{"bundles/prod.pem": tlstest.NewCA(t, "prod CA 2").PEM})
	waitUntil(t, "the old prod CA's caller to be refused", func() bool {
		code, _ := get(t, prod, base)
		return code == http.StatusUnauthorized
	})
}
