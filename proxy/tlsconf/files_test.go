package tlsconf

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/internal/filewatch"
	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

// reloads records what OnReload reported, for tests to wait on.
type reloads struct {
	mu     sync.Mutex
	leaves []*x509.Certificate
	errs   []error
}

func (r *reloads) record(leaf *x509.Certificate, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err)
		return
	}
	r.leaves = append(r.leaves, leaf)
}

func (r *reloads) counts() (ok, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.leaves), len(r.errs)
}

// filesServer serves a Files through ServerConfig and returns the URL.
func filesServer(t *testing.T, f *Files) string {
	t.Helper()
	cfg, err := ServerConfig(ServerOptions{GetCertificate: f.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	return serveTLS(t, cfg, nil)
}

func TestNewFilesErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "server CA")
	_, certA, keyA := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	_, _, keyB := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	dir := t.TempDir()
	tlstest.WriteFiles(t, dir, map[string][]byte{
		"a.crt": certA, "a.key": keyA, "b.key": keyB,
		"garbage": []byte("not PEM at all\n"),
	})
	p := func(name string) string { return filepath.Join(dir, name) }

	tests := []struct {
		name      string
		opts      FilesOptions
		wantParts []string
	}{
		{"no cert file", FilesOptions{KeyFile: p("a.key")}, []string{"no certificate file"}},
		{"no key file", FilesOptions{CertFile: p("a.crt")}, []string{"no key file"}},
		{"missing cert", FilesOptions{CertFile: p("missing.crt"), KeyFile: p("a.key")}, []string{p("missing.crt"), "check the path"}},
		{"cert not PEM", FilesOptions{CertFile: p("garbage"), KeyFile: p("a.key")}, []string{p("garbage"), "no PEM CERTIFICATE"}},
		{"key not PEM", FilesOptions{CertFile: p("a.crt"), KeyFile: p("garbage")}, []string{p("garbage"), "no PEM private key"}},
		{"cert and key swapped", FilesOptions{CertFile: p("a.key"), KeyFile: p("a.crt")}, []string{p("a.key"), "no PEM CERTIFICATE"}},
		{"key of another cert", FilesOptions{CertFile: p("a.crt"), KeyFile: p("b.key")}, []string{p("a.crt"), p("b.key"), "do not form a pair"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFiles(tt.opts)
			if f != nil {
				t.Errorf("got a Files despite the error")
			}
			wantErrContains(t, err, tt.wantParts...)
		})
	}
}

func TestFilesServesAndReportsFirstLoad(t *testing.T) {
	ca := tlstest.NewCA(t, "server CA")
	pair, certPEM, keyPEM := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}, Server: true})
	dir := t.TempDir()
	tlstest.WriteFiles(t, dir, map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM})
	var rec reloads
	f, err := NewFiles(FilesOptions{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), OnReload: rec.record})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Leaf().SerialNumber; got.Cmp(pair.Leaf.SerialNumber) != 0 {
		t.Errorf("Leaf serial %x, want %x", got, pair.Leaf.SerialNumber)
	}
	if ok, failed := rec.counts(); ok != 1 || failed != 0 {
		t.Errorf("OnReload after NewFiles: %d ok, %d failed; want 1, 0", ok, failed)
	}
	url := filesServer(t, f)
	if err := serialIs(url, clientConfig(ca), pair.Leaf.SerialNumber)(); err != nil {
		t.Fatal(err)
	}
}

func TestFilesReloadOnRewrite(t *testing.T) {
	ca := tlstest.NewCA(t, "server CA")
	_, cert1, key1 := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	pair2, cert2, key2 := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	dir := t.TempDir()
	tlstest.WriteFiles(t, dir, map[string][]byte{"tls.crt": cert1, "tls.key": key1})
	core, logs := observer.New(zapcore.InfoLevel)
	f, err := NewFiles(FilesOptions{
		CertFile:     filepath.Join(dir, "tls.crt"),
		KeyFile:      filepath.Join(dir, "tls.key"),
		PollInterval: -1, // file events alone must do it
		Logger:       zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	url := filesServer(t, f)
	run(t, f.Run)

	tlstest.WriteFiles(t, dir, map[string][]byte{"tls.crt": cert2, "tls.key": key2})
	waitFor(t, "the rewritten certificate to be served", serialIs(url, clientConfig(ca), pair2.Leaf.SerialNumber))
	if n := logs.FilterMessage("tlsconf: certificate reloaded").Len(); n < 1 {
		t.Errorf("no reload logged; logs: %v", logs.All())
	}
}

func TestFilesReloadOnSecretSymlinkSwap(t *testing.T) {
	ca := tlstest.NewCA(t, "server CA")
	_, cert1, key1 := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	pair2, cert2, key2 := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	secret := newSecretDir(t, map[string][]byte{"tls.crt": cert1, "tls.key": key1})
	f, err := NewFiles(FilesOptions{CertFile: secret.path("tls.crt"), KeyFile: secret.path("tls.key"), PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	url := filesServer(t, f)
	run(t, f.Run)

	secret.update(map[string][]byte{"tls.crt": cert2, "tls.key": key2})
	waitFor(t, "the swapped-in certificate to be served", serialIs(url, clientConfig(ca), pair2.Leaf.SerialNumber))
}

func TestFilesMismatchedPairKeepsOldCert(t *testing.T) {
	ca := tlstest.NewCA(t, "server CA")
	pair1, cert1, key1 := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	pair2, cert2, key2 := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	_, _, key3 := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	secret := newSecretDir(t, map[string][]byte{"tls.crt": cert1, "tls.key": key1})
	core, logs := observer.New(zapcore.InfoLevel)
	var rec reloads
	f, err := NewFiles(FilesOptions{
		CertFile: secret.path("tls.crt"), KeyFile: secret.path("tls.key"),
		PollInterval: -1, Logger: zap.New(core), OnReload: rec.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	url := filesServer(t, f)
	client := clientConfig(ca)
	run(t, f.Run)

	// A new certificate with somebody else's key: refused, old one served.
	secret.update(map[string][]byte{"tls.crt": cert2, "tls.key": key3})
	waitFor(t, "the failed reload to be reported", func() error {
		if _, failed := rec.counts(); failed == 0 {
			return errString("OnReload has not reported a failure")
		}
		return nil
	})
	if err := serialIs(url, client, pair1.Leaf.SerialNumber)(); err != nil {
		t.Fatalf("after a mismatched pair: %v", err)
	}
	warned := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("still serving the previous certificate")
	if warned.Len() == 0 {
		t.Errorf("no warning logged; logs: %v", logs.All())
	}
	if err := f.Reload(); err == nil {
		t.Errorf("Reload of a mismatched pair returned no error")
	}

	// Fixing the key makes the new certificate live.
	secret.update(map[string][]byte{"tls.crt": cert2, "tls.key": key2})
	waitFor(t, "the repaired pair to be served", serialIs(url, client, pair2.Leaf.SerialNumber))
}

// TestFilesPollFallback checks the poll alone, as when fsnotify is
// unavailable: the loop runs without a watcher.
func TestFilesPollFallback(t *testing.T) {
	ca := tlstest.NewCA(t, "server CA")
	_, cert1, key1 := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	pair2, cert2, key2 := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}})
	dir := t.TempDir()
	tlstest.WriteFiles(t, dir, map[string][]byte{"tls.crt": cert1, "tls.key": key1})
	var rec reloads
	f, err := NewFiles(FilesOptions{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), OnReload: rec.record})
	if err != nil {
		t.Fatal(err)
	}
	run(t, func(ctx context.Context) error {
		return filewatch.Run(ctx, filewatch.Options{
			Files: func() []string { return []string{f.certFile, f.keyFile} }, Check: f.check,
			PollInterval: 10 * time.Millisecond, DisableNotify: true, Logger: zap.NewNop(),
		})
	})

	tlstest.WriteFiles(t, dir, map[string][]byte{"tls.crt": cert2, "tls.key": key2})
	waitFor(t, "the poll to pick up the new pair", func() error {
		if ok, _ := rec.counts(); ok < 2 {
			return errString("no second successful load yet")
		}
		return nil
	})
	if got := f.Leaf().SerialNumber; got.Cmp(pair2.Leaf.SerialNumber) != 0 {
		t.Fatalf("serving serial %x, want %x", got, pair2.Leaf.SerialNumber)
	}
	// Unchanged files are not reloaded on every tick.
	before, _ := rec.counts()
	for range 3 {
		f.check()
	}
	if after, _ := rec.counts(); after != before {
		t.Errorf("checks of unchanged files reported %d more loads", after-before)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
