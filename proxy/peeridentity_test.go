package proxy_test

// Caller identity from client certificates, through real TLS handshakes on
// proxy.Listen: SPIFFE IDs bound to their trust domain's bundle, identities
// re-verified on every request (CA removal, expiry), and the connection age
// limit.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/identity"
	"github.com/scgate/scgate/proxy/tlsconf"
	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

const (
	prodStats  = "spiffe://prod.example/ns/radio/sa/stats"
	otherStats = "spiffe://other.example/ns/radio/sa/stats"
)

// mtlsVault names the callers of these tests.
const mtlsVault = `
[callers]
"` + prodStats + `" = "reader"
"` + otherStats + `" = "reader"
"sync.radio.example" = "admin"
"reporting.radio.example" = "reader"

[[keys.admin]]
secret = "` + keyAdmin + `"

[[keys.reader]]
secret = "` + keyReader + `"
`

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// testAnchors turns a Trust's snapshot into identity.Anchors, once per
// snapshot, as cmd/scgate does.
type testAnchors struct {
	trust *tlsconf.Trust
	mu    sync.Mutex
	snap  *tlsconf.TrustSnapshot
	cur   *identity.Anchors
}

func (a *testAnchors) Anchors() *identity.Anchors {
	s := a.trust.Snapshot()
	a.mu.Lock()
	defer a.mu.Unlock()
	if s == a.snap {
		return a.cur
	}
	out := &identity.Anchors{Roots: s.ClientCAs}
	if s.Bundles != nil {
		set := x509bundle.NewSet()
		for name, certs := range s.Bundles {
			set.Add(x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString(name), certs))
		}
		out.Bundles = set
	}
	a.snap, a.cur = s, out
	return out
}

// mtlsGateway is a gateway served over TLS by proxy.Listen whose callers
// are named by their client certificates.
type mtlsGateway struct {
	addr   string
	server *tlstest.CA // issued the gateway's certificate
	trust  *tlsconf.Trust
	clock  *testClock
}

type mtlsGatewayOptions struct {
	clientCAFile string
	bundles      map[string]string
	source       string
	maxAge       time.Duration // ServerOptions.MaxConnectionAge
}

func newMTLSGateway(t *testing.T, o mtlsGatewayOptions) *mtlsGateway {
	t.Helper()
	g := &mtlsGateway{server: tlstest.NewCA(t, "gateway CA"), clock: &testClock{now: time.Now()}}
	serverCert, _, _ := g.server.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}, Server: true})
	trust, err := tlsconf.NewTrust(tlsconf.TrustOptions{ClientCAFile: o.clientCAFile, Bundles: o.bundles, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	g.trust = trust
	tlsCfg, err := tlsconf.ServerConfig(tlsconf.ServerOptions{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &serverCert, nil },
		ClientCAs:      trust,
	})
	if err != nil {
		t.Fatal(err)
	}
	anchors := &testAnchors{trust: trust}
	res, err := identity.NewMTLS(identity.MTLSOptions{Source: o.source, Anchors: anchors.Anchors, Now: g.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{identity: res, vault: fixedVault{parseVault(t, mtlsVault)}})
	srv, err := proxy.Listen(e.gateway.Config.Handler, proxy.ServerOptions{
		Name: "gateway", Addr: "127.0.0.1:0", TLSConfig: tlsCfg, MaxConnectionAge: o.maxAge,
	})
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, srv)
	g.addr = srv.Addr().String()
	return g
}

// mtlsClient keeps its connection(s) to the gateway open and counts them.
type mtlsClient struct {
	t     *testing.T
	g     *mtlsGateway
	http  *http.Client
	conns atomic.Int32 // connections opened
}

// client presents cert over HTTP/2 or, with h2 false, HTTP/1.1.
func (g *mtlsGateway) client(t *testing.T, cert tls.Certificate, h2 bool) *mtlsClient {
	t.Helper()
	cfg := &tls.Config{RootCAs: g.server.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{cert}}
	tr := &http.Transport{TLSClientConfig: cfg, MaxConnsPerHost: 1, ForceAttemptHTTP2: h2}
	if !h2 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &mtlsClient{t: t, g: g, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// answer is what one request got.
type answer struct {
	status   int
	code     string // Scgate-Error
	body     string
	proto    int  // major version
	newConn  bool // the request opened a connection
	closeHdr bool // the response asked to close the connection
}

func (c *mtlsClient) get() answer {
	c.t.Helper()
	var a answer
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			a.newConn = true
			c.conns.Add(1)
		}
	}}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+c.g.addr+"/api/v2/history/", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("request: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a.status, a.code, a.body, a.proto, a.closeHdr = resp.StatusCode, resp.Header.Get("Scgate-Error"), string(b), resp.ProtoMajor, resp.Close
	return a
}

// wantRefused checks a §5 unauthenticated answer.
func wantRefused(t *testing.T, what string, a answer) {
	t.Helper()
	var body struct{ Error, Message, RequestID string }
	if a.status != http.StatusUnauthorized || a.code != "unauthenticated" || json.Unmarshal([]byte(a.body), &body) != nil || body.Error != "unauthenticated" {
		t.Fatalf("%s: got %d %q %.200s, want 401 unauthenticated", what, a.status, a.code, a.body)
	}
}

func writePEM(t *testing.T, path string, pems ...[]byte) {
	t.Helper()
	var all []byte
	for _, p := range pems {
		all = append(all, p...)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, all, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestSPIFFETrustDomainBoundToBundle: a CA trusted for one trust domain
// cannot mint IDs of another, nor can the general client CA; a certificate
// with two URI SANs is refused; a bundle reload moves the trust.
func TestSPIFFETrustDomainBoundToBundle(t *testing.T) {
	dir := t.TempDir()
	prodCA, otherCA, generalCA := tlstest.NewCA(t, "prod CA"), tlstest.NewCA(t, "other CA"), tlstest.NewCA(t, "general CA")
	prodFile, otherFile, caFile := filepath.Join(dir, "prod.pem"), filepath.Join(dir, "other.pem"), filepath.Join(dir, "ca.pem")
	writePEM(t, prodFile, prodCA.PEM)
	writePEM(t, otherFile, otherCA.PEM)
	writePEM(t, caFile, generalCA.PEM)
	g := newMTLSGateway(t, mtlsGatewayOptions{clientCAFile: caFile, bundles: map[string]string{"prod.example": prodFile, "other.example": otherFile}})

	issue := func(ca *tlstest.CA, uris ...string) tls.Certificate {
		cert, _, _ := ca.Issue(t, tlstest.LeafOptions{URIs: uris, Client: true})
		return cert
	}
	for _, h2 := range []bool{false, true} {
		if a := g.client(t, issue(prodCA, prodStats), h2).get(); a.status != http.StatusOK {
			t.Fatalf("h2=%v: prod ID from the prod bundle: %d %s", h2, a.status, a.body)
		}
		if a := g.client(t, issue(otherCA, otherStats), h2).get(); a.status != http.StatusOK {
			t.Fatalf("h2=%v: other ID from the other bundle: %d %s", h2, a.status, a.body)
		}
		wantRefused(t, "prod ID minted by the other domain's CA", g.client(t, issue(otherCA, prodStats), h2).get())
		wantRefused(t, "prod ID minted by the general client CA", g.client(t, issue(generalCA, prodStats), h2).get())
		wantRefused(t, "two URI SANs", g.client(t, issue(prodCA, prodStats, "spiffe://prod.example/ns/radio/sa/admin"), h2).get())
	}

	// A new prod CA replaces the old one: its IDs are accepted, the old
	// CA's no longer, on a connection opened before as well.
	oldProd := g.client(t, issue(prodCA, prodStats), true)
	if a := oldProd.get(); a.status != http.StatusOK {
		t.Fatalf("before the bundle rotation: %d %s", a.status, a.body)
	}
	newProdCA := tlstest.NewCA(t, "prod CA 2")
	writePEM(t, prodFile, newProdCA.PEM)
	if err := g.trust.Reload(); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "old prod CA after the rotation, same connection", oldProd.get())
	if n := oldProd.conns.Load(); n != 1 {
		t.Fatalf("the refusal came on connection %d, want the first", n)
	}
	if a := g.client(t, issue(newProdCA, prodStats), true).get(); a.status != http.StatusOK {
		t.Fatalf("new prod CA after the rotation: %d %s", a.status, a.body)
	}
}

// TestIdentityRevokedWithItsCA: after the client CA bundle is replaced
// without a caller's CA, the caller's next request on a connection opened
// before is refused, over HTTP/1.1 and HTTP/2, while a caller whose CA
// stayed carries on.
func TestIdentityRevokedWithItsCA(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			dir := t.TempDir()
			keep, drop := tlstest.NewCA(t, "kept CA"), tlstest.NewCA(t, "removed CA")
			caFile := filepath.Join(dir, "ca.pem")
			writePEM(t, caFile, keep.PEM, drop.PEM)
			g := newMTLSGateway(t, mtlsGatewayOptions{clientCAFile: caFile, source: identity.SourceDNS})
			kept, _, _ := keep.Issue(t, tlstest.LeafOptions{DNSNames: []string{"reporting.radio.example"}, Client: true})
			dropped, _, _ := drop.Issue(t, tlstest.LeafOptions{DNSNames: []string{"sync.radio.example"}, Client: true})
			keptC, droppedC := g.client(t, kept, h2), g.client(t, dropped, h2)
			for _, c := range []*mtlsClient{keptC, droppedC} {
				for range 3 {
					if a := c.get(); a.status != http.StatusOK || a.proto != map[bool]int{false: 1, true: 2}[h2] {
						t.Fatalf("before the removal: %d HTTP/%d %s", a.status, a.proto, a.body)
					}
				}
			}
			writePEM(t, caFile, keep.PEM)
			if err := g.trust.Reload(); err != nil {
				t.Fatal(err)
			}
			wantRefused(t, "caller of the removed CA", droppedC.get())
			if a := keptC.get(); a.status != http.StatusOK {
				t.Fatalf("caller of the kept CA: %d %s", a.status, a.body)
			}
			if keptC.conns.Load() != 1 || droppedC.conns.Load() != 1 {
				t.Fatalf("connections opened: %d and %d, want 1 each (the point is the connection opened before)", keptC.conns.Load(), droppedC.conns.Load())
			}
		})
	}
}

// TestIdentityEndsWithItsCertificate: once the caller's certificate has
// expired (the resolver's clock moves past NotAfter), requests on the
// connection opened while it was valid are refused, over HTTP/1.1 and
// HTTP/2; SPIFFE and DNS identities alike.
func TestIdentityEndsWithItsCertificate(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		for _, spiffe := range []bool{false, true} {
			name := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2] + map[bool]string{false: "/dns", true: "/spiffe"}[spiffe]
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				ca := tlstest.NewCA(t, "client CA")
				file := filepath.Join(dir, "ca.pem")
				writePEM(t, file, ca.PEM)
				o := mtlsGatewayOptions{clientCAFile: file, source: identity.SourceDNS}
				leaf := tlstest.LeafOptions{DNSNames: []string{"sync.radio.example"}, Client: true, NotAfter: time.Now().Add(time.Hour)}
				if spiffe {
					o = mtlsGatewayOptions{bundles: map[string]string{"prod.example": file}}
					leaf = tlstest.LeafOptions{URIs: []string{prodStats}, Client: true, NotAfter: leaf.NotAfter}
				}
				g := newMTLSGateway(t, o)
				cert, _, _ := ca.Issue(t, leaf)
				c := g.client(t, cert, h2)
				if a := c.get(); a.status != http.StatusOK {
					t.Fatalf("while valid: %d %s", a.status, a.body)
				}
				g.clock.Set(cert.Leaf.NotAfter.Add(-time.Second))
				if a := c.get(); a.status != http.StatusOK {
					t.Fatalf("a second before expiry: %d %s", a.status, a.body)
				}
				g.clock.Set(cert.Leaf.NotAfter.Add(time.Second))
				wantRefused(t, "after expiry", c.get())
				if n := c.conns.Load(); n != 1 {
					t.Fatalf("%d connections, want 1", n)
				}
			})
		}
	}
}

// TestMaxConnectionAge: a connection older than server.max_connection_age
// is closed after its next response (HTTP/1.1: Connection: close; HTTP/2:
// a graceful GOAWAY), and the client's next request opens a new one, with
// no request failing.
func TestMaxConnectionAge(t *testing.T) {
	const maxAge = 300 * time.Millisecond
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			dir := t.TempDir()
			ca := tlstest.NewCA(t, "client CA")
			file := filepath.Join(dir, "ca.pem")
			writePEM(t, file, ca.PEM)
			g := newMTLSGateway(t, mtlsGatewayOptions{clientCAFile: file, source: identity.SourceDNS, maxAge: maxAge})
			cert, _, _ := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"sync.radio.example"}, Client: true})
			c := g.client(t, cert, h2)
			start := time.Now()
			first := c.get()
			if first.status != http.StatusOK || first.closeHdr {
				t.Fatalf("first request: %d close=%v", first.status, first.closeHdr)
			}
			sawClose := false
			deadline := time.Now().Add(10 * time.Second)
			for c.conns.Load() < 2 {
				if time.Now().After(deadline) {
					t.Fatal("the connection was never closed")
				}
				a := c.get()
				if a.status != http.StatusOK {
					t.Fatalf("a request failed around the connection's end: %d %s", a.status, a.body)
				}
				if a.newConn {
					break
				}
				if a.closeHdr {
					sawClose = true
				}
			}
			if age := time.Since(start); age < maxAge {
				t.Fatalf("a new connection after %v, before the maximum age %v", age, maxAge)
			}
			if !h2 && !sawClose {
				t.Fatal("HTTP/1.1: no response carried Connection: close")
			}
		})
	}
}
