package identity

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

// BenchmarkJWTResolve measures one token check on the request path (keys
// cached): parse, signature verification and claim checks.
func BenchmarkJWTResolve(b *testing.B) {
	for _, k := range []signingKey{newECKey(b, "ec"), newRSAKey(b, "rsa")} {
		b.Run(string(k.alg), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "jwks.json")
			writeJWKS(b, path, jwksJSON(b, k))
			clk := &clock{now: time.Now()}
			res := newJWTFromFile(b, path, clk)
			r := bearer(sign(b, k, claims(clk.Now())))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := res.Resolve(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkXFCCResolve measures the header resolver on Istio's header.
func BenchmarkXFCCResolve(b *testing.B) {
	res := mustHeader(b, HeaderOptions{Name: "X-Forwarded-Client-Cert", TrustedProxies: mustProxies(b, "127.0.0.0/8")})
	r := requestFrom("127.0.0.6:4000")
	r.Header.Set("X-Forwarded-Client-Cert", istioXFCC)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := res.Resolve(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCIDRBehindProxy measures the X-Forwarded-For walk.
func BenchmarkCIDRBehindProxy(b *testing.B) {
	res, err := NewCIDR(CIDROptions{Rules: []CIDRRule{rule("203.0.113.0/24", "partner")}, TrustedProxies: mustProxies(b, "10.0.0.0/8")})
	if err != nil {
		b.Fatal(err)
	}
	r := requestVia("10.0.0.5:1", "198.51.100.1, 203.0.113.9, 10.0.0.7")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := res.Resolve(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChainCIDRThenStatic is the chain of the bench's full pipeline: a
// cidr resolver that does not know the peer, then the static identity.
func BenchmarkChainCIDRThenStatic(b *testing.B) {
	res, err := NewCIDR(CIDROptions{Rules: []CIDRRule{rule("10.77.0.0/16", "other")}})
	if err != nil {
		b.Fatal(err)
	}
	st, err := Static("bench-caller")
	if err != nil {
		b.Fatal(err)
	}
	chain := Chain{res, st}
	r := requestFrom("127.0.0.1:40000")
	b.ReportAllocs()
	for b.Loop() {
		if id, err := chain.Resolve(r); err != nil || id != "bench-caller" {
			b.Fatal(id, err)
		}
	}
}

// BenchmarkMTLSResolve measures the per-request re-verification of a client
// certificate: with the per-connection cache (every request after a
// connection's first, until a CA reload) and without (a chain verification).
func BenchmarkMTLSResolve(b *testing.B) {
	ca := tlstest.NewCA(b, "client CA")
	cert, _, _ := ca.Issue(b, tlstest.LeafOptions{DNSNames: []string{"sync.radio.example"}, Client: true})
	anchors := &Anchors{Roots: ca.Pool()}
	res, err := NewMTLS(MTLSOptions{Source: SourceDNS, Anchors: func() *Anchors { return anchors }})
	if err != nil {
		b.Fatal(err)
	}
	for _, cached := range []bool{true, false} {
		b.Run(map[bool]string{true: "cached", false: "verify"}[cached], func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/api/v2/history/", nil)
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}, VerifiedChains: [][]*x509.Certificate{{cert.Leaf, ca.Cert}}}
			if cached {
				r = r.WithContext(WithPeerCache(r.Context()))
			}
			b.ReportAllocs()
			for b.Loop() {
				if id, err := res.Resolve(r); err != nil || id != "sync.radio.example" {
					b.Fatal(id, err)
				}
			}
		})
	}
}
