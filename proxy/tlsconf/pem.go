package tlsconf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"strings"
)

// hasPEMBlock reports whether data holds a PEM block whose type satisfies ok.
func hasPEMBlock(data []byte, ok func(typ string) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if ok(b.Type) {
			return true
		}
	}
}

func isCertBlock(typ string) bool { return typ == "CERTIFICATE" }

// isKeyBlock accepts "PRIVATE KEY", "EC PRIVATE KEY" and "RSA PRIVATE KEY",
// the forms tls.X509KeyPair understands.
func isKeyBlock(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }

// Fingerprint returns the SHA-256 digest of a DER certificate as
// colon-separated upper-case hex ("AB:CD:…"), the form browsers and openssl
// x509 -fingerprint -sha256 print, so an operator can compare what scgate
// logged with what a client sees.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	hexs := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	b.Grow(len(hexs) + len(sum) - 1)
	for i := 0; i < len(hexs); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hexs[i : i+2])
	}
	return b.String()
}
