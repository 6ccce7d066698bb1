package tlstest

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestIssueChainsToCA(t *testing.T) {
	ca := NewCA(t, "test CA")
	other := NewCA(t, "other CA")
	pair, certPEM, keyPEM := ca.Issue(t, LeafOptions{
		CommonName: "stats",
		URIs:       []string{"spiffe://prod.example/ns/radio/sa/stats"},
		Client:     true,
	})
	opts := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := pair.Leaf.Verify(opts); err != nil {
		t.Errorf("leaf does not verify against its CA: %v", err)
	}
	opts.Roots = other.Pool()
	if _, err := pair.Leaf.Verify(opts); err == nil {
		t.Errorf("leaf verifies against another CA")
	}
	if got := pair.Leaf.URIs[0].String(); got != "spiffe://prod.example/ns/radio/sa/stats" {
		t.Errorf("URI SAN %q", got)
	}
	fromPEM, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("PEM pair does not load: %v", err)
	}
	if fromPEM.Leaf.SerialNumber.Cmp(pair.Leaf.SerialNumber) != 0 {
		t.Errorf("PEM and returned pair differ")
	}
}

func TestIssueKeyUsages(t *testing.T) {
	ca := NewCA(t, "test CA")
	server, _, _ := ca.Issue(t, LeafOptions{DNSNames: []string{"localhost"}, Server: true})
	if got := server.Leaf.ExtKeyUsage; len(got) != 1 || got[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("server-only usages %v", got)
	}
	both, _, _ := ca.Issue(t, LeafOptions{CommonName: "x"})
	if got := both.Leaf.ExtKeyUsage; len(got) != 2 {
		t.Errorf("default usages %v, want server and client", got)
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	WriteFiles(t, dir, map[string][]byte{"a/b.pem": []byte("x")})
	got, err := os.ReadFile(filepath.Join(dir, "a", "b.pem"))
	if err != nil || string(got) != "x" {
		t.Errorf("read back %q, %v", got, err)
	}
}
