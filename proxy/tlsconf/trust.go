package tlsconf

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// TrustOptions configures NewTrust: a client CA file, SPIFFE trust bundles,
// or both.
type TrustOptions struct {
	// ClientCAFile is a PEM bundle of CAs for client certificates in
	// general (DNS SAN and common-name identities). Optional.
	ClientCAFile string
	// Bundles maps each SPIFFE trust domain ("prod.example") to the PEM
	// bundle of the CAs of that trust domain alone. Optional.
	Bundles map[string]string
	// PollInterval is as in ClientCAOptions.
	PollInterval time.Duration
	// Logger receives load and reload reports. Nil discards them.
	Logger *zap.Logger
	// OnReload is called after every load attempt of one file, with name
	// "client_ca" for ClientCAFile and the trust domain for a bundle; see
	// ClientCAOptions.OnReload.
	OnReload func(name string, certs []*x509.Certificate, err error)
}

// Trust is the client CA file and the SPIFFE trust bundles, each reloaded
// on its own. Give it to ServerOptions.ClientCAs: handshakes verify against
// the union of every CA it holds, and the identity layer then checks each
// SPIFFE ID against the bundle of its own trust domain (Snapshot), so a CA
// of one trust domain cannot vouch for another's IDs.
type Trust struct {
	cas     *ClientCAs   // nil without ClientCAFile
	names   []string     // trust domains, sorted
	bundles []*ClientCAs // parallel to names
	cur     atomic.Pointer[TrustSnapshot]
}

// TrustSnapshot is one version of a Trust. It is never modified; any reload
// makes the next Snapshot call return a new one, so its pointer identifies
// a version.
type TrustSnapshot struct {
	// ClientCAs is the client CA file's pool; nil without one.
	ClientCAs *x509.CertPool
	// Bundles maps each trust domain to its CAs; nil without bundles.
	Bundles map[string][]*x509.Certificate
	// All holds every CA above: what handshakes verify against.
	All *x509.CertPool

	sources []*x509.CertPool // the member pools it was built from
}

// NewTrust loads every file once; any that cannot be loaded is an error
// naming it.
func NewTrust(opts TrustOptions) (*Trust, error) {
	if opts.ClientCAFile == "" && len(opts.Bundles) == 0 {
		return nil, errors.New("tlsconf: no client CA file and no trust bundle given")
	}
	t := &Trust{}
	member := func(name, file string) (*ClientCAs, error) {
		o := ClientCAOptions{File: file, PollInterval: opts.PollInterval, Logger: opts.Logger}
		if opts.OnReload != nil {
			o.OnReload = func(certs []*x509.Certificate, err error) { opts.OnReload(name, certs, err) }
		}
		return NewClientCAs(o)
	}
	if opts.ClientCAFile != "" {
		cas, err := member("client_ca", opts.ClientCAFile)
		if err != nil {
			return nil, err
		}
		t.cas = cas
	}
	for name := range opts.Bundles {
		t.names = append(t.names, name)
	}
	slices.Sort(t.names)
	for _, name := range t.names {
		b, err := member(name, opts.Bundles[name])
		if err != nil {
			return nil, fmt.Errorf("tlsconf: trust bundle of %q: %w", name, err)
		}
		t.bundles = append(t.bundles, b)
	}
	t.Snapshot()
	return t, nil
}

// members lists the loaded files, the client CA file first.
func (t *Trust) members() []*ClientCAs {
	var m []*ClientCAs
	if t.cas != nil {
		m = append(m, t.cas)
	}
	return append(m, t.bundles...)
}

// Pool returns the union of every CA, for handshakes.
func (t *Trust) Pool() *x509.CertPool { return t.Snapshot().All }

// Snapshot returns the current version. It is cheap when nothing changed
// (one pointer comparison per file).
func (t *Trust) Snapshot() *TrustSnapshot {
	members := t.members()
	if s := t.cur.Load(); s != nil {
		fresh := true
		for i, m := range members {
			if m.Pool() != s.sources[i] {
				fresh = false
				break
			}
		}
		if fresh {
			return s
		}
	}
	// Two callers racing a reload may both build one; either is right.
	s := &TrustSnapshot{All: x509.NewCertPool()}
	for _, m := range members {
		// The pool is read before the certificates (which a reload stores
		// first), so a snapshot is never older than the sources it records.
		s.sources = append(s.sources, m.Pool())
		for _, c := range m.Certs() {
			s.All.AddCert(c)
		}
	}
	if t.cas != nil {
		s.ClientCAs = s.sources[0]
	}
	if len(t.bundles) > 0 {
		s.Bundles = make(map[string][]*x509.Certificate, len(t.bundles))
		for i, b := range t.bundles {
			s.Bundles[t.names[i]] = b.Certs()
		}
	}
	t.cur.Store(s)
	return s
}

// Reload re-reads every file now; see ClientCAs.Reload. It returns every
// failure, and keeps the previous CAs of each file that failed.
func (t *Trust) Reload() error {
	var errs []error
	for _, m := range t.members() {
		errs = append(errs, m.Reload())
	}
	return errors.Join(errs...)
}

// Run watches every file until ctx is done; see ClientCAs.Run.
func (t *Trust) Run(ctx context.Context) error {
	members := t.members()
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() { errs[i] = m.Run(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
