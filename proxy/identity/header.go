package identity

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Header formats for HeaderOptions.Format.
const (
	// FormatXFCC reads Envoy's X-Forwarded-Client-Cert: the identity is the
	// URI field of the last element, the one the nearest proxy added.
	FormatXFCC = "xfcc"
	// FormatPlain takes the whole header value as the identity.
	FormatPlain = "plain"
)

// HeaderOptions configures NewHeader.
type HeaderOptions struct {
	// Name is the header, e.g. "X-Forwarded-Client-Cert". Required.
	Name string
	// Format is FormatXFCC or FormatPlain. Empty means FormatXFCC for
	// X-Forwarded-Client-Cert and FormatPlain for any other header.
	Format string
	// TrustedProxies are the only peers whose header is read. Required:
	// a header anyone can write identifies no one.
	TrustedProxies *TrustedProxies
	// TrustDomains, when set, are the SPIFFE trust domains accepted in an
	// identity that is a SPIFFE ID; an identity that is not one is then
	// refused. Empty accepts any identity the proxy vouches for.
	TrustDomains []string
}

type header struct {
	name    string
	format  string
	proxies *TrustedProxies
	domains map[spiffeid.TrustDomain]bool // nil: any
}

// NewHeader returns a Resolver that takes the caller's identity from a
// header set by a trusted proxy in front of scgate (an Istio or Envoy
// sidecar, an authenticating load balancer). From any other peer the header
// is ignored (ErrNoIdentity), and the proxy package removes it before the
// resolvers run. A trusted peer that sends no header gives ErrNoIdentity;
// one that sends a malformed header or an unusable identity is refused.
func NewHeader(opts HeaderOptions) (Resolver, error) {
	if opts.Name == "" {
		return nil, errors.New("identity: header resolver: no header name given (for Istio or Envoy: X-Forwarded-Client-Cert)")
	}
	name := textproto.CanonicalMIMEHeaderKey(opts.Name)
	if !isToken(name) {
		return nil, fmt.Errorf("identity: header resolver: %q is not a header name", opts.Name)
	}
	if opts.TrustedProxies == nil {
		return nil, fmt.Errorf("identity: header resolver: trusted proxies are required: %s from any other peer is written by the caller itself", name)
	}
	h := &header{name: name, format: opts.Format, proxies: opts.TrustedProxies}
	switch opts.Format {
	case "":
		h.format = FormatPlain
		if name == "X-Forwarded-Client-Cert" {
			h.format = FormatXFCC
		}
	case FormatXFCC, FormatPlain:
	default:
		return nil, fmt.Errorf("identity: header resolver: format %q is not known: use %q or %q", opts.Format, FormatXFCC, FormatPlain)
	}
	if len(opts.TrustDomains) > 0 {
		h.domains = make(map[spiffeid.TrustDomain]bool, len(opts.TrustDomains))
		for i, s := range opts.TrustDomains {
			td, err := spiffeid.TrustDomainFromString(s)
			if err != nil {
				return nil, fmt.Errorf("identity: header resolver: trust domain %d (%q): %w", i+1, s, err)
			}
			h.domains[td] = true
		}
	}
	return h, nil
}

// Resolve implements Resolver.
func (h *header) Resolve(r *http.Request) (string, error) {
	if !h.proxies.Trusts(r) {
		return "", ErrNoIdentity
	}
	values := r.Header.Values(h.name)
	if len(values) == 0 {
		return "", ErrNoIdentity
	}
	var id string
	switch h.format {
	case FormatXFCC:
		// Proxies that append write one line or several; both are one list.
		elems, err := parseXFCC(strings.Join(values, ","))
		if err != nil {
			return "", fmt.Errorf("identity: %w", err)
		}
		uri, ok := elems[len(elems)-1].get("URI")
		if !ok || uri == "" {
			return "", errors.New("identity: the last X-Forwarded-Client-Cert element has no URI field: the proxy's client certificate carried no URI SAN")
		}
		id = uri
	case FormatPlain:
		if len(values) > 1 {
			return "", fmt.Errorf("identity: %s was sent %d times; a trusted proxy sends it once", h.name, len(values))
		}
		id = values[0]
	}
	return h.check(id)
}

// check validates the identity and, for a SPIFFE ID, its trust domain. The
// value stays out of errors: it reached us in a header.
func (h *header) check(id string) (string, error) {
	if err := checkIdentity(id); err != nil {
		return "", fmt.Errorf("identity: %s identity is unusable: %w", h.name, err)
	}
	if strings.HasPrefix(id, "spiffe://") {
		sid, err := spiffeid.FromString(id)
		if err != nil {
			return "", fmt.Errorf("identity: %s identity is not a valid SPIFFE ID: %w", h.name, err)
		}
		if h.domains != nil && !h.domains[sid.TrustDomain()] {
			return "", fmt.Errorf("identity: %s SPIFFE trust domain %q is not allowed", h.name, sid.TrustDomain().Name())
		}
		return sid.String(), nil
	}
	if h.domains != nil {
		return "", fmt.Errorf("identity: %s identity is not a SPIFFE ID, and trust domains are configured", h.name)
	}
	return id, nil
}
