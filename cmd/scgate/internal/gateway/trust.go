package gateway

import (
	"crypto/x509"
	"sync/atomic"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/zap"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/proxy/identity"
	"github.com/scgate/scgate/proxy/tlsconf"
)

// newTrust loads server.client_ca_file and [identity.mtls.trust_bundles],
// or returns nil when neither is set.
func newTrust(cfg *config.Config, log *zap.Logger, poll bool, onReload func(string, []*x509.Certificate, error)) (*tlsconf.Trust, error) {
	if !cfg.ClientCertsConfigured() {
		return nil, nil
	}
	opts := tlsconf.TrustOptions{
		ClientCAFile: cfg.Server.ClientCAFile, Bundles: cfg.Identity.MTLS.TrustBundles,
		Logger: log, OnReload: onReload,
	}
	if !poll {
		opts.PollInterval = -1
	}
	t, err := tlsconf.NewTrust(opts)
	if err != nil {
		if cfg.Server.ClientCAFile != "" {
			return nil, cfg.Wrap(err, "server", "client_ca_file")
		}
		return nil, cfg.Wrap(err, "identity", "mtls", "trust_bundles")
	}
	return t, nil
}

// anchorSource turns the Trust's current snapshot into the mtls resolver's
// Anchors, building them once per snapshot so that the resolver's
// per-connection cache (keyed on the pointer) holds until a reload.
type anchorSource struct {
	trust func() *tlsconf.Trust // nil until the listener's TLS is built
	none  *identity.Anchors     // vouches for nothing
	cur   atomic.Pointer[anchorVersion]
}

type anchorVersion struct {
	snap    *tlsconf.TrustSnapshot
	anchors *identity.Anchors
}

func newAnchorSource(trust func() *tlsconf.Trust) *anchorSource {
	return &anchorSource{trust: trust, none: &identity.Anchors{}}
}

// Anchors is the resolver's MTLSOptions.Anchors.
func (a *anchorSource) Anchors() *identity.Anchors {
	t := a.trust()
	if t == nil {
		return a.none
	}
	s := t.Snapshot()
	if v := a.cur.Load(); v != nil && v.snap == s {
		return v.anchors
	}
	out := &identity.Anchors{Roots: s.ClientCAs}
	if s.Bundles != nil {
		set := x509bundle.NewSet()
		for name, certs := range s.Bundles {
			td, err := spiffeid.TrustDomainFromString(name)
			if err != nil {
				continue // validated with the config
			}
			set.Add(x509bundle.FromX509Authorities(td, certs))
		}
		out.Bundles = set
	}
	a.cur.Store(&anchorVersion{snap: s, anchors: out})
	return out
}
