package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

func TestNewClientCAsErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "client CA")
	_, _, keyPEM := ca.Issue(t, tlstest.LeafOptions{CommonName: "x"})
	dir := t.TempDir()
	tlstest.WriteFiles(t, dir, map[string][]byte{
		"empty.pem":   nil,
		"key.pem":     keyPEM,
		"broken.pem":  append(append([]byte{}, ca.PEM...), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"...),
		"garbage.pem": []byte("hello"),
	})
	p := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name      string
		file      string
		wantParts []string
	}{
		{"no file given", "", []string{"no client CA file"}},
		{"missing", p("missing.pem"), []string{p("missing.pem"), "check the path"}},
		{"empty", p("empty.pem"), []string{p("empty.pem"), "is empty"}},
		{"only a key", p("key.pem"), []string{p("key.pem"), "no PEM CERTIFICATE"}},
		{"not PEM", p("garbage.pem"), []string{p("garbage.pem"), "no PEM CERTIFICATE"}},
		{"a broken certificate", p("broken.pem"), []string{p("broken.pem"), "PEM block 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClientCAs(ClientCAOptions{File: tt.file})
			if c != nil {
				t.Errorf("got a ClientCAs despite the error")
			}
			wantErrContains(t, err, tt.wantParts...)
		})
	}
}

// TestClientCAsReloadTrustsNewCA adds a CA to the bundle while the server
// runs: a client of the new CA is refused before and accepted on a new
// connection after, and clients of the old CA carry on.
func TestClientCAsReloadTrustsNewCA(t *testing.T) {
	serverCA := tlstest.NewCA(t, "server CA")
	caA := tlstest.NewCA(t, "client CA A")
	caB := tlstest.NewCA(t, "client CA B")
	serverPair, _, _ := serverCA.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}, Server: true})
	clientA, _, _ := caA.Issue(t, tlstest.LeafOptions{CommonName: "client-a", Client: true})
	clientB, _, _ := caB.Issue(t, tlstest.LeafOptions{CommonName: "client-b", Client: true})

	dir := t.TempDir()
	bundle := filepath.Join(dir, "ca.pem")
	tlstest.WriteFiles(t, dir, map[string][]byte{"ca.pem": caA.PEM})
	var mu sync.Mutex
	var reported [][]*x509.Certificate
	cas, err := NewClientCAs(ClientCAOptions{File: bundle, PollInterval: -1, OnReload: func(certs []*x509.Certificate, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			reported = append(reported, certs)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerConfig(ServerOptions{GetCertificate: staticCert(&serverPair), ClientCAs: cas})
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, cfg, nil)
	run(t, cas.Run)

	if s, err := fetch(url, clientConfig(serverCA, clientA)); err != nil || !strings.Contains(s.body, "cn=client-a") {
		t.Fatalf("client of CA A: %q, %v", s.body, err)
	}
	if _, err := fetch(url, clientConfig(serverCA, clientB)); err == nil {
		t.Fatalf("client of CA B accepted before B was trusted")
	}

	tlstest.WriteFiles(t, dir, map[string][]byte{"ca.pem": append(append([]byte{}, caA.PEM...), caB.PEM...)})
	waitFor(t, "a client of the newly trusted CA to be accepted", func() error {
		_, err := fetch(url, clientConfig(serverCA, clientB))
		return err
	})
	if s, err := fetch(url, clientConfig(serverCA, clientA)); err != nil || !strings.Contains(s.body, "cn=client-a") {
		t.Fatalf("client of CA A after the reload: %q, %v", s.body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if last := reported[len(reported)-1]; len(last) != 2 {
		t.Errorf("OnReload reported %d certificates, want 2", len(last))
	}
}

func TestClientCAsFailedReloadKeepsPool(t *testing.T) {
	ca := tlstest.NewCA(t, "client CA")
	dir := t.TempDir()
	tlstest.WriteFiles(t, dir, map[string][]byte{"ca.pem": ca.PEM})
	cas, err := NewClientCAs(ClientCAOptions{File: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	pool := cas.Pool()
	tlstest.WriteFiles(t, dir, map[string][]byte{"ca.pem": []byte("truncated")})
	wantErrContains(t, cas.Reload(), "no PEM CERTIFICATE")
	if cas.Pool() != pool {
		t.Errorf("a failed reload replaced the pool")
	}
}

func staticCert(c *tls.Certificate) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c, nil }
}
