package proxy

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/scgate/scgate/proxy/ratelimit"
)

// limit is the limit stage: the caller's concurrency cap and bucket, then its
// key's bucket (docs/design.md, Request path, step 6). An admitted request holds
// st.admission until its response is done.
func (h *Handler) limit(ctx context.Context, st *state) *gatewayError {
	if h.limiter == nil {
		return nil
	}
	a, err := h.limiter.Admit(ctx, st.caller, st.keyName)
	if err != nil {
		return newError("client_closed", statusClientClosed, "the caller went away while its request was queued", err)
	}
	st.admission = a
	if a.Allowed {
		return nil
	}
	h.metrics.RateLimited(st.caller, string(a.Scope))
	var msg string
	switch {
	case a.Concurrency:
		msg = "caller " + quote(st.caller) + " has as many requests in flight as it may (its concurrency cap); retry when one has finished"
	case a.Paused:
		msg = "the broadcaster asked scgate to slow down for key " + quote(st.keyName) + "; retry after the number of seconds in Retry-After"
	case a.Scope == ratelimit.ScopeKey:
		msg = "the callers sharing key " + quote(st.keyName) + " are together over its request rate; retry after the number of seconds in Retry-After"
	default:
		msg = "caller " + quote(st.caller) + " is over its request rate; retry after the number of seconds in Retry-After"
	}
	e := newError(CodeRateLimited, http.StatusTooManyRequests, msg, nil)
	e.rl = &st.admission.Decision
	return e
}

// setRateLimitHeaders writes the RateLimit-Policy and RateLimit headers of
// the IETF httpapi draft, so that well-behaved clients can pace themselves.
// vals, when not nil, is where the two values are kept (the request's
// state, so that they need no allocation of their own).
func setRateLimitHeaders(h http.Header, d *ratelimit.Decision, vals *[2]string) {
	p, s := d.PolicyHeader(), d.StateHeader()
	// One backing array for both values, under the names Set would
	// canonicalise them to ("Ratelimit-Policy", "Ratelimit").
	if vals == nil {
		vals = new([2]string)
	}
	vals[0], vals[1] = p, s
	if p != "" {
		h["Ratelimit-Policy"] = vals[0:1:1]
	}
	if s != "" {
		h["Ratelimit"] = vals[1:2:2]
	}
}

// defaultUpstreamPause is how long a key pauses after an upstream 429 that
// gave no Retry-After.
const defaultUpstreamPause = time.Second

// afterUpstream adds the RateLimit headers to a forwarded answer and, when the
// broadcaster says it is overloaded (429, or 503 with Retry-After), pauses the
// key's bucket so that no caller of that key hammers it meanwhile.
func (h *Handler) afterUpstream(resp *http.Response, st *state) {
	if st.admission.Allowed {
		setRateLimitHeaders(resp.Header, &st.admission.Decision, &st.rateLimitValues)
	}
	if h.limiter == nil {
		return
	}
	ra := resp.Header.Get("Retry-After")
	if resp.StatusCode != http.StatusTooManyRequests && (resp.StatusCode != http.StatusServiceUnavailable || ra == "") {
		return
	}
	d, ok := parseRetryAfter(ra, time.Now())
	if !ok {
		d = defaultUpstreamPause
	}
	d = min(d, h.maxPause)
	if err := h.limiter.Pause(resp.Request.Context(), st.keyName, d); err != nil {
		h.log.Warn("could not pause the key after the broadcaster's answer", zap.String("key", st.keyName), zap.Error(err))
		return
	}
	h.log.Warn("the broadcaster asked to slow down: the key's callers are paused",
		zap.String("key", st.keyName), zap.Int("upstream_status", resp.StatusCode), zap.Duration("pause", d))
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}
