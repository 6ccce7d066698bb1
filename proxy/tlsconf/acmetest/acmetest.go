// Package acmetest runs Pebble, Let's Encrypt's ACME test server, inside a
// test on loopback, so that ACME code is tested against a real CA doing
// real HTTP-01 and TLS-ALPN-01 validations.
//
// Pebble's validation authority connects to the ports it is built with, and
// the gateway under test usually learns its ports only once it has bound
// them; so New starts the directory's HTTPS listener at once (its URL goes
// into the gateway's config) and Start builds the CA once the ports are
// known.
//
// Some goroutines outlive a test by design: Pebble's validation queue (one
// per CA, with no way to stop it), certmagic's per-account rate limiters
// (kept for the life of the process) and its lock-file refresher (which
// ends within seconds of the lock's release). TestMain functions that use
// this package pass IgnoreLeaks to goleak.
package acmetest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"go.uber.org/goleak"
)

// IgnoreLeaks are the goleak options for the goroutines described in the
// package documentation; nothing else is ignored.
func IgnoreLeaks() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"),
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).loop"),
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
	}
}

// Options configures Start.
type Options struct {
	// HTTPPort is where the validation authority connects for HTTP-01 and
	// TLSPort for TLS-ALPN-01, on the identifier's address ("localhost").
	HTTPPort, TLSPort int
	// Validity is the lifetime of issued certificates, in whole seconds;
	// zero means Pebble's default of 90 days.
	Validity time.Duration
}

// Pebble is one in-process ACME CA.
type Pebble struct {
	// DirectoryURL is the ACME directory to configure in the client.
	DirectoryURL string
	// ServerCAFile is a PEM file with the certificate the directory is
	// served with: the client's extra trusted root for talking to the CA.
	ServerCAFile string

	t       testing.TB
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	ca      *ca.CAImpl
	logs    *lockedBuffer
}

// New starts the directory's HTTPS listener on loopback; it answers 503
// until Start. Everything stops when the test ends.
func New(t testing.TB) *Pebble {
	t.Helper()
	p := &Pebble{t: t, logs: &lockedBuffer{}}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := p.handler.Load()
		if h == nil {
			http.Error(w, "acmetest: Pebble is not started yet", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	p.srv.Config.ErrorLog = log.New(p.logs, "pebble-http: ", 0)
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	p.DirectoryURL = p.srv.URL + wfe.DirectoryPath
	p.ServerCAFile = filepath.Join(t.TempDir(), "pebble-server-ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	if err := os.WriteFile(p.ServerCAFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Pebble's log:\n%s", p.logs.String())
		}
	})
	return p
}

// Start builds the CA, validation authority and front end and starts
// answering. It sets PEBBLE_VA_NOSLEEP (no random validation delay) and
// PEBBLE_WFE_NONCEREJECT=0 (no deliberately refused nonces) for the test,
// so the test cannot be parallel.
func (p *Pebble) Start(o Options) {
	p.t.Helper()
	if tt, ok := p.t.(interface{ Setenv(k, v string) }); ok {
		tt.Setenv("PEBBLE_VA_NOSLEEP", "1")
		tt.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	}
	logger := log.New(p.logs, "pebble: ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: uint64(o.Validity / time.Second)}}
	p.ca = ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	v := va.New(logger, o.HTTPPort, o.TLSPort, false, "", store)
	front := wfe.New(logger, store, v, p.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	h := front.Handler()
	p.handler.Store(&h)
}

// Roots is a pool with the root that signs the certificates Pebble issues:
// what a client that trusts only this CA uses.
func (p *Pebble) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.GetRootCert(0).Cert)
	return pool
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
