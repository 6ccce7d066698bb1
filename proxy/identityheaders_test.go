package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/proxy/identity"
)

// headerRecorder is an upstream that remembers the headers of the last
// request it received.
type headerRecorder struct {
	mu   sync.Mutex
	last http.Header
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.last = r.Header.Clone()
	h.mu.Unlock()
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func (h *headerRecorder) seen() http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// sawHeaders is a resolver that records which forwarding headers reached it
// and names every caller "admin".
type sawHeaders struct {
	mu   sync.Mutex
	xfcc []string
	xff  []string
}

func (s *sawHeaders) Resolve(r *http.Request) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.xfcc, s.xff = r.Header.Values("X-Forwarded-Client-Cert"), r.Header.Values("X-Forwarded-For")
	return "admin", nil
}

func mustTrusted(t *testing.T, prefix string) *identity.TrustedProxies {
	t.Helper()
	tp, err := identity.NewTrustedProxies([]netip.Prefix{netip.MustParsePrefix(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestProxyHeadersOnlyFromTrustedPeers: X-Forwarded-Client-Cert and
// X-Forwarded-For reach the resolvers only from a trusted proxy, and never
// reach the broadcaster.
func TestProxyHeadersOnlyFromTrustedPeers(t *testing.T) {
	hdr := http.Header{
		"X-Forwarded-Client-Cert": {`URI=spiffe://prod.example/ns/a/sa/b`},
		"x-forwarded-for":         {"203.0.113.9"}, // non-canonical on purpose
	}
	for _, tt := range []struct {
		name    string
		trusted string
		want    bool
	}{
		{"untrusted peer", "192.0.2.0/24", false},
		{"trusted peer", "127.0.0.0/8", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := &headerRecorder{}
			saw := &sawHeaders{}
			e := newEnv(t, envOptions{upstream: up, identity: saw, proxies: mustTrusted(t, tt.trusted),
				proxyHeaders: []string{"X-Forwarded-Client-Cert"}})
			resp, body := e.do(http.MethodGet, "/api/v2/history/", "", nil, hdr)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			saw.mu.Lock()
			gotXFCC, gotXFF := len(saw.xfcc) > 0, len(saw.xff) > 0
			saw.mu.Unlock()
			if gotXFCC != tt.want || gotXFF != tt.want {
				t.Errorf("resolver saw XFCC=%v XFF=%v, want %v", gotXFCC, gotXFF, tt.want)
			}
			for k := range up.seen() {
				if strings.EqualFold(k, "X-Forwarded-Client-Cert") || strings.EqualFold(k, "X-Forwarded-For") {
					t.Errorf("the broadcaster received %s", k)
				}
			}
		})
	}
}

// TestXFCCIdentityFromTrustedSidecar: the header resolver end to end.
func TestXFCCIdentityFromTrustedSidecar(t *testing.T) {
	res, err := identity.NewHeader(identity.HeaderOptions{Name: "X-Forwarded-Client-Cert", TrustedProxies: mustTrusted(t, "127.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	vault := strings.Replace(testVault, `"admin" = "admin"`, `"spiffe://prod.example/ns/radio/sa/sync" = "admin"`, 1)
	e := newEnv(t, envOptions{identity: res, vault: fixedVault{parseVault(t, vault)},
		proxies: mustTrusted(t, "127.0.0.0/8"), proxyHeaders: []string{"X-Forwarded-Client-Cert"}})
	resp, body := e.do(http.MethodGet, "/api/v2/playlists/?server=1", "", nil,
		http.Header{"X-Forwarded-Client-Cert": {`By=spiffe://prod.example/ns/radio/sa/scgate;URI=spiffe://prod.example/ns/radio/sa/sync`}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if got := e.lastUpstream().KeyPrefixes; len(got) != 1 || got[0] != "TestAdm1" {
		t.Errorf("the stand-in saw keys %v", got)
	}
}

// tokenIssuer signs service-account tokens for the gateway tests.
type tokenIssuer struct {
	t    *testing.T
	key  *ecdsa.PrivateKey
	jwks string // file
}

func newTokenIssuer(t *testing.T) *tokenIssuer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tokenIssuer{t: t, key: k, jwks: p}
}

func (ti *tokenIssuer) token(sub, aud string, exp time.Time) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: ti.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		ti.t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(jwt.Claims{
		Issuer: "https://kubernetes.default.svc", Subject: sub, Audience: jwt.Audience{aud},
		Expiry: jwt.NewNumericDate(exp), NotBefore: jwt.NewNumericDate(time.Now().Add(-time.Minute)),
	}).Serialize()
	if err != nil {
		ti.t.Fatal(err)
	}
	return tok
}

func (ti *tokenIssuer) resolver() identity.Resolver {
	keys, err := identity.NewJWKS(ti.t.Context(), identity.JWKSOptions{File: ti.jwks})
	if err != nil {
		ti.t.Fatal(err)
	}
	r, err := identity.NewJWT(identity.JWTOptions{Issuer: "https://kubernetes.default.svc", Audiences: []string{"scgate"}, Keys: keys})
	if err != nil {
		ti.t.Fatal(err)
	}
	return r
}

// TestIdentityTokenNeverReachesUpstream: the service-account token
// identifies the caller and is removed; the broadcaster's own
// "Authorization: JWT" passes; refusals are logged with a reason and never
// with the token.
func TestIdentityTokenNeverReachesUpstream(t *testing.T) {
	ti := newTokenIssuer(t)
	const sa = "system:serviceaccount:radio:sync"
	vault := strings.Replace(testVault, `"admin" = "admin"`, `"`+sa+`" = "admin"`+"\n"+`"admin" = "admin"`, 1)
	up := &headerRecorder{}
	core, logs := observer.New(zapcore.InfoLevel)
	e := newEnv(t, envOptions{
		upstream: up, vault: fixedVault{parseVault(t, vault)}, logger: zap.New(core), stripBearer: true,
		identity: identity.Chain{headerIdentity{}, ti.resolver()},
	})

	good := ti.token(sa, "scgate", time.Now().Add(time.Hour))
	resp, body := e.do(http.MethodGet, "/api/v2/history/", "", nil, http.Header{"Authorization": {"Bearer " + good}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("valid token: %d %s", resp.StatusCode, body)
	}
	if got := up.seen().Values("Authorization"); len(got) != 0 {
		t.Fatalf("the broadcaster received Authorization %q", got)
	}
	// Identified otherwise: the panel's JWT passes, a Bearer token does not.
	e.do(http.MethodGet, "/api/v2/authlisteners/?server=1", "admin", nil, http.Header{"Authorization": {"JWT panel-login-token", "Bearer " + good}})
	if got := up.seen().Values("Authorization"); len(got) != 1 || got[0] != "JWT panel-login-token" {
		t.Fatalf("the broadcaster received Authorization %q, want only the panel's JWT", got)
	}

	bad := map[string]string{
		"expired":        ti.token(sa, "scgate", time.Now().Add(-time.Hour)),
		"wrong audience": ti.token(sa, "https://kubernetes.default.svc", time.Now().Add(time.Hour)),
		"tampered":       good[:len(good)-4] + "AAAA",
	}
	reasons := map[string]string{"expired": "expired at", "wrong audience": "audience is none of", "tampered": "signature does not verify"}
	for name, tok := range bad {
		resp, body := e.do(http.MethodGet, "/api/v2/history/", "", nil, http.Header{"Authorization": {"Bearer " + tok}})
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, tok) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
		lines := logs.FilterMessage("request").FilterFieldKey("cause").All()
		last := lines[len(lines)-1]
		if cause := last.ContextMap()["cause"]; !strings.Contains(cause.(string), reasons[name]) {
			t.Errorf("%s: logged cause %q, want %q", name, cause, reasons[name])
		}
	}
	for _, entry := range logs.All() {
		b, _ := json.Marshal(entry.ContextMap())
		for _, tok := range append([]string{good}, bad["expired"], bad["wrong audience"], bad["tampered"]) {
			if strings.Contains(string(b)+entry.Message, tok[strings.LastIndexByte(tok, '.')+1:]) {
				t.Fatalf("a log line holds a token: %s %s", entry.Message, b)
			}
		}
	}
}
