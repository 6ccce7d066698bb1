package proxy

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/trace"

	"github.com/scgate/scgate/proxy/cache"
)

// cacheStage is the response cache's place in the forward step: a
// transport around the upstream round trip, so that it runs only for a
// request the gateway has decided to send (identity, route policy, limits
// and key version all passed). A cached answer then goes through
// modifyResponse like a fresh one.
type cacheStage struct {
	c    *cache.Cache
	next http.RoundTripper
	h    *Handler
}

func (s cacheStage) RoundTrip(out *http.Request) (*http.Response, error) {
	st, _ := out.Context().Value(stateKey{}).(*state)
	if st == nil {
		return s.next.RoundTrip(out)
	}
	// Keyed by the request's panel (its name and origin, so that fleets
	// in front of different broadcasters sharing a Redis store never meet).
	q := cache.Request{Panel: st.panel.cacheID, Key: st.keyName, Path: st.path}
	// A shared fetch works on its own copy of the request's state, taken
	// now: the caller that started it may be gone before it ends.
	var own *state
	if s.c.Covers(out.Method, st.path) {
		own = st.forFetch()
	}
	resp, err := s.c.RoundTrip(out, q, s.next, func(ctx context.Context) (*http.Response, error) {
		// Its client span joins the trace of the request that started it.
		ctx = trace.ContextWithSpanContext(ctx, trace.SpanContextFromContext(out.Context()))
		return s.next.RoundTrip(out.Clone(context.WithValue(ctx, stateKey{}, own)))
	})
	if err == nil {
		st.cache = cache.Outcome(resp.Header)
	}
	return resp, err
}

// forFetch copies what the forward step reads and writes of st (the key
// version and its failover), for a fetch that may outlive the request.
func (st *state) forFetch() *state {
	return &state{id: st.id, idHeader: st.idHeader, start: st.start, caller: st.caller, known: st.known,
		route: st.route, path: st.path, keyName: st.keyName, version: st.version, retry: st.retry,
		panel: st.panel, panelPrefix: st.panelPrefix}
}
