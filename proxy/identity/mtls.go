package identity

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Where NewMTLS takes the identity from.
const (
	// SourceURI takes the SPIFFE ID from the certificate's URI SANs.
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
	// any trust domain the client CAs vouch for.
	TrustDomains []string
}

type mtls struct {
	source  string
	domains map[spiffeid.TrustDomain]bool // nil: any
}

// NewMTLS returns a Resolver that names the caller by its client
// certificate. It only trusts a certificate the TLS server verified against
// its client CAs (r.TLS.VerifiedChains); a plain connection, or one without
// a verified client certificate, gives ErrNoIdentity.
//
// A verified certificate that does not carry a usable identity is refused
// rather than passed on: for SourceURI, no URI SAN that is a SPIFFE ID or a
// trust domain not in TrustDomains; for SourceDNS, no DNS SAN; for SourceCN,
// an empty common name. The SPIFFE identity is the full
// "spiffe://trust-domain/path"; a DNS name is lower-cased, since DNS names
// do not distinguish case.
func NewMTLS(opts MTLSOptions) (Resolver, error) {
	m := &mtls{source: opts.Source}
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
	errNoSPIFFEID = errors.New("identity: client certificate has no SPIFFE ID in its URI SANs")
	errNoDNSName  = errors.New("identity: client certificate has no DNS SAN")
	errNoCN       = errors.New("identity: client certificate has no subject common name")
)

// Resolve implements Resolver.
func (m *mtls) Resolve(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		// Unverified peer certificates (RequestClientCert and the like)
		// prove nothing, so they are not looked at.
		return "", ErrNoIdentity
	}
	leaf := r.TLS.VerifiedChains[0][0]
	var id string
	switch m.source {
	case SourceURI:
		return m.spiffeID(leaf.URIs)
	case SourceDNS:
		if len(leaf.DNSNames) == 0 {
			return "", errNoDNSName
		}
		id = strings.ToLower(leaf.DNSNames[0])
	case SourceCN:
		id = leaf.Subject.CommonName
		if id == "" {
			return "", errNoCN
		}
	}
	if err := checkIdentity(id); err != nil {
		// The value itself stays out of the error: it is attacker-shaped
		// text that reached us inside a certificate.
		return "", fmt.Errorf("identity: client certificate's %s identity is unusable: %w", m.source, err)
	}
	return id, nil
}

// spiffeID returns the first URI SAN that is a SPIFFE ID, if its trust
// domain is allowed.
func (m *mtls) spiffeID(uris []*url.URL) (string, error) {
	for _, u := range uris {
		id, err := spiffeid.FromURI(u)
		if err != nil {
			continue
		}
		if m.domains != nil && !m.domains[id.TrustDomain()] {
			return "", fmt.Errorf("identity: client certificate's SPIFFE trust domain %q is not allowed", id.TrustDomain().Name())
		}
		return id.String(), nil
	}
	return "", errNoSPIFFEID
}
