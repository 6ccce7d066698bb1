package proxy

import (
	"context"
	"net/http"
	"strings"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy/cache"
	"github.com/scgate/scgate/proxy/policy"
)

// Decision is what the gateway decides about a request before forwarding
// it: the stages of the request path from the path check to the key
// version. ServeHTTP and Explain both get it from the same function
// (Handler.decide), so an explanation cannot drift from the gateway.
type Decision struct {
	// Caller is the identity the request was decided for.
	Caller string
	// Key is the caller's vault key; "" when the request was refused first.
	Key string
	// Route is the route policy's decision (its rule set and rule).
	Route policy.Decision
	// Version is the key version the request would carry; nil when refused.
	Version *keyvault.Version
	// Code is "" when the request would be forwarded, else the gateway
	// error code it would get (one of the Code constants).
	Code string
	// Status is the HTTP status of that error; 0 when forwarded.
	Status int
	// Message is what the caller would be told.
	Message string
	// Cache is the response cache's rule for a forwarded request, nil when
	// its answer would not be cached.
	Cache *cache.Rule
	// Station is the station stage's decision.
	Station StationDecision
}

// decide runs the gateway's stages in their order: path, identity, vault,
// route rule, limits, station, key version. It fills st and returns the vault
// snapshot the request works on. An admission it took is in st.admission,
// for the caller to release. With a request r, the identity is resolved
// from it (after its caller-supplied credentials are stripped) and the
// limits are spent; without one (Explain), the identity is given and the
// limits stage admits.
func (h *Handler) decide(ctx context.Context, st *state, r *http.Request, given, method, escapedPath string) (*keyvault.Vault, *gatewayError) {
	if e := checkPath(escapedPath, st); e != nil {
		return nil, e
	}
	caller, err := given, error(nil)
	if r != nil {
		h.strip.inbound(r)
		caller, err = h.identity.Resolve(r)
	}
	if err != nil {
		return nil, newError(CodeUnauthenticated, http.StatusUnauthorized,
			"no caller identity could be established for this request; check the client certificate, source address or sidecar identity", err)
	}
	st.caller = caller

	vault := h.vault.Current()
	key, ok := vault.KeyOf(caller)
	if !ok {
		return vault, newError(CodeForbidden, http.StatusForbidden,
			"caller "+quote(caller)+" has no key in the vault; ask the gateway's operators to add it under [callers]", nil)
	}
	st.known = true
	st.keyName = key.Name
	if r != nil {
		markIdentified(r.Context()) // connlimit.go
	}

	if e := h.authorise(method, st); e != nil {
		return vault, e
	}
	if r != nil {
		// The limits, deciding again after a wait (the vault or the policy
		// may have changed meanwhile).
		var e *gatewayError
		if vault, e = h.admit(r, st, vault); e != nil {
			return vault, e
		}
	}
	// The station stage: after the limits, so that a caller probing its
	// scope spends its tokens, and before anything is sent or served.
	if e := h.checkStation(r, st, method); e != nil {
		return vault, e
	}
	v, err := vault.SelectAvoiding(caller, h.now(), h.rejections)
	if err != nil {
		return vault, newError(CodeNoValidKey, http.StatusServiceUnavailable,
			"caller "+quote(caller)+"'s key has no version valid now (all expired or not yet valid); ops must add a valid version to the vault", err)
	}
	st.version = v
	return vault, nil
}

// Explain decides a request of method to target (a path as a caller sends
// it, with an optional query) from caller, as ServeHTTP would decide it now,
// without forwarding anything or spending the caller's limits: the caller's
// identity is taken as given, and the limits stage admits it (the limits
// that would apply are the limiter's For).
func (h *Handler) Explain(ctx context.Context, caller, method, target string) Decision {
	return h.ExplainBody(ctx, caller, method, target, "", nil)
}

// ExplainBody is Explain for a request with a body of the given
// Content-Type ("" for none), which the station stage reads as it would
// read the caller's.
func (h *Handler) ExplainBody(ctx context.Context, caller, method, target, contentType string, body []byte) Decision {
	escaped, query, _ := strings.Cut(target, "?")
	in := &stationInput{query: query, body: body, hasBody: len(body) > 0}
	if contentType != "" {
		in.contentType = []string{contentType}
	}
	st := &state{explainIn: in}
	_, e := h.decide(ctx, st, nil, caller, method, escaped)
	d := Decision{Caller: caller, Key: st.keyName, Route: st.rule, Version: st.version, Station: st.station}
	if e != nil {
		d.Code, d.Status, d.Message = e.code, e.status, e.msg
		d.Version = nil
	} else if h.cache != nil {
		if rule, ok := h.cache.RuleFor(method, st.path); ok {
			d.Cache = &rule
		}
	}
	return d
}
