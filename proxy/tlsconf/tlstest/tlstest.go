package tlstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// validity is how long test certificates live unless a test asks otherwise;
// long enough that no test run crosses it, short enough to be obviously fake.
const validity = 24 * time.Hour

// backdate moves NotBefore into the past so that small clock differences
// between the issuing test and a verifier never make a fresh certificate
// "not yet valid".
const backdate = time.Hour

// CA is a test certificate authority: a self-signed root that issues leaves.
type CA struct {
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// Key signs the certificates the CA issues.
	Key crypto.Signer
	// PEM is Cert in PEM form, ready to be written as a client-CA bundle.
	PEM []byte
}

// NewCA makes a new self-signed CA whose subject common name is name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"scgate test"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("tlstest: creating CA %q: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: parsing CA %q: %v", name, err)
	}
	return &CA{Cert: cert, Key: key, PEM: pemBlock("CERTIFICATE", der)}
}

// LeafOptions describes a certificate for CA.Issue.
type LeafOptions struct {
	// CommonName is the subject common name; empty leaves it out.
	CommonName string
	// DNSNames are DNS subject alternative names, in order.
	DNSNames []string
	// IPs are IP address subject alternative names.
	IPs []net.IP
	// URIs are URI subject alternative names such as
	// "spiffe://example.org/ns/radio/sa/stats", in order. A URI that does
	// not parse fails the test.
	URIs []string
	// Client and Server select the extended key usages. When both are
	// false the certificate is good for both, which is what most tests want.
	Client, Server bool
	// NotAfter ends the validity; zero means a day from now.
	NotAfter time.Time
}

// Issue signs a new leaf certificate with a fresh key. It returns the pair
// ready for a tls.Config (with Leaf set), and the certificate and key in PEM
// form for tests that load them from files.
func (ca *CA) Issue(t testing.TB, o LeafOptions) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	notAfter := o.NotAfter
	if notAfter.IsZero() {
		notAfter = now.Add(validity)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(t),
		Subject:      pkix.Name{CommonName: o.CommonName},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
		ExtKeyUsage:  extKeyUsage(o.Client, o.Server),
	}
	for _, s := range o.URIs {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("tlstest: URI SAN %q: %v", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("tlstest: issuing %+v: %v", o, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("tlstest: parsing issued certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("tlstest: encoding key: %v", err)
	}
	pair := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return pair, pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER)
}

// Pool returns a new pool holding only this CA, for RootCAs or ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// WriteFiles writes each name → contents pair under dir, creating parent
// directories as needed. Names are slash-separated paths relative to dir.
func WriteFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatalf("tlstest: %v", err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatalf("tlstest: %v", err)
		}
	}
}

func extKeyUsage(client, server bool) []x509.ExtKeyUsage {
	if !client && !server {
		client, server = true, true
	}
	var usages []x509.ExtKeyUsage
	if server {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	if client {
		usages = append(usages, x509.ExtKeyUsageClientAuth)
	}
	return usages
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("tlstest: generating key: %v", err)
	}
	return key
}

// newSerial returns a random 128-bit serial, so that tests can tell two
// certificates apart by the serial number a client sees.
func newSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatalf("tlstest: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1)) // never zero
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
