package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// JWKSOptions configures NewJWKS: exactly one of File, URL and DiscoveryURL.
type JWKSOptions struct {
	// File is a JWKS document on disk (for example the output of
	// "kubectl get --raw /openid/v1/jwks"). It is re-read when a token
	// names an unknown key, within MinRefreshInterval.
	File string
	// URL is where the JWKS document is fetched from.
	URL string
	// DiscoveryURL is an OpenID Connect discovery document
	// (".../.well-known/openid-configuration"); the JWKS is fetched from
	// its jwks_uri. In a cluster:
	// https://kubernetes.default.svc/.well-known/openid-configuration.
	DiscoveryURL string
	// Client fetches URL and DiscoveryURL. Nil means a client with a 10s
	// timeout, the system roots and no proxy from the environment.
	Client *http.Client
	// BearerTokenFile, when set, is read at every fetch and sent as
	// "Authorization: Bearer" to the discovery and JWKS URLs: the
	// Kubernetes API server wants the pod's own service-account token there.
	BearerTokenFile string
	// MinRefreshInterval is the least time between two fetches, so tokens
	// with made-up key ids cannot make scgate hammer the issuer (default 10s).
	MinRefreshInterval time.Duration
	// MaxAge is how long a fetched key set is used before the next token
	// triggers a refresh, so a removed key stops being accepted (default 1h).
	MaxAge time.Duration
	// Logger reports refreshes. Nil discards them.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// maxJWKSBytes bounds a fetched discovery or JWKS document.
const maxJWKSBytes = 1 << 20

// JWKS is a cached JSON Web Key Set, refreshed when a token names a key it
// does not hold and when it is older than MaxAge, never more often than
// MinRefreshInterval. A failed refresh keeps the previous keys.
type JWKS struct {
	opts   JWKSOptions
	client *http.Client
	log    *zap.Logger
	now    func() time.Time
	source string // what is fetched, for messages

	cur  atomic.Pointer[keySet]
	sem  chan struct{} // one fetch at a time; waiting honours the request's context
	last atomic.Int64  // unix nanoseconds of the last fetch attempt
}

type keySet struct {
	set     jose.JSONWebKeySet
	fetched time.Time
}

// NewJWKS fetches the key set once and returns the cache. An error says
// what could not be read and what to check.
func NewJWKS(ctx context.Context, opts JWKSOptions) (*JWKS, error) {
	n := 0
	for _, s := range []string{opts.File, opts.URL, opts.DiscoveryURL} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("identity: JWKS: give exactly one of a JWKS file, a JWKS URL or an OIDC discovery URL")
	}
	for _, u := range []string{opts.URL, opts.DiscoveryURL} {
		if u == "" {
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http") {
			return nil, fmt.Errorf("identity: JWKS: %q is not an http(s) URL", u)
		}
	}
	k := &JWKS{opts: opts, client: opts.Client, log: opts.Logger, now: opts.Now, sem: make(chan struct{}, 1)}
	if k.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		k.client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	if k.log == nil {
		k.log = zap.NewNop()
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.opts.MinRefreshInterval <= 0 {
		k.opts.MinRefreshInterval = 10 * time.Second
	}
	if k.opts.MaxAge <= 0 {
		k.opts.MaxAge = time.Hour
	}
	k.source = firstNonEmpty(opts.File, opts.URL, opts.DiscoveryURL)
	set, err := k.fetch(ctx)
	if err != nil {
		return nil, err
	}
	k.store(set)
	return k, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func (k *JWKS) store(set *jose.JSONWebKeySet) {
	k.cur.Store(&keySet{set: *set, fetched: k.now()})
}

// errUnknownKey is the refusal for a token signed by a key the issuer does
// not publish, even after a refresh.
var errUnknownKey = errors.New("token is signed by a key the issuer does not publish (unknown kid)")

// keys returns the verification keys for kid ("" when the token names none),
// refreshing the set first when it does not hold kid or is stale.
func (k *JWKS) keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	cur := k.cur.Load()
	found := matching(&cur.set, kid)
	stale := k.now().Sub(cur.fetched) >= k.opts.MaxAge
	if len(found) > 0 && !stale {
		return found, nil
	}
	if k.refresh(ctx) {
		found = matching(&k.cur.Load().set, kid)
	}
	if len(found) == 0 {
		return nil, errUnknownKey
	}
	return found, nil
}

// matching lists the signature keys for kid; without a kid, every one.
func matching(set *jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, key := range set.Keys {
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if kid == "" || key.KeyID == kid {
			out = append(out, key)
		}
	}
	return out
}

// refresh fetches the set unless another fetch happened within
// MinRefreshInterval; it reports whether the set may have changed. Only one
// fetch runs at a time; the others wait for it (or for their context).
func (k *JWKS) refresh(ctx context.Context) bool {
	select {
	case k.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-k.sem }()
	now := k.now()
	if last := k.last.Load(); last != 0 && now.Sub(time.Unix(0, last)) < k.opts.MinRefreshInterval {
		// A fetch just happened (maybe while this request waited): use it.
		return true
	}
	k.last.Store(now.UnixNano())
	set, err := k.fetch(ctx)
	if err != nil {
		k.log.Warn("JWKS refresh failed; keeping the previous keys", zap.String("source", k.source), zap.Error(err))
		return false
	}
	k.store(set)
	k.log.Info("JWKS refreshed", zap.String("source", k.source), zap.Int("keys", len(set.Keys)))
	return true
}

// fetch reads the key set from its source and checks it holds at least one
// usable signature key.
func (k *JWKS) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	var data []byte
	var err error
	switch {
	case k.opts.File != "":
		data, err = os.ReadFile(k.opts.File)
		if err != nil {
			return nil, fmt.Errorf("identity: JWKS file: %w (check the path and that scgate may read it)", err)
		}
	case k.opts.URL != "":
		data, err = k.get(ctx, k.opts.URL)
	default:
		data, err = k.jwksFromDiscovery(ctx)
	}
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("identity: JWKS from %s is not a JSON Web Key Set: %w", k.source, err)
	}
	usable := 0
	for _, key := range set.Keys {
		if !key.IsPublic() {
			return nil, fmt.Errorf("identity: JWKS from %s holds a private or symmetric key (kid %q): publish public keys only", k.source, key.KeyID)
		}
		if key.Use == "" || key.Use == "sig" {
			usable++
		}
	}
	if usable == 0 {
		return nil, fmt.Errorf("identity: JWKS from %s holds no public signature key", k.source)
	}
	return &set, nil
}

func (k *JWKS) jwksFromDiscovery(ctx context.Context) ([]byte, error) {
	data, err := k.get(ctx, k.opts.DiscoveryURL)
	if err != nil {
		return nil, err
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.JWKSURI == "" {
		return nil, fmt.Errorf("identity: %s is not an OpenID discovery document with a jwks_uri", k.opts.DiscoveryURL)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("identity: the jwks_uri in %s is not an http(s) URL", k.opts.DiscoveryURL)
	}
	return k.get(ctx, doc.JWKSURI)
}

// get fetches one document with a bounded size.
func (k *JWKS) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("identity: JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if k.opts.BearerTokenFile != "" {
		tok, err := os.ReadFile(k.opts.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("identity: JWKS bearer token file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("identity: fetching %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJWKSBytes))
		return nil, fmt.Errorf("identity: fetching %s: HTTP %d (for the Kubernetes API server, check the bearer token file and the service-account-issuer-discovery role)", u, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("identity: fetching %s: %w", u, err)
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("identity: %s is larger than 1 MiB", u)
	}
	return data, nil
}
