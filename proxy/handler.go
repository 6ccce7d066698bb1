package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/metrics"
	"github.com/scgate/scgate/proxy/cache"
	"github.com/scgate/scgate/proxy/identity"
	"github.com/scgate/scgate/proxy/policy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

// VaultSource hands out the current vault snapshot; *keyvault.Watcher is one.
type VaultSource interface {
	Current() *keyvault.Vault
}

// Options configures a Handler. Upstream (or Panels), Identity and Vault are
// required.
type Options struct {
	// Upstream is the broadcaster's origin, e.g. https://radio.example.com:1030,
	// for a gateway with one panel (named keyvault.DefaultPanel). It must
	// have no path, query, fragment or user info: callers' paths are
	// forwarded unchanged.
	Upstream *url.URL
	// Transport carries requests upstream; nil means NewTransport(TransportOptions{}).
	Transport http.RoundTripper
	// Panels, instead of Upstream and Transport, are the panels of a
	// gateway in front of several (panels.go).
	Panels []Panel
	// PanelRouting says how a request names its panel; the zero value
	// reads the /panels/NAME path prefix.
	PanelRouting PanelRouting
	// Identity establishes the caller.
	Identity identity.Resolver
	// Vault gives the key snapshot a request works on.
	Vault VaultSource
	// Limiter limits each caller and key; nil means no limit.
	Limiter *ratelimit.Limiter
	// Policy gives the route allow-lists; nil (or a nil *policy.Policy)
	// allows every route.
	Policy PolicySource
	// MaxUpstreamPause caps how long an upstream 429 or 503's Retry-After
	// pauses a key (default 5m).
	MaxUpstreamPause time.Duration
	// Metrics records the request metrics; nil records nothing.
	Metrics *metrics.Metrics
	// Logger writes the access log and errors; nil discards them.
	Logger *zap.Logger
	// Now is the clock for key validity; nil means time.Now.
	Now func() time.Time
	// MaxBodyBytes refuses larger request bodies with 413 (default 32 MiB).
	MaxBodyBytes int64
	// PublicURL, when set, is the origin written into rewritten pagination
	// links; nil means the origin the caller used (scheme and Host).
	PublicURL *url.URL
	// BufferBudget caps the bytes held at once, across all requests, for
	// pagination rewrites and replay buffers (default DefaultBufferBudget).
	// When it is spent, an answer passes without its links rewritten and a
	// request body is not kept for a retry (budget.go).
	BufferBudget int64
	// Rejections remembers the key versions the broadcaster refused (403),
	// so that requests use a standby version for the cool-down (failover.go);
	// nil means a private set with keyvault.DefaultCoolDown and Now.
	Rejections *keyvault.Rejections
	// ReplayBodyBytes is the largest request body buffered so that a request
	// refused for its key can be retried with a standby version (0 means
	// DefaultReplayBodyBytes; negative: only requests without a body are
	// retried). Larger bodies stream and are not retried.
	ReplayBodyBytes int64
	// RejectionCheck says how a 403 is confirmed as a refusal of the key
	// itself, rather than of the caller's route, before the version is set
	// aside (confirm.go). The zero value probes DefaultCanary.
	RejectionCheck RejectionCheck
	// TrustedProxies are the direct peers whose Forwarded, X-Forwarded-* and
	// ProxyHeaders reach the identity resolvers; from any other peer they are
	// removed before identification. Nil trusts no one.
	TrustedProxies *identity.TrustedProxies
	// ProxyHeaders are identity headers that only a trusted proxy may set
	// (X-Forwarded-Client-Cert). Like Forwarded and X-Forwarded-*, they are
	// never forwarded to the broadcaster.
	ProxyHeaders []string
	// Hosts are the Host values the gateway answers ("name" or "name:port";
	// a name without a port stands for the scheme's default port); others
	// get 421. Empty: see LoopbackHosts.
	Hosts []string
	// LoopbackHosts, with no Hosts, answers on a loopback address only to
	// that address and to localhost, at the listener's port (the defence
	// against DNS rebinding); without it and without Hosts, any Host is
	// answered. cmd/scgate sets it for a loopback listener.
	LoopbackHosts bool
	// AllowBrowsers lets through requests a browser marks as cross-site
	// (Sec-Fetch-Site: cross-site or same-site, an Origin that is not one
	// of the hosts). By default they get 403 cross_site_request: a page on
	// another site must not be able to drive a gateway that asks for no
	// credential.
	AllowBrowsers bool
	// StripBearer removes "Authorization: Bearer ..." before forwarding: set
	// it when callers present their identity token there (the jwt resolver),
	// so the token never reaches the broadcaster. Other schemes, such as the
	// broadcaster's own "Authorization: JWT ...", pass through.
	StripBearer bool
	// Trace configures the request spans (trace.go); the zero value traces
	// nothing.
	Trace TraceOptions
	// Cache answers the routes its rules mark cacheable from stored
	// answers, after every other stage has admitted the request; nil
	// caches nothing. Its owner closes it.
	Cache *cache.Cache
}

// Handler is the gateway's http.Handler.
type Handler struct {
	panels     map[string]*panel
	panelNames []string // sorted
	routing    PanelRouting
	identity   identity.Resolver
	vault      VaultSource
	limiter    *ratelimit.Limiter
	policy     PolicySource
	maxPause   time.Duration
	metrics    *metrics.Metrics
	log        *zap.Logger
	now        func() time.Time
	maxBody    int64
	publicURL  *url.URL
	budget     *budget
	rejections *keyvault.Rejections
	replayBody int64
	strip      stripper
	hosts      hostCheck
	rp         *httputil.ReverseProxy
	tracer     *tracer      // nil: no spans
	cache      *cache.Cache // nil: nothing cached
}

// New validates opts and returns the gateway handler.
func New(opts Options) (*Handler, error) {
	if opts.Identity == nil {
		return nil, errors.New("proxy: an identity resolver is required")
	}
	if opts.Vault == nil {
		return nil, errors.New("proxy: a vault is required")
	}
	h := &Handler{
		identity:   opts.Identity,
		vault:      opts.Vault,
		limiter:    opts.Limiter,
		policy:     opts.Policy,
		maxPause:   opts.MaxUpstreamPause,
		metrics:    opts.Metrics,
		log:        opts.Logger,
		now:        opts.Now,
		maxBody:    opts.MaxBodyBytes,
		publicURL:  opts.PublicURL,
		rejections: opts.Rejections,
		replayBody: opts.ReplayBodyBytes,
		strip:      newStripper(opts.TrustedProxies, opts.ProxyHeaders, opts.StripBearer),
		tracer:     newTracer(opts.Trace),
		cache:      opts.Cache,
	}
	hosts, err := newHostCheck(opts.Hosts, opts.LoopbackHosts, opts.AllowBrowsers)
	if err != nil {
		return nil, err
	}
	h.hosts = hosts
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if opts.BufferBudget <= 0 {
		opts.BufferBudget = DefaultBufferBudget
	}
	h.budget = newBudget(opts.BufferBudget, h.metrics, h.log)
	if h.replayBody == 0 {
		h.replayBody = DefaultReplayBodyBytes
	}
	if h.rejections == nil {
		rej, err := keyvault.NewRejections(keyvault.RejectionsOptions{Now: h.now})
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		h.rejections = rej
	}
	if h.maxPause <= 0 {
		h.maxPause = DefaultMaxUpstreamPause
	}
	errLog, err := zap.NewStdLogAt(h.log.Named("reverseproxy"), zap.WarnLevel)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if err := h.newPanels(opts); err != nil {
		return nil, err
	}
	// Each panel's failover (panels.go) holds its connection-error retry;
	// the cache sits outside both, so one shared fetch is one request.
	var forward http.RoundTripper = panelTransport{}
	if opts.Cache != nil {
		forward = cacheStage{c: opts.Cache, next: forward, h: h}
	}
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      forward,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.proxyError,
		BufferPool:     newBufferPool(),
		ErrorLog:       log.New(errLog.Writer(), "", 0),
	}
	return h, nil
}

func validateUpstream(u *url.URL) error {
	switch {
	case u == nil:
		return errors.New("proxy: the upstream URL is required")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("proxy: upstream %q: scheme must be https (or http)", u.Redacted())
	case u.Host == "":
		return fmt.Errorf("proxy: upstream %q: no host", u.Redacted())
	case u.User != nil:
		return errors.New("proxy: upstream URL must not carry user info")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("proxy: upstream %q: give only scheme://host:port; callers' paths are forwarded as they are", u.Redacted())
	}
	return nil
}

// state is what one request carries through the stages; it is what the access
// log line and the metrics are made of.
type state struct {
	id             string
	idHeader       []string // id as a header value, for the request and the answer
	start          time.Time
	caller         string // "" until identified
	known          bool   // caller is in the vault: only then is it a metric label
	route          string
	rule           policy.Decision // the route policy's decision
	path           string          // the normalised path (policy.Normalize)
	keyName        string          // the caller's vault key, for the key's limits
	panel          *panel          // the panel the request goes to; nil until chosen
	panelPrefix    string          // "/panels/NAME" when the path named the panel, added back to links
	forwardPath    string          // the escaped path forwarded, when the prefix was removed
	admission      ratelimit.Admission
	version        *keyvault.Version
	status         int
	upstreamStatus int
	code           string // gateway error code, if any
	err            error
	bytesOut       int64
	tls            bool   // the caller came over TLS
	sharedConn     bool   // the connection already carried an identified caller's request
	host           string // the Host the caller used
	retry          retryState
	bufferFallback string          // useRewrite or useReplay when the buffer budget was spent
	station        StationDecision // the station stage's decision (station.go)
	explainIn      *stationInput   // Explain's query and body, for the station stage
	trace          traceState
	cache          string // what the response cache did (cache.Outcome), "" when not cacheable

	// Held here so that a request allocates them with its state, not one by one.
	rec             recorder
	idValue         [1]string
	keyHeader       [1]string
	rateLimitValues [2]string
	ctx             stateContext
}

type stateKey struct{}

// stateContext is the request's context with its state as the stateKey
// value: held in the state, so that attaching the state allocates nothing
// (context.WithValue would allocate a context of its own per request).
// Deadline, Done and Err are the parent's, so context.WithCancel below it
// still finds the parent's cancellation without a goroutine of its own.
type stateContext struct {
	context.Context
	st *state
}

func (c *stateContext) Value(key any) any {
	if key == (stateKey{}) {
		return c.st
	}
	return c.Context.Value(key)
}

// ServeHTTP runs the stages of docs/design.md, Request path, in order.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &state{
		id:    requestID(r.Header.Get("X-Request-Id")),
		start: time.Now(),
		route: routeOf(r.URL.Path),
		tls:   r.TLS != nil,
		host:  r.Host,
	}
	st.sharedConn = connIdentified(r.Context())
	st.idValue[0] = st.id
	st.idHeader = st.idValue[:]
	st.rec = recorder{ResponseWriter: w, st: st}
	rec := &st.rec
	h.metrics.RequestStarted()
	defer h.metrics.RequestDone()
	defer h.observe(r, st)
	if e := h.serve(rec, r, st); e != nil {
		h.writeError(rec, st, e)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, st *state) *gatewayError {
	if e := checkFraming(r); e != nil {
		return e
	}
	if e := checkRequest(r); e != nil {
		return e
	}
	if e := h.hosts.check(r); e != nil {
		return e
	}
	defer st.admission.Release() // st.admission is the last one decide took
	// The station stage may reserve budget for the body it reads.
	defer func() { h.budget.give(st.retry.reserved) }()
	vault, e := h.decide(r.Context(), st, r, "", r.Method, r.Host, r.URL.EscapedPath())
	if e != nil {
		h.startSpan(r, st) // with the caller, when it was identified
		return e
	}
	st.retry.key, _ = vault.KeyFor(st.caller, st.panel.name)
	if e := h.panelCapacity(st); e != nil {
		return e
	}

	if r.ContentLength > h.maxBody {
		return errTooLarge(h.maxBody, nil)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
	}
	if e := h.prepareReplay(r, st); e != nil {
		return e
	}
	ctx := h.startSpan(r, st)
	st.ctx = stateContext{Context: ctx, st: st}
	out := r.WithContext(&st.ctx)
	if st.panelPrefix != "" {
		out.URL = forwardURL(r, st.forwardPath)
	}
	h.rp.ServeHTTP(w, out)
	// The server sends the trailers after this returns.
	dropScgateTrailers(w.Header())
	return nil
}

// maxRequeue bounds how often a request is queued again because its
// caller's key changed while it waited.
const maxRequeue = 2

// admit is the limit stage, and what follows a wait in its queue: the vault
// and the route policy may have changed while the request waited (a caller
// removed, a compromised version removed, a rule narrowed), so they are read
// again and the request decided again. The identity is fixed; the key, its
// version and the route rule are not. It returns the vault to pick the key
// version from. A caller moved to another key is limited again on that key's
// bucket (it may queue again, at most maxRequeue times).
func (h *Handler) admit(r *http.Request, st *state, vault *keyvault.Vault) (*keyvault.Vault, *gatewayError) {
	for round := 0; ; round++ {
		if e := h.limit(r.Context(), st); e != nil {
			return nil, e
		}
		if !st.admission.Waited {
			return vault, nil
		}
		vault = h.vault.Current()
		key, ok := vault.KeyFor(st.caller, st.panel.name)
		if !ok {
			// Not sent after all: the tokens go back to buckets that
			// other callers share.
			st.admission.Refund(r.Context())
			return nil, newError(CodeForbidden, http.StatusForbidden,
				"caller "+quote(st.caller)+" was removed from the vault while its request was queued; ask the gateway's operators to add it under [callers]", nil)
		}
		if key == nil {
			st.admission.Refund(r.Context())
			return nil, newError(CodePanelForbidden, http.StatusForbidden,
				"caller "+quote(st.caller)+"'s key on panel "+quote(st.panel.name)+" was removed from the vault while its request was queued", nil)
		}
		if e := h.authorise(r.Method, st); e != nil {
			st.admission.Refund(r.Context())
			return nil, e
		}
		if key.Name == st.keyName {
			return vault, nil
		}
		// Limited again on the new key's bucket: the old key's token and
		// the caller's go back.
		st.admission.Refund(r.Context())
		st.admission.Release()
		if round == maxRequeue {
			return nil, newError(CodeNoValidKey, http.StatusServiceUnavailable,
				"caller "+quote(st.caller)+"'s key changed again and again while its request was queued; retry", nil)
		}
		st.keyName = key.Name
	}
}

// checkRequest refuses requests that could make a proxy send somewhere other
// than the upstream or that cannot be forwarded faithfully.
func checkRequest(r *http.Request) *gatewayError {
	switch {
	case r.Method == http.MethodConnect:
		return newError(CodeBadRequest, http.StatusBadRequest, "CONNECT is not supported: scgate forwards only to the broadcaster API", nil)
	case !policy.Forwarded(r.Method):
		// TRACE would have the upstream echo the request, key included,
		// back to the caller; other methods are not part of the API.
		e := newError(CodeMethodNotAllowed, http.StatusMethodNotAllowed,
			"method "+quote(r.Method)+" is not forwarded: use one of "+policy.Methods, nil)
		e.allow = policy.Methods
		return e
	case r.RequestURI == "*":
		return newError(CodeBadRequest, http.StatusBadRequest, "asterisk-form request targets are not supported", nil)
	case !strings.HasPrefix(r.URL.Path, "/"):
		return newError(CodeBadRequest, http.StatusBadRequest, "the request path must start with /", nil)
	}
	if reason := queryAltered(r.URL.RawQuery); reason != "" {
		return newError(CodeBadRequest, http.StatusBadRequest,
			"the query string cannot be forwarded unchanged: "+reason, nil)
	}
	return nil
}

// maxQueryParams is net/url's limit on parameters, past which
// httputil.ReverseProxy re-encodes the query without them.
const maxQueryParams = 10000

// queryAltered says why ReverseProxy would not forward the query string as
// sent (it re-encodes one it cannot parse, silently dropping parameters),
// or "" when it would forward it unchanged.
func queryAltered(q string) string {
	if q == "" {
		return ""
	}
	if strings.Count(q, "&")+1 > maxQueryParams {
		return "it has more than " + strconv.Itoa(maxQueryParams) + " parameters; send fewer per request"
	}
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return "it has a ';', which is not a parameter separator; escape it as %3B"
		case '%':
			if i+2 >= len(q) || !isHexDigit(q[i+1]) || !isHexDigit(q[i+2]) {
				return "a % is not followed by two hex digits; escape it as %25"
			}
			i += 2
		}
	}
	return ""
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// rewrite builds the outbound request. It runs after ReverseProxy removed the
// hop-by-hop headers, so a caller's "Connection: SC-API-KEY" can only remove
// the caller's own copy, never the key injected here.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*state)
	pr.SetURL(st.panel.upstream)
	out := pr.Out
	h.strip.outbound(out.Header)
	h.outboundTrace(out.Header, st)
	preventReplay(out)
	st.keyHeader[0] = st.version.Secret.Value()
	out.Header["SC-API-KEY"] = st.keyHeader[:]
	// Header names as Set would canonicalise them, without the work.
	out.Header["X-Request-Id"] = st.idHeader
	// Request trailers could smuggle a second key after the body; the API uses none.
	out.Trailer = nil
	if out.Method == http.MethodGet && paginatedRoutes[st.route] {
		// The pagination links are rewritten in the body, which needs it uncompressed.
		out.Header.Del("Accept-Encoding")
	}
}

func (h *Handler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(stateKey{}).(*state)
	h.writeError(w, st, upstreamError(r, err))
}

// requestID returns the caller's X-Request-Id when it is well formed (so that
// traces join up), else a new random one.
func requestID(given string) string {
	if validRequestID(given) {
		return given
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// quote bounds and escapes a caller identity before it goes into a message.
func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// copyBufferSize is the size of the buffers that copy bodies.
const copyBufferSize = 16 << 10

// bufferPool lends ReverseProxy its copy buffers. It holds array pointers, so
// that Put converts the slice back without allocating (a pool of *[]byte
// allocates a new pointer on every Put).
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(x []byte) {
	if cap(x) != copyBufferSize {
		return // not one of ours
	}
	b.p.Put((*[copyBufferSize]byte)(x[:copyBufferSize]))
}
