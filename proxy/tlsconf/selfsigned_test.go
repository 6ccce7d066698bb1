package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSelfSignedFingerprintMatchesServedCertificate(t *testing.T) {
	cert, fp, err := SelfSigned(nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ServerConfig(ServerOptions{GetCertificate: staticCert(cert)})
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, cfg, nil)
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	// No ServerName: the client verifies the 127.0.0.1 IP SAN.
	s, err := fetch(url, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	if s.fingerprint != fp {
		t.Errorf("served fingerprint %s, SelfSigned said %s", s.fingerprint, fp)
	}
}

func TestSelfSignedCertificate(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cert, fp, err := SelfSigned(nil, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if key, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || key.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !leaf.NotAfter.Equal(now.Add(30*24*time.Hour)) || leaf.NotBefore.After(now) {
		t.Errorf("validity %v – %v, want until 30 days after %v", leaf.NotBefore, leaf.NotAfter, now)
	}
	if !slices.Equal(leaf.DNSNames, []string{"localhost"}) {
		t.Errorf("DNS SANs %q", leaf.DNSNames)
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !leaf.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IP SANs %v", leaf.IPAddresses)
	}
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Errorf("fingerprint %q is not colon-separated upper-case hex", fp)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	if strings.ReplaceAll(fp, ":", "") != strings.ToUpper(hex.EncodeToString(sum[:])) {
		t.Errorf("fingerprint %s is not the SHA-256 of the certificate", fp)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool, CurrentTime: now}); err != nil {
		t.Errorf("does not verify for localhost: %v", err)
	}
}

func TestSelfSignedHosts(t *testing.T) {
	cert, _, err := SelfSigned([]string{"scgate.test", "10.0.0.7", "fd00::7"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cert.Leaf.Subject.CommonName != "scgate.test" || !slices.Equal(cert.Leaf.DNSNames, []string{"scgate.test"}) || len(cert.Leaf.IPAddresses) != 2 {
		t.Errorf("CN %q, DNS %q, IPs %v", cert.Leaf.Subject.CommonName, cert.Leaf.DNSNames, cert.Leaf.IPAddresses)
	}
	for _, bad := range []string{"", " ", "two words", "http://x/", "host:8443"} {
		if _, _, err := SelfSigned([]string{"ok.test", bad}, time.Now()); err == nil {
			t.Errorf("host %q accepted", bad)
		} else if !strings.Contains(err.Error(), "host 2") {
			t.Errorf("error %q does not name the entry", err)
		}
	}
}
