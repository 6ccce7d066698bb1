package identity

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// istioXFCC is what an Istio sidecar writes for a caller with a SPIFFE ID.
const istioXFCC = `By=spiffe://prod.example/ns/radio/sa/scgate;Hash=4b1d2c3e;Subject="";URI=spiffe://prod.example/ns/radio/sa/stats`

func mustHeader(t testing.TB, opts HeaderOptions) Resolver {
	t.Helper()
	r, err := NewHeader(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHeaderXFCC(t *testing.T) {
	res := mustHeader(t, HeaderOptions{
		Name:           "x-forwarded-client-cert",
		TrustedProxies: mustProxies(t, "127.0.0.0/8"),
		TrustDomains:   []string{"prod.example"},
	})
	tests := []struct {
		name   string
		remote string
		values []string
		want   string // "" with wantNo: ErrNoIdentity; "" otherwise: refused
		wantNo bool
		errHas string
	}{
		{"istio", "127.0.0.1:1", []string{istioXFCC}, "spiffe://prod.example/ns/radio/sa/stats", false, ""},
		{"untrusted peer is ignored", "192.0.2.1:1", []string{istioXFCC}, "", true, ""},
		{"no header", "127.0.0.1:1", nil, "", true, ""},
		{"last element wins", "127.0.0.1:1", []string{`URI=spiffe://prod.example/ns/a/sa/first,URI=spiffe://prod.example/ns/b/sa/nearest`}, "spiffe://prod.example/ns/b/sa/nearest", false, ""},
		{"lines joined", "127.0.0.1:1", []string{`URI=spiffe://prod.example/ns/a/sa/first`, `By=x;URI="spiffe://prod.example/ns/b/sa/second"`}, "spiffe://prod.example/ns/b/sa/second", false, ""},
		{"quoted fields with separators", "127.0.0.1:1", []string{`Subject="CN=a,O=b;c";URI=spiffe://prod.example/ns/q/sa/q;DNS=a.example`}, "spiffe://prod.example/ns/q/sa/q", false, ""},
		{"foreign trust domain", "127.0.0.1:1", []string{`URI=spiffe://evil.example/ns/x/sa/y`}, "", false, `trust domain "evil.example" is not allowed`},
		{"no URI", "127.0.0.1:1", []string{`By=spiffe://prod.example/x;Hash=ab`}, "", false, "no URI field"},
		{"malformed", "127.0.0.1:1", []string{`URI`}, "", false, "malformed"},
		{"unterminated quote", "127.0.0.1:1", []string{`URI="spiffe://prod.example/x`}, "", false, "unterminated"},
		{"not a SPIFFE ID with trust domains set", "127.0.0.1:1", []string{`URI=https://example.com/x`}, "", false, "not a SPIFFE ID"},
		{"invalid SPIFFE ID", "127.0.0.1:1", []string{`URI=spiffe://Prod.Example/x`}, "", false, "not a valid SPIFFE ID"},
		{"control character", "127.0.0.1:1", []string{"URI=\"spiffe://prod.example/a\x01\""}, "", false, "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := requestFrom(tt.remote)
			for _, v := range tt.values {
				r.Header.Add("X-Forwarded-Client-Cert", v)
			}
			id, err := res.Resolve(r)
			switch {
			case tt.want != "":
				if id != tt.want || err != nil {
					t.Fatalf("got (%q, %v), want %q", id, err, tt.want)
				}
			case tt.wantNo:
				if !errors.Is(err, ErrNoIdentity) {
					t.Fatalf("got (%q, %v), want ErrNoIdentity", id, err)
				}
			default:
				if err == nil || errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("got (%q, %v), want a refusal containing %q", id, err, tt.errHas)
				}
			}
		})
	}
}

func TestHeaderPlain(t *testing.T) {
	res := mustHeader(t, HeaderOptions{Name: "X-Authenticated-Service", TrustedProxies: mustProxies(t, "10.0.0.0/8")})
	r := requestFrom("10.1.1.1:1")
	r.Header.Set("X-Authenticated-Service", "billing")
	if id, err := res.Resolve(r); id != "billing" || err != nil {
		t.Errorf("got (%q, %v)", id, err)
	}
	r.Header.Add("X-Authenticated-Service", "other")
	if _, err := res.Resolve(r); err == nil || !strings.Contains(err.Error(), "2 times") {
		t.Errorf("two values: %v", err)
	}
}

func TestNewHeaderErrors(t *testing.T) {
	tp := mustProxies(t, "10.0.0.0/8")
	tests := []struct {
		name string
		opts HeaderOptions
		want string
	}{
		{"no name", HeaderOptions{TrustedProxies: tp}, "no header name"},
		{"bad name", HeaderOptions{Name: "X Bad", TrustedProxies: tp}, "not a header name"},
		{"no proxies", HeaderOptions{Name: "X-Forwarded-Client-Cert"}, "trusted proxies are required"},
		{"bad format", HeaderOptions{Name: "X-A", Format: "json", TrustedProxies: tp}, `format "json"`},
		{"bad trust domain", HeaderOptions{Name: "X-A", TrustedProxies: tp, TrustDomains: []string{"Bad Domain"}}, "trust domain 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewHeader(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// formatXFCC writes elements back in the form parseXFCC reads, quoting
// every value, so the fuzz test can check that parsing loses nothing.
func formatXFCC(elems []xfccElement) string {
	var b strings.Builder
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, p := range e {
			if j > 0 {
				b.WriteByte(';')
			}
			b.WriteString(p.key)
			b.WriteString(`="`)
			for k := 0; k < len(p.value); k++ {
				if c := p.value[k]; c == '"' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(p.value[k])
			}
			b.WriteByte('"')
		}
	}
	return b.String()
}

// FuzzXFCC checks that the parser never panics, that what it accepts
// survives a round trip through quoting, and that the resolver never
// returns an identity with control characters.
func FuzzXFCC(f *testing.F) {
	for _, s := range []string{
		istioXFCC, `URI=a,URI=b`, `Subject="a\"b,c";URI=x`, `k="`, `=v`, `a=b;`, `a=b,`, `a="x" ;b=c`, "", `URI="\`,
	} {
		f.Add(s)
	}
	res := mustHeader(f, HeaderOptions{Name: "X-Forwarded-Client-Cert", TrustedProxies: mustProxies(f, "127.0.0.0/8")})
	f.Fuzz(func(t *testing.T, s string) {
		elems, err := parseXFCC(s)
		if err == nil {
			if len(elems) == 0 {
				t.Fatalf("%q: accepted with no elements", s)
			}
			again, err := parseXFCC(formatXFCC(elems))
			if err != nil || !reflect.DeepEqual(again, elems) {
				t.Fatalf("%q: round trip gave (%q, %v), want %q", s, again, err, elems)
			}
		}
		r := requestFrom("127.0.0.1:1")
		r.Header.Set("X-Forwarded-Client-Cert", s)
		id, err := res.Resolve(r)
		if err == nil && checkIdentity(id) != nil {
			t.Fatalf("%q: resolved to unusable identity %q", s, id)
		}
	})
}
