package tlsconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/scgate/scgate/proxy/tlsconf/acmetest"
	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, acmetest.IgnoreLeaks()...)
}

// waitFor is the poll-until-deadline helper: it calls cond until it returns
// nil, failing the test with cond's last error after ten seconds.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// serveTLS serves h behind cfg on a real loopback socket and returns the
// base URL. The TLS listener wraps httptest's plain one on purpose:
// Server.StartTLS would add httptest's own certificate to a clone of cfg,
// and crypto/tls prefers Certificates over GetCertificate when a client sends
// no SNI, which would hide the certificate under test.
func serveTLS(t *testing.T, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(describeTLS)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(testWriter{t}, "server: ", 0)
	srv.Listener = tls.NewListener(srv.Listener, cfg)
	srv.Start()
	t.Cleanup(srv.Close)
	return "https://" + srv.Listener.Addr().String()
}

// testWriter sends the test server's own log (refused handshakes) to the
// test log instead of stderr.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// describeTLS answers with what the server saw of the client's certificate.
func describeTLS(w http.ResponseWriter, r *http.Request) {
	cn := ""
	if len(r.TLS.VerifiedChains) > 0 {
		cn = r.TLS.VerifiedChains[0][0].Subject.CommonName
	}
	fmt.Fprintf(w, "verified=%d peer=%d cn=%s", len(r.TLS.VerifiedChains), len(r.TLS.PeerCertificates), cn)
}

// seen is what a client observed on one request over a new connection.
type seen struct {
	serial      *big.Int
	fingerprint string
	body        string
}

// fetch makes one GET over a fresh connection, so every call performs a new
// handshake against the server's current state.
func fetch(url string, cfg *tls.Config) (seen, error) {
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return seen{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return seen{}, err
	}
	leaf := resp.TLS.PeerCertificates[0]
	return seen{serial: leaf.SerialNumber, fingerprint: Fingerprint(leaf.Raw), body: string(body)}, nil
}

// clientConfig trusts serverCA for the name "localhost" and presents the
// first of certs, if any. It presents it whatever CAs the server names as
// acceptable: crypto/tls's own selection would quietly send no certificate
// for a foreign CA, and the tests want the server's verification exercised.
func clientConfig(serverCA *tlstest.CA, certs ...tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: serverCA.Pool(), ServerName: "localhost"}
	if len(certs) > 0 {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &certs[0], nil
		}
	}
	return cfg
}

// serialIs is a waitFor condition: the server presents the certificate with
// the given serial on a new connection.
func serialIs(url string, cfg *tls.Config, want *big.Int) func() error {
	return func() error {
		s, err := fetch(url, cfg)
		if err != nil {
			return err
		}
		if s.serial.Cmp(want) != 0 {
			return fmt.Errorf("served serial %x, want %x", s.serial, want)
		}
		return nil
	}
}

// run starts fn (a Run method) and stops it when the test ends, waiting for
// it to return so that goleak sees no stray goroutine.
func run(t *testing.T, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// secretDir lays files out the way the kubelet writes a Secret volume: the
// data lives in a generation directory, "..data" is a symlink to it, and each
// visible name is a symlink through "..data". An update writes a new
// generation and renames a fresh symlink over "..data"; the visible files are
// never written, so only a watch on the directory notices.
type secretDir struct {
	t   *testing.T
	dir string
	gen int
}

func newSecretDir(t *testing.T, files map[string][]byte) *secretDir {
	s := &secretDir{t: t, dir: t.TempDir()}
	s.update(files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(s.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *secretDir) path(name string) string { return filepath.Join(s.dir, name) }

func (s *secretDir) update(files map[string][]byte) {
	s.t.Helper()
	old := fmt.Sprintf("..2026_01_01_00_00_%02d", s.gen)
	s.gen++
	gen := fmt.Sprintf("..2026_01_01_00_00_%02d", s.gen)
	tlstest.WriteFiles(s.t, filepath.Join(s.dir, gen), files)
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(s.dir, old)); err != nil {
		s.t.Fatal(err)
	}
}

func wantErrContains(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}
