package tlsconf

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/scgate/scgate/proxy/tlsconf/acmetest"
	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

// acmeRig is an ACME source with its two challenge listeners serving, in
// front of an in-process Pebble.
type acmeRig struct {
	pebble  *acmetest.Pebble
	acme    *ACME
	httpLn  net.Listener
	tlsLn   net.Listener
	url     string // https://127.0.0.1:port of the TLS listener
	certs   *certLog
	storage string
}

// certLog records OnCertificate calls.
type certLog struct {
	mu     sync.Mutex
	leaves map[string][]*x509.Certificate
}

func (c *certLog) record(domain string, leaf *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaves == nil {
		c.leaves = map[string][]*x509.Certificate{}
	}
	c.leaves[domain] = append(c.leaves[domain], leaf)
}

func (c *certLog) count(domain string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.leaves[domain])
}

type rigOptions struct {
	http, alpn bool
	clientCAs  *ClientCAs
	validity   time.Duration
	renewEvery time.Duration
	storage    string
	pebble     *acmetest.Pebble // reuse a started one
}

func newACMERig(t *testing.T, o rigOptions) *acmeRig {
	t.Helper()
	r := &acmeRig{pebble: o.pebble, certs: &certLog{}, storage: o.storage}
	if r.storage == "" {
		r.storage = t.TempDir()
	}
	if r.pebble == nil {
		r.pebble = acmetest.New(t)
	}
	roots := x509.NewCertPool()
	pemBytes, err := os.ReadFile(r.pebble.ServerCAFile)
	if err != nil || !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("Pebble's server CA: %v", err)
	}
	r.acme, err = NewACME(ACMEOptions{
		Domains: []string{"localhost"}, CA: r.pebble.DirectoryURL, Email: "ops@example.com",
		TrustedRoots: roots, Storage: r.storage, HTTPChallenge: o.http, TLSALPNChallenge: o.alpn,
		RenewCheckInterval: o.renewEvery, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		OnCertificate: r.certs.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.acme.Stop) // runs before Pebble and the listeners stop
	r.httpLn = listen(t)
	r.tlsLn = listen(t)
	errLog := log.New(testWriter{t}, "acme rig: ", 0)
	httpSrv := &http.Server{Handler: r.acme.HTTPHandler(http.NotFoundHandler()), ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog}
	go func() { _ = httpSrv.Serve(r.httpLn) }()
	t.Cleanup(func() { _ = httpSrv.Close() })
	cfg, err := ServerConfig(ServerOptions{GetCertificate: r.acme.GetCertificate, NextProtos: r.acme.NextProtos(), ClientCAs: o.clientCAs})
	if err != nil {
		t.Fatal(err)
	}
	// IdleTimeout: with none, net/http closes a connection idle for
	// ReadHeaderTimeout; the renewal test keeps one connection and a loaded
	// machine can leave it idle that long between two requests.
	tlsSrv := &http.Server{Handler: http.HandlerFunc(describeTLS), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: errLog}
	go func() { _ = tlsSrv.Serve(tls.NewListener(r.tlsLn, cfg)) }()
	t.Cleanup(func() { _ = tlsSrv.Close() })
	r.url = "https://" + r.tlsLn.Addr().String()
	if o.pebble == nil {
		r.pebble.Start(acmetest.Options{HTTPPort: port(r.httpLn), TLSPort: port(r.tlsLn), Validity: o.validity})
	}
	return r
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

func (r *acmeRig) manage(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.acme.Manage(ctx, r.httpLn.Addr(), r.tlsLn.Addr()); err != nil {
		t.Fatal(err)
	}
}

// pebbleClient trusts only Pebble's issuing root.
func (r *acmeRig) clientConfig(certs ...tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: r.pebble.Roots(), ServerName: "localhost"}
	if len(certs) > 0 {
		cfg.Certificates = certs
	}
	return cfg
}

func TestACMEObtainsWithHTTP01AndReusesStorage(t *testing.T) {
	r := newACMERig(t, rigOptions{http: true})
	r.manage(t)
	s, err := fetch(r.url, r.clientConfig())
	if err != nil {
		t.Fatalf("a client trusting only Pebble's root: %v", err)
	}
	if r.certs.count("localhost") == 0 {
		t.Error("OnCertificate was not called for the obtained certificate")
	}
	if leaf := r.acme.Leaf("localhost"); leaf == nil || leaf.SerialNumber.Cmp(s.serial) != 0 {
		t.Errorf("Leaf does not report the served certificate")
	}

	// A restart with the same storage serves the stored certificate: no
	// new order, so the serial is the same.
	r2 := newACMERig(t, rigOptions{http: true, storage: r.storage, pebble: r.pebble})
	r2.manage(t)
	s2, err := fetch(r2.url, r2.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if s2.serial.Cmp(s.serial) != 0 {
		t.Errorf("after a restart: serial %x, want the stored %x", s2.serial, s.serial)
	}
	if r2.certs.count("localhost") == 0 {
		t.Error("OnCertificate was not called for the certificate loaded from storage")
	}
}

// TestACMETLSALPNBehindMTLS: TLS-ALPN-01 is answered on a listener that
// requires client certificates, and ordinary clients still need one.
func TestACMETLSALPNBehindMTLS(t *testing.T) {
	clientCA := tlstest.NewCA(t, "client CA")
	caFile := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(caFile, clientCA.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cas, err := NewClientCAs(ClientCAOptions{File: caFile, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := newACMERig(t, rigOptions{alpn: true, clientCAs: cas})
	r.manage(t)
	pair, _, _ := clientCA.Issue(t, tlstest.LeafOptions{URIs: []string{"spiffe://prod.example/a"}, Client: true})
	s, err := fetch(r.url, r.clientConfig(pair))
	if err != nil {
		t.Fatalf("mTLS client: %v", err)
	}
	if !strings.Contains(s.body, "verified=1") {
		t.Errorf("server saw %q", s.body)
	}
	if _, err := fetch(r.url, r.clientConfig()); err == nil {
		t.Error("a client without a certificate was served")
	}
	// Offering acme-tls/1 alone outside a validation gets no service.
	conn, err := tls.Dial("tcp", r.tlsLn.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"acme-tls/1"}, ServerName: "localhost"})
	if err == nil {
		conn.Close()
		t.Error("an acme-tls/1 handshake completed with no challenge pending")
	}
}

// TestACMERenewalSwapsWithoutDroppingConnections: with a short lifetime,
// certmagic renews in the background; new handshakes get the new
// certificate, an open connection keeps working, and no request fails.
//
// The kept-alive connection is one tls.Conn the test dials and drives itself
// (HTTP/1.1 requests written and read one after another), so "one
// connection" is a fact of the test, not a count inferred from
// http.Transport: the transport silently redials when the server closes an
// idle connection and returns connections to its pool asynchronously, both
// of which opened a second connection on a loaded machine. If the server
// dropped this connection at the swap, the next request on it fails.
func TestACMERenewalSwapsWithoutDroppingConnections(t *testing.T) {
	r := newACMERig(t, rigOptions{http: true, alpn: true, validity: 24 * time.Second, renewEvery: 500 * time.Millisecond})
	r.manage(t)
	first, err := fetch(r.url, r.clientConfig())
	if err != nil {
		t.Fatal(err)
	}

	cfg := r.clientConfig()
	cfg.NextProtos = []string{"http/1.1"}
	kept, err := tls.Dial("tcp", r.tlsLn.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if got := kept.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first.serial) != 0 {
		t.Fatalf("the kept-alive connection got serial %x, want the first certificate %x", got, first.serial)
	}
	keptReader := bufio.NewReader(kept)
	// get sends one request on the kept connection and reads its response.
	get := func() error {
		// Generous: a loaded machine is slow, but a dropped connection
		// fails at once, not at the deadline.
		if err := kept.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
			return err
		}
		if _, err := io.WriteString(kept, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		resp, err := http.ReadResponse(keptReader, nil)
		if err != nil {
			return fmt.Errorf("reading: %w", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("reading the body: %w", err)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "verified=") {
			return fmt.Errorf("got %d %q", resp.StatusCode, body)
		}
		if resp.Close {
			return errors.New("the server announced it would close the connection")
		}
		return nil
	}
	if err := get(); err != nil {
		t.Fatalf("first request on the kept-alive connection: %v", err)
	}

	// Requests go on over that connection, one after another, until stopped.
	var requests atomic.Int32
	ctx, stop := context.WithCancel(context.Background())
	keptErr := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := get(); err != nil {
				keptErr <- fmt.Errorf("after %d requests: %w", requests.Load(), err)
				return
			}
			requests.Add(1)
		}
		keptErr <- nil
	}()
	defer func() { stop(); <-keptErr }()

	// New connections, until one is served the renewed certificate.
	deadline := time.Now().Add(45 * time.Second)
	var renewed seen
	for {
		s, err := fetch(r.url, r.clientConfig())
		if err != nil {
			t.Fatalf("a new connection during renewal: %v", err)
		} else if s.serial.Cmp(first.serial) != 0 {
			renewed = s
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no renewed certificate was served in time")
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
	}
	// The kept-alive connection still answers after the swap.
	before := requests.Load()
	waitFor(t, "the kept-alive connection to go on", func() error {
		select {
		case err := <-keptErr: // the loop ended: the connection failed
			keptErr <- nil // for the deferred stop
			t.Fatalf("the kept-alive connection: %v", err)
		default:
		}
		if requests.Load() < before+5 {
			return errors.New("too few requests since the swap")
		}
		return nil
	})
	stop()
	if err := <-keptErr; err != nil {
		t.Fatalf("the kept-alive connection: %v", err)
	}
	keptErr <- nil // for the deferred stop
	if r.certs.count("localhost") < 2 {
		t.Errorf("OnCertificate saw %d certificates, want the renewal too", r.certs.count("localhost"))
	}
	t.Logf("renewed: serial %x → %x; %d requests on one connection", first.serial, renewed.serial, requests.Load())
}

func TestNewACMEErrors(t *testing.T) {
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ok := ACMEOptions{Domains: []string{"scgate.example.com"}, CA: "https://acme.example/directory", Storage: t.TempDir(), HTTPChallenge: true}
	tests := []struct {
		name string
		edit func(*ACMEOptions)
		want string
	}{
		{"no domains", func(o *ACMEOptions) { o.Domains = nil }, "no domains"},
		{"wildcard", func(o *ACMEOptions) { o.Domains = []string{"*.example.com"} }, "wildcards need the DNS challenge"},
		{"bad name", func(o *ACMEOptions) { o.Domains = []string{"a b"} }, `"a b" is not a domain name`},
		{"no CA", func(o *ACMEOptions) { o.CA = "" }, "no CA"},
		{"no storage", func(o *ACMEOptions) { o.Storage = "" }, "no storage"},
		{"storage is a file", func(o *ACMEOptions) { o.Storage = file + "/sub" }, "ACME storage"},
		{"no challenge", func(o *ACMEOptions) { o.HTTPChallenge = false }, "both challenges are off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			a, err := NewACME(o)
			if err == nil {
				a.Stop()
			}
			wantErrContains(t, err, tt.want)
		})
	}
}
