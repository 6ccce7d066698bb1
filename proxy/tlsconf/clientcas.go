package tlsconf

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ClientCAOptions configures NewClientCAs.
type ClientCAOptions struct {
	// File is a PEM bundle of the CA certificates that client certificates
	// must chain to. Required.
	File string
	// PollInterval is how often Run re-reads the file as a fallback to file
	// events. Zero means DefaultPollInterval; a negative value switches
	// polling off.
	PollInterval time.Duration
	// Logger receives load and reload reports. Nil discards them.
	Logger *zap.Logger
	// OnReload, when set, is called after every load attempt that read
	// something new: the first in NewClientCAs, every Reload, and each change
	// Run notices. On success certs are the bundle's certificates; on failure
	// certs is nil and the previous pool stays in use. It must not call
	// Reload.
	OnReload func(certs []*x509.Certificate, err error)
}

// ClientCAs is a reloadable pool of client CAs read from a PEM bundle. Give
// it to ServerOptions: each new handshake verifies client certificates
// against the pool current at that moment. A bundle that is empty, holds no
// certificates, or holds one that does not parse is reported and the
// previous pool stays in use.
type ClientCAs struct {
	file     string
	poll     time.Duration
	log      *zap.Logger
	onReload func([]*x509.Certificate, error)

	// pool is replaced, never modified, so its pointer identifies a version
	// of the bundle; ServerConfig caches its tls.Config on it.
	pool atomic.Pointer[x509.CertPool]
	// certs are the certificates of pool, stored before it.
	certs atomic.Pointer[[]*x509.Certificate]

	mu   sync.Mutex        // serialises reloads; handshakes never take it
	last [sha256.Size]byte // digest of the file at the last attempt; guarded by mu
}

// NewClientCAs loads the bundle once and returns a ClientCAs serving it.
func NewClientCAs(opts ClientCAOptions) (*ClientCAs, error) {
	if opts.File == "" {
		return nil, errors.New("tlsconf: no client CA file given: set the path of a PEM bundle of CA certificates")
	}
	c := &ClientCAs{
		file:     opts.File,
		poll:     pollInterval(opts.PollInterval),
		log:      opts.Logger,
		onReload: opts.OnReload,
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	certs, _, err := c.reload(true)
	if err != nil {
		return nil, err
	}
	c.log.Info("tlsconf: client CAs loaded", caFields(c.file, certs)...)
	return c, nil
}

// Pool returns the current pool. Callers must not modify it.
func (c *ClientCAs) Pool() *x509.CertPool {
	return c.pool.Load()
}

// Certs returns the certificates of the current pool. Callers must not
// modify them.
func (c *ClientCAs) Certs() []*x509.Certificate {
	if p := c.certs.Load(); p != nil {
		return *p
	}
	return nil
}

// Reload re-reads the bundle now and, if it is valid, uses it from the next
// handshake on. On error the previous pool stays in use. It reports to
// OnReload but does not log.
func (c *ClientCAs) Reload() error {
	_, _, err := c.reload(true)
	return err
}

// Run watches the bundle and reloads it when it changes, until ctx is done;
// it then returns nil. Reloads are logged (failures at warn level). It
// returns an error only when it cannot watch at all.
func (c *ClientCAs) Run(ctx context.Context) error {
	return watchFiles(ctx, []string{c.file}, c.poll, c.log, c.check)
}

func (c *ClientCAs) check() {
	certs, changed, err := c.reload(false)
	switch {
	case !changed:
	case err != nil:
		c.log.Warn("tlsconf: client CA reload failed; still using the previous CAs", zap.Error(err))
	default:
		c.log.Info("tlsconf: client CAs reloaded", caFields(c.file, certs)...)
	}
}

func (c *ClientCAs) reload(force bool) (certs []*x509.Certificate, changed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	contents, sum, err := readAll([]string{c.file})
	if !force && sum == c.last {
		return nil, false, nil
	}
	c.last = sum
	if err == nil {
		certs, err = parseBundle(c.file, contents[0])
	} else {
		err = fmt.Errorf("tlsconf: reading client CA file: %w (check the path and that scgate may read it)", err)
	}
	if err == nil {
		pool := x509.NewCertPool()
		for _, cert := range certs {
			pool.AddCert(cert)
		}
		c.certs.Store(&certs)
		c.pool.Store(pool)
	}
	if c.onReload != nil {
		c.onReload(certs, err)
	}
	return certs, true, err
}

// parseBundle returns every CERTIFICATE in a PEM bundle. Other block types
// are skipped, so a bundle with comments or parameters still loads; a
// CERTIFICATE block that does not parse fails the whole bundle, because a
// silently missing CA would refuse clients with no hint why.
func parseBundle(file string, data []byte) ([]*x509.Certificate, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("tlsconf: client CA file %q is empty: it must hold one or more PEM CERTIFICATE blocks", file)
	}
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if !isCertBlock(b.Type) {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: client CA file %q, PEM block %d: %w", file, n, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("tlsconf: client CA file %q holds no PEM CERTIFICATE block: it must hold the CA certificates client certificates chain to, in PEM", file)
	}
	return certs, nil
}

func caFields(file string, certs []*x509.Certificate) []zap.Field {
	subjects := make([]string, len(certs))
	for i, c := range certs {
		subjects[i] = c.Subject.String()
	}
	return []zap.Field{zap.String("file", file), zap.Int("count", len(certs)), zap.Strings("subjects", subjects)}
}
