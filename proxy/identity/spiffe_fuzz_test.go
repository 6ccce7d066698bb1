package identity

import (
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// FuzzSPIFFEIDFromURIs: whatever URI SANs a certificate carries, an
// accepted identity comes from exactly one URI SAN, is a well-formed SPIFFE
// ID that round-trips, names a lower-case trust domain that is the URI's
// host, and carries no userinfo, port, query or fragment.
func FuzzSPIFFEIDFromURIs(f *testing.F) {
	for _, s := range []string{
		"spiffe://prod.example/ns/radio/sa/stats",
		"spiffe://prod.example/ns/radio/sa/stats\nspiffe://other.example/x",
		"https://radio.example/\nspiffe://prod.example/a",
		"spiffe://PROD.example/a", "spiffe://user@prod.example/a", "spiffe://prod.example:8443/a",
		"spiffe://prod.example/a?q=1", "spiffe://prod.example/a#f", "spiffe://prod.example", "spiffe:///a", "",
		"spiffe://prod.example/a/../b", "spiffe://prod.example/%2e%2e",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sans string) {
		var uris []*url.URL
		for _, s := range strings.Split(sans, "\n") {
			if s == "" {
				continue
			}
			u, err := url.Parse(s)
			if err != nil {
				continue
			}
			uris = append(uris, u)
		}
		id, err := SPIFFEIDFromURIs(uris)
		if err != nil {
			if id != (spiffeid.ID{}) {
				t.Fatalf("refusal %v came with an ID %q", err, id)
			}
			return
		}
		if len(uris) != 1 {
			t.Fatalf("accepted %q from %d URI SANs", id, len(uris))
		}
		u := uris[0]
		if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Scheme != "spiffe" {
			t.Fatalf("accepted %q from %q", id, u)
		}
		td := id.TrustDomain().Name()
		if td != u.Host || td != strings.ToLower(td) {
			t.Fatalf("trust domain %q from host %q", td, u.Host)
		}
		again, err := spiffeid.FromString(id.String())
		if err != nil || again != id {
			t.Fatalf("%q does not round-trip: %v", id, err)
		}
		if checkIdentity(id.String()) != nil {
			t.Fatalf("%q is not a usable identity string", id)
		}
	})
}
