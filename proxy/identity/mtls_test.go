package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

// pki is a server CA, the client CA the server trusts, and a stranger CA.
type pki struct {
	server, clients, stranger *tlstest.CA
	serverCert                tls.Certificate
}

func newPKI(t *testing.T) *pki {
	p := &pki{
		server:   tlstest.NewCA(t, "server CA"),
		clients:  tlstest.NewCA(t, "client CA"),
		stranger: tlstest.NewCA(t, "stranger CA"),
	}
	p.serverCert, _, _ = p.server.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}, Server: true})
	return p
}

// serve runs res behind a real TLS listener that verifies client
// certificates against the client CA with the given mode, and answers with
// what res said: "id=…", "none", or "refused: …".
func (p *pki) serve(t *testing.T, mode tls.ClientAuthType, res Resolver) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := res.Resolve(r)
		switch {
		case errors.Is(err, ErrNoIdentity):
			io.WriteString(w, "none")
		case err != nil:
			io.WriteString(w, "refused: "+err.Error())
		default:
			io.WriteString(w, "id="+id)
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.Listener = tls.NewListener(srv.Listener, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{p.serverCert},
		ClientCAs:    p.clients.Pool(),
		ClientAuth:   mode,
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return "https://" + srv.Listener.Addr().String()
}

// call makes one request over a new connection, presenting cert when given
// (whatever CAs the server asks for, so the server's verification is what
// decides).
func (p *pki) call(url string, cert *tls.Certificate) (string, error) {
	cfg := &tls.Config{RootCAs: p.server.Pool(), ServerName: "localhost"}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func mustMTLS(t *testing.T, opts MTLSOptions) Resolver {
	t.Helper()
	r, err := NewMTLS(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMTLSIdentities(t *testing.T) {
	p := newPKI(t)
	const stats = "spiffe://prod.example/ns/radio/sa/stats"
	tests := []struct {
		name string
		opts MTLSOptions
		leaf tlstest.LeafOptions
		want string // see answerMatches
		// notInErr must not appear in a refusal: certificate content
		// that could be a credential.
		notInErr string
	}{
		{"SPIFFE ID", MTLSOptions{}, tlstest.LeafOptions{URIs: []string{stats}}, "id=" + stats, ""},
		{"SPIFFE ID after another URI (not an X.509-SVID)", MTLSOptions{Source: SourceURI},
			tlstest.LeafOptions{URIs: []string{"https://radio.example/", stats}}, "refused: " + errManyURIs.Error(), "radio.example"},
		{"two SPIFFE IDs", MTLSOptions{Source: SourceURI},
			tlstest.LeafOptions{URIs: []string{"spiffe://prod.example/a", stats}}, "refused: " + errManyURIs.Error(), ""},
		{"trust domain allowed", MTLSOptions{TrustDomains: []string{"staging.example", "spiffe://prod.example"}},
			tlstest.LeafOptions{URIs: []string{stats}}, "id=" + stats, ""},
		{"trust domain not allowed", MTLSOptions{TrustDomains: []string{"prod.example"}},
			tlstest.LeafOptions{URIs: []string{"spiffe://staging.example/ns/radio/sa/stats"}},
			`refused: identity: client certificate's SPIFFE trust domain "staging.example" is not allowed`, ""},
		{"URI SANs that are not SPIFFE IDs", MTLSOptions{},
			tlstest.LeafOptions{URIs: []string{"https://user:hunter2@radio.example/"}}, "refused: " + errNoSPIFFEID.Error(), "hunter2"},
		{"no URI SAN", MTLSOptions{}, tlstest.LeafOptions{CommonName: "stats"}, "refused: " + errNoSPIFFEID.Error(), ""},
		{"DNS SAN", MTLSOptions{Source: SourceDNS},
			tlstest.LeafOptions{DNSNames: []string{"Stats.Radio.svc", "other.radio.svc"}, URIs: []string{stats}}, "id=stats.radio.svc", ""},
		{"no DNS SAN", MTLSOptions{Source: SourceDNS}, tlstest.LeafOptions{URIs: []string{stats}}, "refused: " + errNoDNSName.Error(), ""},
		{"common name", MTLSOptions{Source: SourceCN},
			tlstest.LeafOptions{CommonName: "playlist-sync", DNSNames: []string{"x.example"}}, "id=playlist-sync", ""},
		{"no common name", MTLSOptions{Source: SourceCN}, tlstest.LeafOptions{DNSNames: []string{"x.example"}}, "refused: " + errNoCN.Error(), ""},
		{"common name with control characters", MTLSOptions{Source: SourceCN},
			tlstest.LeafOptions{CommonName: "admin\nlevel=root"}, "refused: ", "level=root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := p.serve(t, tls.RequireAndVerifyClientCert, mustMTLS(t, tt.opts))
			leaf := tt.leaf
			leaf.Client = true
			cert, _, _ := p.clients.Issue(t, leaf)
			got, err := p.call(url, &cert)
			if err != nil {
				t.Fatal(err)
			}
			if !answerMatches(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if tt.notInErr != "" && strings.Contains(got, tt.notInErr) {
				t.Errorf("refusal %q repeats certificate content %q", got, tt.notInErr)
			}
		})
	}
}

// answerMatches compares a served answer with a want; a want ending in ": "
// only fixes the prefix.
func answerMatches(got, want string) bool {
	if strings.HasSuffix(want, ": ") {
		return strings.HasPrefix(got, want)
	}
	return got == want
}

func TestMTLSForeignCAFailsHandshakeWhenRequired(t *testing.T) {
	p := newPKI(t)
	url := p.serve(t, tls.RequireAndVerifyClientCert, mustMTLS(t, MTLSOptions{}))
	cert, _, _ := p.stranger.Issue(t, tlstest.LeafOptions{URIs: []string{"spiffe://prod.example/x"}, Client: true})
	if got, err := p.call(url, &cert); err == nil {
		t.Fatalf("a certificate from another CA got through: %q", got)
	}
	if got, err := p.call(url, nil); err == nil {
		t.Fatalf("no certificate got through: %q", got)
	}
}

func TestMTLSVerifyIfGivenWithoutCertificate(t *testing.T) {
	p := newPKI(t)
	url := p.serve(t, tls.VerifyClientCertIfGiven, mustMTLS(t, MTLSOptions{}))
	if got, err := p.call(url, nil); err != nil || got != "none" {
		t.Fatalf("got (%q, %v), want ErrNoIdentity", got, err)
	}
	cert, _, _ := p.clients.Issue(t, tlstest.LeafOptions{URIs: []string{"spiffe://prod.example/x"}, Client: true})
	if got, err := p.call(url, &cert); err != nil || got != "id=spiffe://prod.example/x" {
		t.Fatalf("with a certificate: (%q, %v)", got, err)
	}
}

// TestMTLSIgnoresUnverifiedCertificates covers connections whose server asked
// for a certificate without verifying it: what the peer sent proves nothing.
func TestMTLSIgnoresUnverifiedCertificates(t *testing.T) {
	p := newPKI(t)
	cert, _, _ := p.clients.Issue(t, tlstest.LeafOptions{URIs: []string{"spiffe://prod.example/x"}, Client: true})
	res := mustMTLS(t, MTLSOptions{})
	plain := httptest.NewRequest(http.MethodGet, "http://scgate/", nil)
	unverified := httptest.NewRequest(http.MethodGet, "https://scgate/", nil)
	unverified.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}
	for name, r := range map[string]*http.Request{"plain HTTP": plain, "unverified": unverified} {
		if id, err := res.Resolve(r); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("%s: got (%q, %v), want ErrNoIdentity", name, id, err)
		}
	}
}

// TestMTLSInChain shows the intended composition: mTLS callers are named by
// their certificate, callers without one fall back to a network rule, and a
// certificate naming nobody is refused rather than falling back.
func TestMTLSInChain(t *testing.T) {
	p := newPKI(t)
	loopback, err := NewCIDR(CIDROptions{Rules: []CIDRRule{rule("127.0.0.0/8", "local-tools"), rule("::1/128", "local-tools")}})
	if err != nil {
		t.Fatal(err)
	}
	url := p.serve(t, tls.VerifyClientCertIfGiven, Chain{mustMTLS(t, MTLSOptions{}), loopback})
	good, _, _ := p.clients.Issue(t, tlstest.LeafOptions{URIs: []string{"spiffe://prod.example/a"}, Client: true})
	nobody, _, _ := p.clients.Issue(t, tlstest.LeafOptions{CommonName: "no-spiffe", Client: true})
	for _, tc := range []struct {
		cert *tls.Certificate
		want string
	}{
		{&good, "id=spiffe://prod.example/a"},
		{nil, "id=local-tools"},
		{&nobody, "refused: " + errNoSPIFFEID.Error()},
	} {
		if got, err := p.call(url, tc.cert); err != nil || got != tc.want {
			t.Errorf("got (%q, %v), want %q", got, err, tc.want)
		}
	}
}

func TestNewMTLSErrors(t *testing.T) {
	tests := []struct {
		opts MTLSOptions
		want string
	}{
		{MTLSOptions{Source: "san"}, `source "san" is not known`},
		{MTLSOptions{Source: SourceDNS, TrustDomains: []string{"prod.example"}}, `only apply to source "uri"`},
		{MTLSOptions{TrustDomains: []string{"prod.example", "Bad Domain"}}, `trust domain 2 ("Bad Domain")`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.opts), func(t *testing.T) {
			_, err := NewMTLS(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
