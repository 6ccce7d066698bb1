package tlsconf

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// FilesOptions configures NewFiles.
type FilesOptions struct {
	// CertFile is the PEM file holding the server certificate, followed by
	// any intermediates. Required.
	CertFile string
	// KeyFile is the PEM file holding the certificate's private key (PKCS#8,
	// PKCS#1 or SEC 1). Required.
	KeyFile string
	// PollInterval is how often Run re-reads the files as a fallback to file
	// events. Zero means DefaultPollInterval; a negative value switches
	// polling off and relies on file events alone.
	PollInterval time.Duration
	// Logger receives load and reload reports. Nil discards them.
	Logger *zap.Logger
	// OnReload, when set, is called after every load attempt that read
	// something new: the first in NewFiles, every Reload, and each change Run
	// notices. On success leaf is the new certificate and err is nil; on
	// failure leaf is nil and the previous certificate is still served. It
	// is the place for metrics such as the certificate's expiry. It runs
	// while the reload is in progress, so it must not call Reload.
	OnReload func(leaf *x509.Certificate, err error)
}

// Files serves a certificate and key from PEM files and reloads them when
// they change. Run watches the files' directories with fsnotify, so both an
// in-place rewrite and a Kubernetes Secret's "..data" symlink swap are seen,
// and also polls, for file systems that send no events. A new pair that does
// not parse, or whose key does not belong to the certificate, is reported and
// the previous pair keeps serving.
//
// Its methods are safe for concurrent use; GetCertificate never blocks on a
// reload.
type Files struct {
	certFile, keyFile string
	poll              time.Duration
	log               *zap.Logger
	onReload          func(*x509.Certificate, error)

	cur atomic.Pointer[tls.Certificate]

	mu   sync.Mutex        // serialises reloads; handshakes never take it
	last [sha256.Size]byte // digest of the files at the last attempt; guarded by mu
}

// NewFiles loads the pair once and returns a Files serving it. The error
// names the file at fault and what to fix.
func NewFiles(opts FilesOptions) (*Files, error) {
	if opts.CertFile == "" {
		return nil, errors.New("tlsconf: no certificate file given: set the path of the PEM certificate (chain) file")
	}
	if opts.KeyFile == "" {
		return nil, errors.New("tlsconf: no key file given: set the path of the PEM private key file")
	}
	f := &Files{
		certFile: opts.CertFile,
		keyFile:  opts.KeyFile,
		poll:     pollInterval(opts.PollInterval),
		log:      opts.Logger,
		onReload: opts.OnReload,
	}
	if f.log == nil {
		f.log = zap.NewNop()
	}
	if _, err := f.reload(true); err != nil {
		return nil, err
	}
	f.logLoaded("tlsconf: certificate loaded")
	return f, nil
}

// GetCertificate returns the current certificate. It has the signature of
// tls.Config.GetCertificate.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

// Leaf returns the current leaf certificate.
func (f *Files) Leaf() *x509.Certificate {
	return f.cur.Load().Leaf
}

// Reload re-reads both files now and, if they form a valid pair, serves it
// from the next handshake on. On error the previous pair keeps serving. It
// reports to OnReload but does not log: the caller decides what to say.
func (f *Files) Reload() error {
	_, err := f.reload(true)
	return err
}

// Run watches the files and reloads them when they change, until ctx is
// done; it then returns nil. Successful reloads are logged at info level,
// failed ones at warn level. It returns an error only when it cannot watch
// at all: no file events and polling switched off.
func (f *Files) Run(ctx context.Context) error {
	return watchFiles(ctx, []string{f.certFile, f.keyFile}, f.poll, f.log, f.check)
}

// check is Run's reaction to a possible change: reload only when the files'
// contents differ from the last attempt, and log the outcome.
func (f *Files) check() {
	changed, err := f.reload(false)
	switch {
	case !changed:
	case err != nil:
		f.log.Warn("tlsconf: certificate reload failed; still serving the previous certificate",
			zap.Error(err), zap.String("serial", serialHex(f.Leaf())))
	default:
		f.logLoaded("tlsconf: certificate reloaded")
	}
}

// reload reads the files and, when force is set or their contents changed
// since the last attempt, builds a new pair and swaps it in. changed reports
// whether an attempt was made.
func (f *Files) reload(force bool) (changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	contents, sum, err := readAll([]string{f.certFile, f.keyFile})
	if !force && sum == f.last {
		return false, nil
	}
	f.last = sum
	var cert *tls.Certificate
	if err == nil {
		cert, err = loadPair(f.certFile, f.keyFile, contents[0], contents[1])
	} else {
		err = fmt.Errorf("tlsconf: reading certificate and key: %w (check the path and that scgate may read it)", err)
	}
	if err == nil {
		f.cur.Store(cert)
	}
	if f.onReload != nil {
		var leaf *x509.Certificate
		if cert != nil {
			leaf = cert.Leaf
		}
		f.onReload(leaf, err)
	}
	return true, err
}

func (f *Files) logLoaded(msg string) {
	leaf := f.Leaf()
	fields := []zap.Field{
		zap.String("cert_file", f.certFile),
		zap.String("subject", leaf.Subject.String()),
		zap.String("serial", serialHex(leaf)),
		zap.Time("not_after", leaf.NotAfter),
		zap.String("sha256", Fingerprint(f.cur.Load().Certificate[0])),
	}
	if time.Now().After(leaf.NotAfter) {
		// Serving it anyway beats serving nothing, but clients will refuse it.
		f.log.Warn(msg+"; it has EXPIRED", fields...)
		return
	}
	f.log.Info(msg, fields...)
}

// loadPair builds a certificate from PEM contents, with errors that say which
// file is wrong and how.
func loadPair(certFile, keyFile string, certPEM, keyPEM []byte) (*tls.Certificate, error) {
	if !hasPEMBlock(certPEM, isCertBlock) {
		return nil, fmt.Errorf("tlsconf: certificate file %q holds no PEM CERTIFICATE block: it must hold the server certificate, then any intermediates, in PEM", certFile)
	}
	if !hasPEMBlock(keyPEM, isKeyBlock) {
		return nil, fmt.Errorf("tlsconf: key file %q holds no PEM private key block: it must hold the certificate's private key in PEM", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: certificate file %q and key file %q do not form a pair: %w (the key must be the private key of the first certificate in the certificate file)", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		// X509KeyPair fills Leaf unless GODEBUG x509keypairleaf=0 says not to.
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlsconf: certificate file %q: %w", certFile, err)
		}
	}
	return &cert, nil
}

func serialHex(c *x509.Certificate) string {
	return c.SerialNumber.Text(16)
}
