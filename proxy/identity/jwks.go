package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
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
	// MaxAge is how long a fetched key set is used before a token triggers
	// a refresh, so a removed key stops being accepted (default 1h). The
	// refresh runs in the background: requests keep verifying with the
	// cached keys meanwhile.
	MaxAge time.Duration
	// MaxStale is the hard limit on the age of the keys in use: while the
	// issuer cannot be reached, the last keys fetched keep verifying tokens
	// until they are this old, and then no token is accepted until a fetch
	// succeeds (default DefaultJWKSMaxStale; at least MaxAge).
	MaxStale time.Duration
	// FetchWait is the longest a request waits for a fetch: a token whose
	// key is not cached, or a request arriving after MaxStale, waits for
	// the (shared) fetch at most this long (default DefaultJWKSFetchWait).
	FetchWait time.Duration
	// Issuer is the token issuer URL; a jwks_uri on its host is accepted,
	// like one on the discovery URL's host. Optional.
	Issuer string
	// AllowedHosts are further hosts ("keys.example" or "10.0.0.1:6443") a
	// discovery document's jwks_uri may name. By default only the discovery
	// URL's and the issuer's hosts are accepted, so whoever can change the
	// discovery document cannot point scgate at a host of their choosing.
	AllowedHosts []string
	// Logger reports refreshes. Nil discards them.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// maxJWKSBytes bounds a fetched discovery or JWKS document.
const maxJWKSBytes = 1 << 20

// Defaults of JWKSOptions.
const (
	// DefaultJWKSMaxStale is JWKSOptions.MaxStale when zero.
	DefaultJWKSMaxStale = 6 * time.Hour
	// DefaultJWKSFetchWait is JWKSOptions.FetchWait when zero.
	DefaultJWKSFetchWait = 2 * time.Second
	// jwksFetchTimeout bounds one fetch (discovery and key set together),
	// whatever the client's own timeout.
	jwksFetchTimeout = 10 * time.Second
)

// JWKS is a cached JSON Web Key Set, refreshed when a token names a key it
// does not hold and when it is older than MaxAge, never more often than
// MinRefreshInterval. A failed refresh keeps the previous keys, up to
// MaxStale. Fetches run in the background, one at a time, and every request
// that needs one shares it; no request waits longer than FetchWait.
//
// Close stops a fetch in progress.
type JWKS struct {
	opts    JWKSOptions
	client  *http.Client
	log     *zap.Logger
	now     func() time.Time
	source  string   // what is fetched, for messages
	home    *url.URL // the configured URL: the only host the bearer token goes to
	allowed []string // hosts a jwks_uri may name, lower case

	cur  atomic.Pointer[keySet]
	last atomic.Int64 // unix nanoseconds of the last fetch attempt

	base   context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the fetch in flight
	mu     sync.Mutex     // guards flight and closed; never held across a fetch
	flight chan struct{}  // closed when the fetch in flight ends; nil: none
	closed bool
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
	k := &JWKS{opts: opts, log: opts.Logger, now: opts.Now}
	for _, u := range []string{opts.URL, opts.DiscoveryURL} {
		if u == "" {
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" || !secureURL(pu) {
			return nil, fmt.Errorf("identity: JWKS: %q is not an https URL (plain http only to a loopback address)", u)
		}
		if opts.BearerTokenFile != "" && pu.Scheme != "https" {
			return nil, fmt.Errorf("identity: JWKS: %q is plain http: the bearer token is only ever sent over https", u)
		}
		k.home = pu
	}
	for _, h := range opts.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/@?# ") {
			return nil, fmt.Errorf("identity: JWKS: allowed host %q is not a host name or host:port", h)
		}
		k.allowed = append(k.allowed, strings.ToLower(h))
	}
	if iss, err := url.Parse(opts.Issuer); opts.Issuer != "" && err == nil && iss.Hostname() != "" {
		k.allowed = append(k.allowed, strings.ToLower(iss.Hostname()))
	}
	if k.home != nil {
		k.allowed = append(k.allowed, strings.ToLower(k.home.Hostname()))
	}
	switch {
	case opts.Client == nil:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		k.client = &http.Client{Timeout: jwksFetchTimeout, Transport: tr}
	default:
		c := *opts.Client
		k.client = &c
	}
	// A redirect could take the request (and the bearer token) to another
	// host or to plain http: none is followed.
	k.client.CheckRedirect = func(*http.Request, []*http.Request) error { return errRedirect }
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
	if k.opts.MaxStale <= 0 {
		k.opts.MaxStale = max(DefaultJWKSMaxStale, k.opts.MaxAge)
	}
	if k.opts.MaxStale < k.opts.MaxAge {
		return nil, fmt.Errorf("identity: JWKS: the maximum staleness %v is shorter than the maximum age %v", k.opts.MaxStale, k.opts.MaxAge)
	}
	if k.opts.FetchWait <= 0 {
		k.opts.FetchWait = DefaultJWKSFetchWait
	}
	k.source = firstNonEmpty(opts.File, opts.URL, opts.DiscoveryURL)
	set, err := k.fetch(ctx)
	if err != nil {
		return nil, err
	}
	k.store(set)
	k.base, k.cancel = context.WithCancel(context.Background())
	return k, nil
}

// errRedirect refuses redirects of discovery and JWKS fetches.
var errRedirect = errors.New("redirects are not followed: configure the final URL")

// secureURL reports whether u is https, or plain http to a loopback address.
func secureURL(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		a, err := netip.ParseAddr(h)
		return err == nil && a.IsLoopback()
	}
	return false
}

// sameOrigin reports whether a and b name the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// hostAllowed reports whether a jwks_uri may name u's host.
func (k *JWKS) hostAllowed(u *url.URL) bool {
	host, hostPort := strings.ToLower(u.Hostname()), strings.ToLower(u.Hostname()+":"+port(u))
	for _, a := range k.allowed {
		if a == host || a == hostPort {
			return true
		}
	}
	return false
}

// Close stops a fetch in progress and waits for it; the keys already held
// keep working, and no new fetch starts.
func (k *JWKS) Close() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.cancel()
	k.wg.Wait()
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

// errStaleKeys is the refusal once the keys are older than MaxStale.
var errStaleKeys = errors.New("the issuer's keys could not be refreshed for too long (see the JWKS refresh warnings in the log)")

// keys returns the verification keys for kid ("" when the token names none).
// Fresh keys are returned at once; keys past MaxAge are returned at once too
// while a background refresh runs; a kid not held, or keys past MaxStale,
// wait for the refresh, at most FetchWait and never past ctx.
func (k *JWKS) keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	cur := k.cur.Load()
	found := matching(&cur.set, kid)
	age := k.now().Sub(cur.fetched)
	if len(found) > 0 && age < k.opts.MaxStale {
		if age >= k.opts.MaxAge {
			k.refresh()
		}
		return found, nil
	}
	if done := k.refresh(); done != nil {
		t := time.NewTimer(k.opts.FetchWait)
		select {
		case <-done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	cur = k.cur.Load()
	found = matching(&cur.set, kid)
	switch {
	case len(found) == 0:
		return nil, errUnknownKey
	case k.now().Sub(cur.fetched) >= k.opts.MaxStale:
		return nil, errStaleKeys
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

// refresh starts a background fetch unless one is in flight (then it joins
// it) or one started within MinRefreshInterval (then there is nothing to
// wait for). It returns a channel closed when the fetch ends, or nil.
func (k *JWKS) refresh() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.flight != nil {
		return k.flight
	}
	now := k.now()
	if last := k.last.Load(); k.closed || (last != 0 && now.Sub(time.Unix(0, last)) < k.opts.MinRefreshInterval) {
		return nil
	}
	k.last.Store(now.UnixNano())
	done := make(chan struct{})
	k.flight = done
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		k.fetchAndStore()
		k.mu.Lock()
		k.flight = nil
		k.mu.Unlock()
		close(done)
	}()
	return done
}

// fetchAndStore runs one fetch, bounded by jwksFetchTimeout and Close.
func (k *JWKS) fetchAndStore() {
	ctx, cancel := context.WithTimeout(k.base, jwksFetchTimeout)
	defer cancel()
	set, err := k.fetch(ctx)
	if err != nil {
		k.log.Warn("JWKS refresh failed; keeping the previous keys", zap.String("source", k.source),
			zap.Duration("keys_age", k.now().Sub(k.cur.Load().fetched)), zap.Duration("max_stale", k.opts.MaxStale), zap.Error(err))
		return
	}
	k.store(set)
	k.log.Info("JWKS refreshed", zap.String("source", k.source), zap.Int("keys", len(set.Keys)))
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
	if err != nil || u.Host == "" || u.User != nil || !secureURL(u) {
		return nil, fmt.Errorf("identity: the jwks_uri in %s is not an https URL (plain http only to a loopback address)", k.opts.DiscoveryURL)
	}
	if !k.hostAllowed(u) {
		return nil, fmt.Errorf("identity: the jwks_uri in %s names host %q, which is neither the discovery URL's nor the issuer's host: add it to the allowed JWKS hosts if it is right", k.opts.DiscoveryURL, u.Host)
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
	// scgate's own token goes only to the configured host, over https.
	if k.opts.BearerTokenFile != "" && k.home != nil && req.URL.Scheme == "https" && sameOrigin(req.URL, k.home) {
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
