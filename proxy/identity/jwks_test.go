package identity

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// TestJWKSMaxAgeRefreshesInBackground: a key removed from the source keeps
// verifying while the cached set is younger than MaxAge; past MaxAge, the
// next request is still served at once (stale keys) and starts a refresh,
// after which the removed key is refused.
func TestJWKSMaxAgeRefreshesInBackground(t *testing.T) {
	oldKey, newKey := newRSAKey(t, "old"), newECKey(t, "new")
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, path, jwksJSON(t, oldKey))
	clk := &clock{now: time.Now()}
	keys, err := NewJWKS(context.Background(), JWKSOptions{File: path, Now: clk.Now, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	res, err := NewJWT(JWTOptions{Issuer: testIssuer, Audiences: []string{testAudience}, Keys: keys, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	writeJWKS(t, path, jwksJSON(t, newKey))
	clk.Add(59 * time.Minute)
	if id, err := res.Resolve(bearer(sign(t, oldKey, claims(clk.Now())))); id != testSubject || err != nil {
		t.Fatalf("removed key within MaxAge: (%q, %v), want still cached", id, err)
	}
	clk.Add(2 * time.Minute)
	if id, err := res.Resolve(bearer(sign(t, oldKey, claims(clk.Now())))); id != testSubject || err != nil {
		t.Fatalf("first request past MaxAge: (%q, %v), want served from the stale set", id, err)
	}
	waitUntil(t, "the background refresh to drop the removed key", 5*time.Second, func() bool {
		_, err := res.Resolve(bearer(sign(t, oldKey, claims(clk.Now()))))
		return err != nil && strings.Contains(err.Error(), "unknown kid")
	})
	if id, err := res.Resolve(bearer(sign(t, newKey, claims(clk.Now())))); id != testSubject || err != nil {
		t.Fatalf("new key after the refresh: (%q, %v)", id, err)
	}
}

// hangingJWKS serves keys until hang is set; from then on every fetch
// blocks until release is closed.
type hangingJWKS struct {
	keys     []byte
	hang     atomic.Bool
	started  atomic.Int32 // fetches received
	release  chan struct{}
	releaseO sync.Once
}

func (h *hangingJWKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.started.Add(1)
	if h.hang.Load() {
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}
	_, _ = w.Write(h.keys)
}

func (h *hangingJWKS) unblock() { h.releaseO.Do(func() { close(h.release) }) }

// TestJWKSHangingEndpointQueuesNoCaller: with the JWKS endpoint hanging,
// requests past MaxAge are served at once from the cached keys and share
// one background fetch; requests with an unknown kid wait at most
// FetchWait; past MaxStale tokens are refused, also within FetchWait; once
// the endpoint answers, tokens are accepted again.
func TestJWKSHangingEndpointQueuesNoCaller(t *testing.T) {
	k := newECKey(t, "k")
	up := &hangingJWKS{keys: jwksJSON(t, k), release: make(chan struct{})}
	srv := httptest.NewTLSServer(up)
	defer srv.Close()
	defer up.unblock() // before srv.Close, so the hung handler returns
	clk := &clock{now: time.Now()}
	const fetchWait = 300 * time.Millisecond
	keys, err := NewJWKS(context.Background(), JWKSOptions{
		URL: srv.URL + "/keys", Client: srv.Client(), Now: clk.Now,
		MaxAge: time.Hour, MaxStale: 3 * time.Hour, FetchWait: fetchWait, MinRefreshInterval: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	res, err := NewJWT(JWTOptions{Issuer: testIssuer, Audiences: []string{testAudience}, Keys: keys, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	up.hang.Store(true)
	clk.Add(61 * time.Minute)

	// concurrently resolves n tokens and returns each one's error and the
	// longest time one took.
	concurrently := func(n int, tok func(i int) string) ([]error, time.Duration) {
		errs := make([]error, n)
		took := make([]time.Duration, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				start := time.Now()
				_, errs[i] = res.Resolve(bearer(tok(i)))
				took[i] = time.Since(start)
			})
		}
		wg.Wait()
		var longest time.Duration
		for _, d := range took {
			longest = max(longest, d)
		}
		return errs, longest
	}
	valid := sign(t, k, claims(clk.Now()))
	errs, longest := concurrently(4, func(int) string { return valid })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("valid request %d past MaxAge with the endpoint hanging: %v", i, err)
		}
	}
	// Served from the cache: nothing waits on the fetch. The bound is far
	// below the 10 s fetch timeout that queued callers used to wait.
	if longest > 2*time.Second {
		t.Errorf("valid requests took up to %v with the endpoint hanging", longest)
	}
	t.Logf("4 valid requests past MaxAge: longest %v", longest)
	waitUntil(t, "the background fetch to reach the endpoint", 5*time.Second, func() bool { return up.started.Load() == 2 })

	unknown := make([]string, 4)
	for i := range unknown {
		unknown[i] = sign(t, newECKey(t, "made-up-"+string(rune('a'+i))), claims(clk.Now()))
	}
	errs, longest = concurrently(4, func(i int) string { return unknown[i] })
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "unknown kid") {
			t.Fatalf("unknown kid %d: %v", i, err)
		}
	}
	if longest < fetchWait/2 || longest > fetchWait+2*time.Second {
		t.Errorf("unknown kids waited up to %v, want about FetchWait (%v) on the shared fetch", longest, fetchWait)
	}
	t.Logf("4 unknown kids with the endpoint hanging: longest %v", longest)
	if n := up.started.Load(); n != 2 {
		t.Errorf("%d fetches reached the endpoint, want the start-up one and one shared refresh", n)
	}

	clk.Add(2 * time.Hour) // past MaxStale
	errs, longest = concurrently(4, func(int) string { return sign(t, k, claims(clk.Now())) })
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "too long") {
			t.Fatalf("valid request %d past MaxStale: %v, want refused", i, err)
		}
	}
	if longest > fetchWait+2*time.Second {
		t.Errorf("requests past MaxStale waited up to %v", longest)
	}

	up.unblock()
	waitUntil(t, "tokens to be accepted once the endpoint answers", 15*time.Second, func() bool {
		_, err := res.Resolve(bearer(sign(t, k, claims(clk.Now()))))
		return err == nil
	})
}

// TestJWKSDiscoveryStaysOnTheIssuersHost: a jwks_uri on another host is not
// fetched (not at start, not on a refresh a caller triggers with an unknown
// kid) unless that host is allowed; scgate's bearer token goes only to the
// configured host over https, never to an allowed other host, a plain-http
// jwks_uri or through a redirect.
func TestJWKSDiscoveryStaysOnTheIssuersHost(t *testing.T) {
	k := newECKey(t, "k")
	var tokensElsewhere atomic.Int32
	elsewhere := func(serveKeys bool) *httptest.Server {
		return httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "" {
				tokensElsewhere.Add(1)
			}
			if serveKeys {
				_, _ = w.Write(jwksJSON(t, k))
				return
			}
			http.Redirect(w, r, "https://keys.attacker.example/jwks", http.StatusFound)
		}))
	}
	other := elsewhere(true) // another host (by name) with real keys
	other.StartTLS()
	defer other.Close()
	plain := elsewhere(true) // plain http on the same loopback host
	plain.Start()
	defer plain.Close()
	redirector := elsewhere(false)
	redirector.StartTLS()
	defer redirector.Close()

	var jwksURI atomic.Pointer[string]
	var homeFetches atomic.Int32
	mux := http.NewServeMux()
	var home *httptest.Server
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": testIssuer, "jwks_uri": *jwksURI.Load()})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer pod-token" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		homeFetches.Add(1)
		_, _ = w.Write(jwksJSON(t, k))
	})
	home = httptest.NewTLSServer(mux)
	defer home.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("pod-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// home and other share httptest's certificate (127.0.0.1 and
	// *.example.com); other is reached as keys.example.com, which this
	// client dials on loopback: two hosts by name.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "keys.example.com", 1) + "/keys"
	tr := home.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, strings.Replace(addr, "keys.example.com", "127.0.0.1", 1))
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	newKeys := func(uri string, allowed ...string) (*JWKS, error) {
		jwksURI.Store(&uri)
		return NewJWKS(context.Background(), JWKSOptions{
			DiscoveryURL: home.URL + "/.well-known/openid-configuration", Client: client,
			BearerTokenFile: tokenFile, AllowedHosts: allowed, MinRefreshInterval: time.Nanosecond,
		})
	}

	if _, err := newKeys(otherURL); err == nil || !strings.Contains(err.Error(), "neither the discovery URL's nor the issuer's host") {
		t.Fatalf("jwks_uri on another host: %v, want refused", err)
	}
	if _, err := newKeys("http://keys.attacker.example/jwks"); err == nil || !strings.Contains(err.Error(), "not an https URL") {
		t.Fatalf("plain-http jwks_uri: %v, want refused", err)
	}
	if _, err := newKeys(redirector.URL + "/keys"); err == nil || !strings.Contains(err.Error(), "redirects are not followed") {
		t.Fatalf("redirecting jwks_uri: %v, want refused", err)
	}
	for _, uri := range []string{otherURL, plain.URL + "/keys"} {
		keys, err := newKeys(uri, strings.TrimPrefix(strings.TrimSuffix(otherURL, "/keys"), "https://"))
		if err != nil {
			t.Fatalf("jwks_uri %s, allowed: %v", uri, err)
		}
		keys.Close()
	}

	// Start on the home host, then a refresh (triggered by a made-up kid)
	// finds the discovery document pointing elsewhere.
	keys, err := newKeys(home.URL + "/openid/v1/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	res, err := NewJWT(JWTOptions{Issuer: testIssuer, Audiences: []string{testAudience}, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if homeFetches.Load() != 1 {
		t.Fatalf("%d fetches with the token from the home host, want 1", homeFetches.Load())
	}
	moved := otherURL
	jwksURI.Store(&moved)
	if _, err := res.Resolve(bearer(sign(t, newECKey(t, "made-up"), claims(time.Now())))); err == nil {
		t.Fatal("made-up kid accepted")
	}
	if id, err := res.Resolve(bearer(sign(t, k, claims(time.Now())))); id != testSubject || err != nil {
		t.Fatalf("the known key after the refused refresh: (%q, %v)", id, err)
	}
	if n := tokensElsewhere.Load(); n != 0 {
		t.Fatalf("scgate's bearer token reached another host or plain http %d times", n)
	}
}

// TestJWTLeewayBounded: a leeway over MaxLeeway is refused.
func TestJWTLeewayBounded(t *testing.T) {
	k := newECKey(t, "k")
	keys, err := NewJWKS(context.Background(), JWKSOptions{File: writeTemp(t, jwksJSON(t, k))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	if _, err := NewJWT(JWTOptions{Issuer: testIssuer, Audiences: []string{testAudience}, Keys: keys, Leeway: MaxLeeway + time.Second}); err == nil {
		t.Fatal("leeway over MaxLeeway accepted")
	}
	if _, err := NewJWT(JWTOptions{Issuer: testIssuer, Audiences: []string{testAudience}, Keys: keys, Leeway: MaxLeeway}); err != nil {
		t.Fatalf("leeway of MaxLeeway: %v", err)
	}
}
