package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Where NewMTLS takes the identity from.
const (
	// SourceURI takes the SPIFFE ID from the certificate's URI SAN.
	SourceURI = "uri"
	// SourceDNS takes the first DNS SAN.
	SourceDNS = "dns"
	// SourceCN takes the subject common name.
	SourceCN = "cn"
)

// MTLSOptions configures NewMTLS.
type MTLSOptions struct {
	// Source is where the identity comes from: SourceURI (the default when
	// empty), SourceDNS or SourceCN.
	Source string
	// TrustDomains, for SourceURI only, are the SPIFFE trust domains
	// accepted ("prod.example" or "spiffe://prod.example"). Empty accepts
	// any trust domain the anchors vouch for.
	TrustDomains []string
	// Anchors returns the trust anchors current now; every request's peer
	// certificate is verified against them again (the verdict is cached per
	// connection while the anchors and the clock allow), so a CA removed
	// from the bundle, or a certificate that expired, stops naming a caller
	// on connections opened before. It must return the same pointer for as
	// long as the anchors do not change. Nil keeps the handshake's verdict
	// and only rechecks the certificates' validity windows.
	Anchors func() *Anchors
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Anchors is one version of the CAs that vouch for client certificates.
// It must not be modified once handed out: a reload makes a new one.
type Anchors struct {
	// Roots vouch for DNS SAN and common-name identities, and for SPIFFE IDs
	// when Bundles is nil. Nil: no such CA is configured.
	Roots *x509.CertPool
	// Bundles, when set, binds each SPIFFE trust domain to its own CAs: a
	// SPIFFE ID is accepted only when the certificate chains to the bundle
	// of the trust domain it names, never through Roots or another domain's
	// bundle.
	Bundles x509bundle.Source
}

type mtls struct {
	source  string
	domains map[spiffeid.TrustDomain]bool // nil: any
	anchors func() *Anchors
	now     func() time.Time
}

// NewMTLS returns a Resolver that names the caller by its client
// certificate. It only looks at a connection whose certificate the TLS
// server verified (r.TLS.VerifiedChains); a plain connection, or one without
// a verified client certificate, gives ErrNoIdentity. Each request then
// verifies the peer's chain again against the current Anchors at the
// current time (see MTLSOptions.Anchors).
//
// A verified certificate that does not carry a usable identity is refused
// rather than passed on: for SourceURI, not exactly one URI SAN (the SPIFFE
// X.509-SVID rule), a URI SAN that is not a SPIFFE ID, a trust domain not
// in TrustDomains, or a chain that does not reach its trust domain's
// bundle; for SourceDNS, no DNS SAN; for SourceCN, an empty common name.
// The SPIFFE identity is the full "spiffe://trust-domain/path"; a DNS name
// is lower-cased, since DNS names do not distinguish case.
func NewMTLS(opts MTLSOptions) (Resolver, error) {
	m := &mtls{source: opts.Source, anchors: opts.Anchors, now: opts.Now}
	if m.now == nil {
		m.now = time.Now
	}
	switch opts.Source {
	case "":
		m.source = SourceURI
	case SourceURI, SourceDNS, SourceCN:
	default:
		return nil, fmt.Errorf("identity: mtls source %q is not known: use %q, %q or %q", opts.Source, SourceURI, SourceDNS, SourceCN)
	}
	if len(opts.TrustDomains) == 0 {
		return m, nil
	}
	if m.source != SourceURI {
		return nil, fmt.Errorf("identity: mtls trust domains only apply to source %q, not %q", SourceURI, m.source)
	}
	m.domains = make(map[spiffeid.TrustDomain]bool, len(opts.TrustDomains))
	for i, s := range opts.TrustDomains {
		td, err := spiffeid.TrustDomainFromString(s)
		if err != nil {
			return nil, fmt.Errorf("identity: mtls trust domain %d (%q): %w", i+1, s, err)
		}
		m.domains[td] = true
	}
	return m, nil
}

var (
	errNoSPIFFEID   = errors.New("identity: client certificate has no SPIFFE ID in its URI SANs")
	errManyURIs     = errors.New("identity: client certificate has more than one URI SAN; a SPIFFE X.509-SVID has exactly one")
	errNoDNSName    = errors.New("identity: client certificate has no DNS SAN")
	errNoCN         = errors.New("identity: client certificate has no subject common name")
	errNotAnchored  = errors.New("identity: client certificate no longer chains to a trusted client CA (the CA was removed, or the certificate expired); reconnect with a current certificate")
	errOutOfWindow  = errors.New("identity: client certificate is expired or not yet valid; reconnect with a current certificate")
	errNoRootsForID = errors.New("identity: no client CA vouches for DNS or common-name identities (server.client_ca_file)")
)

// Resolve implements Resolver.
func (m *mtls) Resolve(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 || len(r.TLS.PeerCertificates) == 0 {
		// Unverified peer certificates (RequestClientCert and the like)
		// prove nothing, so they are not looked at.
		return "", ErrNoIdentity
	}
	now := m.now()
	var anchors *Anchors
	if m.anchors != nil {
		anchors = m.anchors()
	}
	leaf := r.TLS.PeerCertificates[0]
	cache := peerCacheFrom(r.Context())
	if id, hit, err := cache.lookup(m, leaf, anchors, now); hit {
		return id, err
	}
	id, chain, err := m.verify(r.TLS.PeerCertificates, r.TLS.VerifiedChains[0], anchors, now)
	cache.store(m, leaf, anchors, id, chain, err)
	if err != nil {
		return "", err
	}
	return id, nil
}

// verify names the caller of a peer chain and checks that chain against
// anchors at now. It returns the chain that vouches for the identity, whose
// validity window bounds how long the verdict can be reused.
func (m *mtls) verify(peer, handshake []*x509.Certificate, anchors *Anchors, now time.Time) (string, []*x509.Certificate, error) {
	leaf := peer[0]
	if m.source == SourceURI {
		id, err := SPIFFEIDFromURIs(leaf.URIs)
		if err != nil {
			return "", nil, err
		}
		if m.domains != nil && !m.domains[id.TrustDomain()] {
			return "", nil, fmt.Errorf("identity: client certificate's SPIFFE trust domain %q is not allowed", id.TrustDomain().Name())
		}
		if anchors != nil && anchors.Bundles != nil {
			_, chains, err := x509svid.Verify(peer, anchors.Bundles, x509svid.WithTime(now))
			if err != nil {
				// go-spiffe's text may quote the certificate; ours names
				// only the (validated) trust domain.
				return "", nil, fmt.Errorf("identity: client certificate does not chain to the trust bundle of its SPIFFE trust domain %q (or is expired)", id.TrustDomain().Name())
			}
			return id.String(), chains[0], nil
		}
		chain, err := anchored(peer, handshake, anchors, now)
		if err != nil {
			return "", nil, err
		}
		return id.String(), chain, nil
	}
	var id string
	switch m.source {
	case SourceDNS:
		if len(leaf.DNSNames) == 0 {
			return "", nil, errNoDNSName
		}
		id = strings.ToLower(leaf.DNSNames[0])
	case SourceCN:
		id = leaf.Subject.CommonName
		if id == "" {
			return "", nil, errNoCN
		}
	}
	if err := checkIdentity(id); err != nil {
		// The value itself stays out of the error: it is attacker-shaped
		// text that reached us inside a certificate.
		return "", nil, fmt.Errorf("identity: client certificate's %s identity is unusable: %w", m.source, err)
	}
	if anchors != nil && anchors.Roots == nil {
		return "", nil, errNoRootsForID
	}
	chain, err := anchored(peer, handshake, anchors, now)
	if err != nil {
		return "", nil, err
	}
	return id, chain, nil
}

// anchored verifies peer against anchors.Roots at now, as the handshake did
// against the CAs of its moment. Without anchors it only checks that now is
// inside the validity window of the chain the handshake verified.
func anchored(peer, handshake []*x509.Certificate, anchors *Anchors, now time.Time) ([]*x509.Certificate, error) {
	if anchors == nil {
		if nb, na := window(handshake); now.Before(nb) || now.After(na) {
			return nil, errOutOfWindow
		}
		return handshake, nil
	}
	if anchors.Roots == nil {
		// A nil Roots would make crypto/x509 use the system roots.
		return nil, errNotAnchored
	}
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	chains, err := peer[0].Verify(x509.VerifyOptions{
		Roots: anchors.Roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, errNotAnchored
	}
	return chains[0], nil
}

// window is the time span in which every certificate of chain is valid.
func window(chain []*x509.Certificate) (notBefore, notAfter time.Time) {
	for i, c := range chain {
		if i == 0 || c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	return notBefore, notAfter
}

// SPIFFEIDFromURIs returns the SPIFFE ID of a certificate with these URI
// SANs. Following the X.509-SVID rules, there must be exactly one URI SAN
// and it must be a SPIFFE ID (scheme "spiffe", a lower-case trust domain,
// no query, fragment, port or userinfo); anything else is refused.
func SPIFFEIDFromURIs(uris []*url.URL) (spiffeid.ID, error) {
	switch {
	case len(uris) == 0:
		return spiffeid.ID{}, errNoSPIFFEID
	case len(uris) > 1:
		return spiffeid.ID{}, errManyURIs
	case uris[0] == nil:
		return spiffeid.ID{}, errNoSPIFFEID
	}
	id, err := spiffeid.FromURI(uris[0])
	if err != nil {
		return spiffeid.ID{}, errNoSPIFFEID
	}
	return id, nil
}
