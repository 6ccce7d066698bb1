package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// SelfSignedValidity is how long a SelfSigned certificate is valid: long
// enough for a development session, short enough that nobody ships it.
const SelfSignedValidity = 30 * 24 * time.Hour

// defaultSelfSignedHosts are the names a SelfSigned certificate covers when
// no hosts are given: the loopback names a local client would use.
var defaultSelfSignedHosts = []string{"localhost", "127.0.0.1", "::1"}

// SelfSigned makes a development certificate: ECDSA P-256, self-signed,
// valid from an hour before now (tolerating clock skew) until
// SelfSignedValidity after now, with a subject alternative name for each host
// (IP addresses as IP SANs, everything else as DNS names; nil or empty means
// localhost, 127.0.0.1 and ::1). It also returns the certificate's SHA-256
// fingerprint (see Fingerprint), so the operator can log it and clients can
// pin it.
//
// Serve it with a GetCertificate that returns it:
//
//	cert, fp, err := tlsconf.SelfSigned(nil, time.Now())
//	cfg, err := tlsconf.ServerConfig(tlsconf.ServerOptions{
//		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil },
//	})
func SelfSigned(hosts []string, now time.Time) (*tls.Certificate, string, error) {
	if len(hosts) == 0 {
		hosts = defaultSelfSignedHosts
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("tlsconf: self-signed key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, "", fmt.Errorf("tlsconf: self-signed serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)), // never zero
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"scgate development"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for i, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		if strings.TrimSpace(h) == "" || strings.ContainsAny(h, " \t\r\n/:@") {
			return nil, "", fmt.Errorf("tlsconf: self-signed host %d (%q) is not a host name or IP address", i+1, h)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, "", fmt.Errorf("tlsconf: self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", errors.Join(errors.New("tlsconf: self-signed certificate does not parse"), err)
	}
	cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, Fingerprint(der), nil
}
