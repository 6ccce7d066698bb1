package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testIssuer   = "https://kubernetes.default.svc.cluster.local"
	testAudience = "scgate"
	testSubject  = "system:serviceaccount:radio:playlist-sync"
)

// signingKey is one key of a test issuer.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newRSAKey(t testing.TB, kid string) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.RS256, priv: k}
}

func newECKey(t testing.TB, kid string) signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.ES256, priv: k}
}

// jwksJSON publishes the public halves of keys.
func jwksJSON(t testing.TB, keys ...signingKey) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claims are a valid projected service-account token's claims at now.
func claims(now time.Time) jwt.Claims {
	return jwt.Claims{
		Issuer:    testIssuer,
		Subject:   testSubject,
		Audience:  jwt.Audience{testAudience},
		Expiry:    jwt.NewNumericDate(now.Add(time.Hour)),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
	}
}

func sign(t testing.TB, k signingKey, c any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func writeJWKS(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v2/history/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func newJWTFromFile(t testing.TB, path string, clk *clock) Resolver {
	t.Helper()
	keys, err := NewJWKS(context.Background(), JWKSOptions{File: path, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	res, err := NewJWT(JWTOptions{Issuer: testIssuer, Audiences: []string{testAudience}, Keys: keys, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestJWT(t *testing.T) {
	rsaKey, ecKey, stranger := newRSAKey(t, "rsa-1"), newECKey(t, "ec-1"), newRSAKey(t, "rsa-1")
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, jwksJSON(t, rsaKey, ecKey))
	clk := &clock{now: time.Now()}
	res := newJWTFromFile(t, path, clk)
	now := clk.Now()

	with := func(edit func(*jwt.Claims)) jwt.Claims { c := claims(now); edit(&c); return c }
	valid := sign(t, rsaKey, claims(now))
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64(`{"iss":"`+testIssuer+`","sub":"system:serviceaccount:radio:admin","aud":["scgate"],"exp":9999999999,"nbf":1}`) + "." + parts[2]
	pubDER, _ := x509.MarshalPKIXPublicKey(rsaKey.priv.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	// HS256 keyed with the RSA public key: the classic algorithm confusion.
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubPEM}, (&jose.SignerOptions{}).WithHeader("kid", "rsa-1"))
	if err != nil {
		t.Fatal(err)
	}
	hsWithPublicKey, err := jwt.Signed(hs).Claims(claims(now)).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	none := b64(`{"alg":"none","kid":"rsa-1"}`) + "." + parts[1] + "."

	tests := []struct {
		name   string
		token  string
		reason string // "" means valid
	}{
		{"RS256", valid, ""},
		{"ES256", sign(t, ecKey, claims(now)), ""},
		{"expired", sign(t, rsaKey, with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) })), "expired at"},
		{"expired within leeway", sign(t, rsaKey, with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-10 * time.Second)) })), ""},
		{"not yet valid", sign(t, rsaKey, with(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) })), "not valid before"},
		{"wrong audience", sign(t, rsaKey, with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://kubernetes.default.svc"} })), "audience is none of"},
		{"wrong issuer", sign(t, rsaKey, with(func(c *jwt.Claims) { c.Issuer = "https://evil.example" })), "issuer is not"},
		{"no exp", sign(t, rsaKey, with(func(c *jwt.Claims) { c.Expiry = nil })), "no exp claim"},
		{"no nbf", sign(t, rsaKey, with(func(c *jwt.Claims) { c.NotBefore = nil })), "no nbf claim"},
		{"no aud", sign(t, rsaKey, with(func(c *jwt.Claims) { c.Audience = nil })), "no aud claim"},
		{"no sub", sign(t, rsaKey, with(func(c *jwt.Claims) { c.Subject = "" })), "sub claim is unusable"},
		{"issued in the future", sign(t, rsaKey, with(func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) })), "issued in the future"},
		{"alg none", none, "algorithm none is not allowed"},
		{"HS256 with the public key", hsWithPublicKey, "algorithm HS256 is not allowed"},
		{"tampered payload", tampered, "signature does not verify"},
		{"signed by a stranger with a known kid", sign(t, stranger, claims(now)), "signature does not verify"},
		{"unknown kid", sign(t, newECKey(t, "ec-unknown"), claims(now)), "unknown kid"},
		{"not a JWS", "abc.def", "not a compact JWS"},
		{"too long", strings.Repeat("a", maxTokenLen+1), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := res.Resolve(bearer(tt.token))
			if tt.reason == "" {
				if id != testSubject || err != nil {
					t.Fatalf("got (%q, %v), want %q", id, err, testSubject)
				}
				return
			}
			if err == nil || errors.Is(err, ErrNoIdentity) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("got (%q, %v), want a refusal containing %q", id, err, tt.reason)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Fatalf("the refusal echoes the token: %v", err)
			}
		})
	}
}

func TestJWTIgnoresOtherSchemes(t *testing.T) {
	k := newRSAKey(t, "k")
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, jwksJSON(t, k))
	res := newJWTFromFile(t, path, &clock{now: time.Now()})
	for _, h := range []string{"", "JWT eyJhbGciOi.x.y", "Basic dXNlcjpwYXNz"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if _, err := res.Resolve(r); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("Authorization %q: %v, want ErrNoIdentity", h, err)
		}
	}
	r := bearer(sign(t, k, claims(time.Now())))
	r.Header.Add("Authorization", "Bearer x")
	if _, err := res.Resolve(r); err == nil || !strings.Contains(err.Error(), "more than one") {
		t.Errorf("two Authorization headers: %v", err)
	}
	if tok, ok := BearerToken(http.Header{"Authorization": {"bearer  abc "}}); !ok || tok != "abc" {
		t.Errorf("BearerToken lower-case scheme: (%q, %v)", tok, ok)
	}
}

// TestJWKSRotationFromFile: a token from a newly published key is accepted
// once the file has it (refreshed on the unknown kid), and the refresh drops
// the keys the file no longer has. (A removed key with no new one to
// trigger a refresh: TestJWKSMaxAgeRefreshesInBackground.)
func TestJWKSRotationFromFile(t *testing.T) {
	oldKey, newKey := newRSAKey(t, "2026-01"), newECKey(t, "2026-02")
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, jwksJSON(t, oldKey))
	clk := &clock{now: time.Now()}
	res := newJWTFromFile(t, path, clk)

	newTok := sign(t, newKey, claims(clk.Now()))
	if _, err := res.Resolve(bearer(newTok)); err == nil || !strings.Contains(err.Error(), "unknown kid") {
		t.Fatalf("before rotation: %v, want unknown kid", err)
	}
	writeJWKS(t, path, jwksJSON(t, newKey))
	// The refusal just above was a refresh; the next one waits for the interval.
	if _, err := res.Resolve(bearer(newTok)); err == nil {
		t.Fatal("refreshed again within the minimum refresh interval")
	}
	clk.Add(11 * time.Second)
	if id, err := res.Resolve(bearer(newTok)); id != testSubject || err != nil {
		t.Fatalf("after rotation: (%q, %v)", id, err)
	}
	// The refresh for the new key also dropped the old one.
	oldTok := sign(t, oldKey, claims(clk.Now()))
	if _, err := res.Resolve(bearer(oldTok)); err == nil || !strings.Contains(err.Error(), "unknown kid") {
		t.Fatalf("removed key: %v, want unknown kid", err)
	}
}

// TestJWKSFromDiscovery: the keys come through OIDC discovery with the
// bearer token file; unknown kids refresh at most once per interval.
func TestJWKSFromDiscovery(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1"), newRSAKey(t, "k2")
	var published atomic.Pointer[[]byte]
	first := jwksJSON(t, k1)
	published.Store(&first)
	var fetches, unauthorised atomic.Int32
	mux := http.NewServeMux()
	var srv *httptest.Server
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer pod-token" {
				unauthorised.Add(1)
				http.Error(w, "forbidden", http.StatusForbidden)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("/.well-known/openid-configuration", auth(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": testIssuer, "jwks_uri": srv.URL + "/openid/v1/jwks"})
	}))
	mux.HandleFunc("/openid/v1/jwks", auth(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(*published.Load())
	}))
	srv = httptest.NewTLSServer(mux)
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("pod-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now()}
	keys, err := NewJWKS(context.Background(), JWKSOptions{
		DiscoveryURL: srv.URL + "/.well-known/openid-configuration", Client: srv.Client(),
		BearerTokenFile: tokenFile, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	res, err := NewJWT(JWTOptions{Issuer: testIssuer, Audiences: []string{"other", testAudience}, Keys: keys, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := res.Resolve(bearer(sign(t, k1, claims(clk.Now())))); id != testSubject || err != nil {
		t.Fatalf("k1: (%q, %v)", id, err)
	}
	// A flood of made-up kids costs one fetch per interval.
	before := fetches.Load()
	for i := range 50 {
		if _, err := res.Resolve(bearer(sign(t, newECKey(t, "made-up-"+string(rune('a'+i%26))), claims(clk.Now())))); err == nil {
			t.Fatal("made-up kid accepted")
		}
	}
	if got := fetches.Load() - before; got != 1 {
		t.Errorf("%d fetches for 50 unknown kids within the interval, want 1", got)
	}
	second := jwksJSON(t, k1, k2)
	published.Store(&second)
	clk.Add(10 * time.Second)
	if id, err := res.Resolve(bearer(sign(t, k2, claims(clk.Now())))); id != testSubject || err != nil {
		t.Fatalf("k2 after rotation: (%q, %v)", id, err)
	}
	if unauthorised.Load() != 0 {
		t.Errorf("%d requests without the bearer token", unauthorised.Load())
	}
}

func TestNewJWKSErrors(t *testing.T) {
	dir := t.TempDir()
	k := newRSAKey(t, "k")
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.priv, KeyID: "k"}}})
	hmac, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: []byte("secret"), KeyID: "h"}}})
	files := map[string][]byte{"priv.json": priv, "hmac.json": hmac, "junk.json": []byte("{"), "empty.json": []byte(`{"keys":[]}`)}
	for name, b := range files {
		writeJWKS(t, filepath.Join(dir, name), b)
	}
	tests := []struct {
		name string
		opts JWKSOptions
		want string
	}{
		{"none", JWKSOptions{}, "exactly one"},
		{"two", JWKSOptions{File: "a", URL: "https://x"}, "exactly one"},
		{"bad url", JWKSOptions{URL: "ftp://x"}, "not an https URL"},
		{"plain http to a remote host", JWKSOptions{URL: "http://keys.example/jwks"}, "not an https URL"},
		{"token over plain http", JWKSOptions{URL: "http://127.0.0.1:1/jwks", BearerTokenFile: "t"}, "only ever sent over https"},
		{"max stale below max age", JWKSOptions{File: "a", MaxAge: time.Hour, MaxStale: time.Minute}, "shorter than the maximum age"},
		{"allowed host with a path", JWKSOptions{DiscoveryURL: "https://x", AllowedHosts: []string{"evil.example/x"}}, "not a host name"},
		{"missing file", JWKSOptions{File: filepath.Join(dir, "missing.json")}, "check the path"},
		{"private key", JWKSOptions{File: filepath.Join(dir, "priv.json")}, "private or symmetric key"},
		{"hmac key", JWKSOptions{File: filepath.Join(dir, "hmac.json")}, "private or symmetric key"},
		{"not JSON", JWKSOptions{File: filepath.Join(dir, "junk.json")}, "not a JSON Web Key Set"},
		{"no keys", JWKSOptions{File: filepath.Join(dir, "empty.json")}, "no public signature key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewJWKS(context.Background(), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	keys, err := NewJWKS(context.Background(), JWKSOptions{File: writeTemp(t, jwksJSON(t, k))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	for _, o := range []JWTOptions{{Audiences: []string{"a"}, Keys: keys}, {Issuer: "i", Keys: keys}, {Issuer: "i", Audiences: []string{"a"}}, {Issuer: "i", Audiences: []string{""}, Keys: keys}} {
		if _, err := NewJWT(o); err == nil {
			t.Errorf("NewJWT(%+v) accepted", o)
		}
	}
}

func writeTemp(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	writeJWKS(t, p, b)
	return p
}

// FuzzJWT feeds arbitrary bearer tokens to the resolver: it must not panic,
// must accept nothing the test key did not sign, and its refusals must
// never contain the token.
func FuzzJWT(f *testing.F) {
	k := newECKey(f, "k")
	now := time.Now()
	valid := sign(f, k, claims(now))
	for _, s := range []string{valid, "", "a.b.c", "..", valid + "x", strings.Replace(valid, ".", "..", 1),
		b64(`{"alg":"none"}`) + "." + b64(`{}`) + ".", b64(`{"alg":"HS256","kid":"k"}`) + ".e30.AAAA"} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), "jwks.json")
	writeJWKS(f, path, jwksJSON(f, k))
	res := newJWTFromFile(f, path, &clock{now: now})
	f.Fuzz(func(t *testing.T, tok string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{"Bearer " + tok}
		id, err := res.Resolve(r)
		if err == nil {
			if strings.TrimSpace(tok) != valid || id != testSubject {
				t.Fatalf("accepted %q as %q", tok, id)
			}
			return
		}
		if tt := strings.TrimSpace(tok); len(tt) >= 12 && strings.Contains(err.Error(), tt) {
			t.Fatalf("refusal echoes the token: %v", err)
		}
	})
}

// TestJWKSFromURL: keys fetched from a JWKS URL directly; a server error
// at start is an error that names the status.
func TestJWKSFromURL(t *testing.T) {
	k := newECKey(t, "k")
	var fail atomic.Bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "nope", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(jwksJSON(t, k))
	}))
	defer srv.Close()
	keys, err := NewJWKS(context.Background(), JWKSOptions{URL: srv.URL + "/keys", Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	res, err := NewJWT(JWTOptions{Issuer: testIssuer, Audiences: []string{testAudience}, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := res.Resolve(bearer(sign(t, k, claims(time.Now())))); id != testSubject || err != nil {
		t.Fatalf("got (%q, %v)", id, err)
	}
	fail.Store(true)
	if _, err := NewJWKS(context.Background(), JWKSOptions{URL: srv.URL + "/keys", Client: srv.Client()}); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("server error: %v", err)
	}
}
