package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy/policy"
)

// Confirming a refusal. A 403 from the broadcaster means either "this key is
// not valid" (revoked, expired, mistyped) or "this key may not use this
// route" (a permission refusal), and the body cannot be trusted to tell them
// apart: with Django REST Framework both can read "You do not have permission
// to perform this action.". Taking every 403 for a key refusal would let any
// caller flip a key for all its callers by sending one request to a route it
// is not permitted. So before a version is set aside, the failover asks the
// broadcaster once more, with nothing of the caller's request: a GET of a
// canary route that needs a key and that every valid key may read. Only when
// the canary refuses the version too is the refusal confirmed.
//
// The probe is shared and rate-limited per version: concurrent 403s wait for
// the one probe in flight, and its verdict is reused for ProbeInterval, so a
// caller hammering a forbidden route costs the broadcaster at most one canary
// request per version per interval. A probe that fails (a transport error,
// its deadline, any answer but 2xx or 403) proves nothing: the 403 passes to
// the caller and the version stays in service, because setting a key aside
// on evidence a caller can provoke is exactly the attack this guards against.

// DefaultCanary is the route probed when RejectionCheck.Canary is zero: the
// playlists list needs a key and is readable by every valid key.
const DefaultCanary = "GET /api/v2/playlists/?server=1"

// Defaults of RejectionCheck.
const (
	// DefaultProbeTimeout bounds one canary probe, and so how much longer a
	// caller whose request got a 403 waits for the verdict.
	DefaultProbeTimeout = 2 * time.Second
	// DefaultProbeInterval is how long a probe's verdict is reused for the
	// same version: at most one probe per version per interval.
	DefaultProbeInterval = 2 * time.Second
)

// CanaryUserAgent is the User-Agent of the canary probes, so that the
// broadcaster's logs (and tests) can tell them from callers' requests.
const CanaryUserAgent = "scgate-canary"

// maxMatchBytes is how much of a 403 body the body matcher reads; a refusal
// the matcher should recognise is a short JSON object.
const maxMatchBytes = 4 << 10

// maxWordingBytes bounds RejectionCheck.BodyMatch.
const maxWordingBytes = 256

// Canary is the route a refusal is confirmed on.
type Canary struct {
	Method   string // GET or HEAD
	Path     string // escaped path, starting with /
	RawQuery string // without the ?
}

// String gives the canary as ParseCanary reads it.
func (c Canary) String() string {
	s := c.Method + " " + c.Path
	if c.RawQuery != "" {
		s += "?" + c.RawQuery
	}
	return s
}

// ParseCanary reads "METHOD /path?query", e.g. DefaultCanary. The method must
// be GET or HEAD (a probe must change nothing), and the target a plain path:
// the probe goes to the configured upstream only, so a scheme or host is an
// error rather than ignored.
func ParseCanary(s string) (Canary, error) {
	method, target, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return Canary{}, fmt.Errorf("canary %q: give a method and a path, like %q", s, DefaultCanary)
	}
	target = strings.TrimSpace(target)
	if method != http.MethodGet && method != http.MethodHead {
		return Canary{}, fmt.Errorf("canary %q: the method must be GET or HEAD, so that the probe changes nothing", s)
	}
	if !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") {
		return Canary{}, fmt.Errorf("canary %q: give a path starting with / (the probe goes to the upstream only), like %q", s, DefaultCanary)
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || u.Host != "" || u.Fragment != "" || strings.ContainsAny(target, " #") {
		return Canary{}, fmt.Errorf("canary %q: not a plain path and query", s)
	}
	if _, err := policy.Normalize(u.EscapedPath()); err != nil {
		return Canary{}, fmt.Errorf("canary %q: %w", s, err)
	}
	return Canary{Method: method, Path: u.EscapedPath(), RawQuery: u.RawQuery}, nil
}

// RejectionCheck configures how a 403 is confirmed as a key refusal before
// the version is set aside (Options.RejectionCheck).
type RejectionCheck struct {
	// Canary is probed with the version under test; the zero value means
	// DefaultCanary. It must need a key and be permitted to every valid key:
	// a route readable without a key would make every 403 look like a
	// permission refusal, so no version would ever be set aside.
	Canary Canary
	// BodyMatch, when set, is the exact wording of the broadcaster's key
	// refusal (e.g. "Invalid API key."): a 403 whose body is
	// {"detail": BodyMatch} (or exactly BodyMatch) is taken as confirmed
	// without a probe. Other 403s are probed as usual.
	BodyMatch string
	// ProbeTimeout bounds each probe (0: DefaultProbeTimeout).
	ProbeTimeout time.Duration
	// ProbeInterval is how long a verdict is reused (0: DefaultProbeInterval).
	ProbeInterval time.Duration
}

// BodyMatcher recognises the broadcaster's wording of a key refusal.
type BodyMatcher struct {
	wording string
}

// NewBodyMatcher returns a matcher for wording: printable, at most 256 bytes,
// not empty, with no surrounding spaces.
func NewBodyMatcher(wording string) (*BodyMatcher, error) {
	switch {
	case wording == "":
		return nil, errors.New("the body match must not be empty")
	case len(wording) > maxWordingBytes:
		return nil, fmt.Errorf("the body match is %d bytes; at most %d", len(wording), maxWordingBytes)
	case strings.TrimSpace(wording) != wording:
		return nil, errors.New("the body match must not start or end with spaces")
	}
	for _, r := range wording {
		if r < ' ' || r == 0x7f || r == '\uFFFD' {
			return nil, errors.New("the body match must be printable text")
		}
	}
	return &BodyMatcher{wording: wording}, nil
}

// Match reports whether body is exactly the refusal: a JSON object whose
// "detail" is the wording, or the wording alone (surrounding whitespace
// aside). Whole-value equality, not a substring, so that a 403 that quotes
// a caller's input cannot be made to match.
func (m *BodyMatcher) Match(body []byte) bool {
	body = bytes.TrimSpace(body)
	if string(body) == m.wording {
		return true
	}
	if len(body) == 0 || body[0] != '{' {
		return false
	}
	var v struct {
		Detail *string `json:"detail"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Detail == nil {
		return false
	}
	return *v.Detail == m.wording
}

// verdict is what a probe found out about a version.
type verdict uint8

const (
	verdictUnknown  verdict = iota // the probe failed: no evidence either way
	verdictAccepted                // the canary accepted the version: the 403 was about the route
	verdictRefused                 // the canary refused the version too
)

func (v verdict) String() string {
	return [...]string{"unknown", "accepted", "refused"}[v]
}

// probe is one canary request and its verdict, shared by every 403 of the
// version while it runs and for ProbeInterval after.
type probe struct {
	done     chan struct{} // closed when verdict is set
	verdict  verdict
	finished bool      // under confirmer.mu
	at       time.Time // when it finished, under confirmer.mu
}

// confirmer runs the probes.
type confirmer struct {
	canary   Canary
	match    *BodyMatcher
	timeout  time.Duration
	interval time.Duration
	target   string // the canary's URL at the upstream
	rt       http.RoundTripper
	log      *zap.Logger

	mu     sync.Mutex
	probes map[*keyvault.Version]*probe
}

func newConfirmer(c RejectionCheck, upstream *url.URL, rt http.RoundTripper, log *zap.Logger) (*confirmer, error) {
	if c.Canary == (Canary{}) {
		c.Canary, _ = ParseCanary(DefaultCanary)
	} else if _, err := ParseCanary(c.Canary.String()); err != nil {
		return nil, fmt.Errorf("proxy: RejectionCheck: %w", err)
	}
	if c.ProbeTimeout < 0 || c.ProbeInterval < 0 {
		return nil, errors.New("proxy: RejectionCheck: the probe timeout and interval must not be negative")
	}
	cf := &confirmer{
		canary: c.Canary, timeout: c.ProbeTimeout, interval: c.ProbeInterval,
		rt: rt, log: log, probes: make(map[*keyvault.Version]*probe),
	}
	if c.BodyMatch != "" {
		m, err := NewBodyMatcher(c.BodyMatch)
		if err != nil {
			return nil, fmt.Errorf("proxy: RejectionCheck: %w", err)
		}
		cf.match = m
	}
	if cf.timeout == 0 {
		cf.timeout = DefaultProbeTimeout
	}
	if cf.interval == 0 {
		cf.interval = DefaultProbeInterval
	}
	u := *upstream
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "", "", "", ""
	cf.target = strings.TrimSuffix(u.String(), "/") + c.Canary.Path
	if c.Canary.RawQuery != "" {
		cf.target += "?" + c.Canary.RawQuery
	}
	return cf, nil
}

// refused reports whether the broadcaster's 403 resp to a request carrying v
// refused the key itself: the body matcher recognised it, or the canary
// refuses v too. It waits at most until the probe's deadline, or until ctx
// (the caller's request) is done. resp's body reaches the caller unchanged.
func (c *confirmer) refused(ctx context.Context, st *state, v *keyvault.Version, resp *http.Response) bool {
	if c.match != nil && resp.Body != nil {
		head, err := io.ReadAll(io.LimitReader(resp.Body, maxMatchBytes))
		// Put back what was read, in front of the rest.
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
		if err == nil && resp.Header.Get("Content-Encoding") == "" && c.match.Match(head) {
			return true
		}
	}
	p := c.probe(v, st.id)
	select {
	case <-p.done:
		return p.verdict == verdictRefused
	case <-ctx.Done():
		return false // the caller went away; nothing is decided on its behalf
	}
}

// probe returns the probe of v that is running or whose verdict is still
// fresh, or starts one.
func (c *confirmer) probe(v *keyvault.Version, requestID string) *probe {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.probes[v]; p != nil && (!p.finished || now.Sub(p.at) < c.interval) {
		return p
	}
	// Drop stale verdicts, so the map holds only versions probed lately.
	for k, p := range c.probes {
		if p.finished && now.Sub(p.at) >= c.interval {
			delete(c.probes, k)
		}
	}
	p := &probe{done: make(chan struct{})}
	c.probes[v] = p
	go c.run(p, v, requestID)
	return p
}

// run sends the canary request with v alone and records the verdict.
func (c *confirmer) run(p *probe, v *keyvault.Version, requestID string) {
	vd, status, err := c.ask(v)
	c.mu.Lock()
	p.verdict, p.finished, p.at = vd, true, time.Now()
	c.mu.Unlock()
	close(p.done)

	fields := []zap.Field{zap.String("key", v.Key), zap.String("prefix", v.Secret.Prefix()),
		zap.String("canary", c.canary.String()), zap.String("request_id", requestID)}
	switch vd {
	case verdictAccepted:
		c.log.Info("the broadcaster refused a request (403) but accepts its key on the canary route: a permission refusal for that route; the key stays in service", fields...)
	case verdictUnknown:
		fields = append(fields, zap.Int("canary_status", status))
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		c.log.Warn("the broadcaster refused a request (403) and the canary probe could not tell whether the key itself was refused; the 403 went to the caller and the key stays in service. Check rotation.rejection_canary: it must need a key and be allowed to every valid key", fields...)
	}
}

// ask is one canary request: only the key under test, its own deadline, the
// configured upstream only.
func (c *confirmer) ask(v *keyvault.Version) (verdict, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.canary.Method, c.target, nil)
	if err != nil {
		return verdictUnknown, 0, err
	}
	req.Header = http.Header{"SC-API-KEY": {v.Secret.Value()}, "User-Agent": {CanaryUserAgent}}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return verdictUnknown, 0, errors.New(upstreamErrorText(err))
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDiscard)
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return verdictAccepted, resp.StatusCode, nil
	case resp.StatusCode == http.StatusForbidden:
		return verdictRefused, resp.StatusCode, nil
	}
	return verdictUnknown, resp.StatusCode, errors.New("the canary answered " + strconv.Itoa(resp.StatusCode))
}

// upstreamErrorText describes a transport error without the upstream's
// address (which url.Error would quote).
func upstreamErrorText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "the canary probe timed out"
	}
	return "the canary probe failed: " + err.Error()
}
