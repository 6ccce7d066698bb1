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
	// Panel is the panel the request would go to; "" when the request was
	// refused before one was chosen.
	Panel string
	// Key is the caller's vault key on that panel; "" when the request was
	// refused first.
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
func (h *Handler) decide(ctx context.Context, st *state, r *http.Request, given, method, host, escapedPath string) (*keyvault.Vault, *gatewayError) {
	named, rest, prefixed := h.panelNamed(host, escapedPath)
	if e := checkPath(rest, st); e != nil {
		return nil, e
	}
	if prefixed {
		st.panelPrefix, st.forwardPath = PanelsPrefix+named, rest
		st.route = routeOf(st.path)
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
	if _, ok := vault.KeyOf(caller); !ok {
		return vault, newError(CodeForbidden, http.StatusForbidden,
			"caller "+quote(caller)+" has no key in the vault; ask the gateway's operators to add it under [callers]", nil)
	}
	st.known = true
	key, e := h.choosePanel(st, vault, named) // panels.go
	if e != nil {
		return vault, e
	}
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
	// The key again: the vault may have changed while the request queued.
	if key, _ = vault.KeyFor(caller, st.panel.name); key == nil {
		return vault, newError(CodePanelForbidden, http.StatusForbidden,
			"caller "+quote(caller)+" holds no key on panel "+quote(st.panel.name)+"; ask the gateway's operators to add one under [callers]", nil)
	}
	// The station stage: after the limits, so that a caller probing its
	// scope spends its tokens, and before anything is sent or served.
	_, onePanel := vault.OnlyPanel(caller)
	if e := h.checkStation(r, st, method, onePanel); e != nil {
		return vault, e
	}
	v := key.Pick(h.now(), h.rejections)
	if v == nil {
		return vault, newError(CodeNoValidKey, http.StatusServiceUnavailable,
			"caller "+quote(caller)+"'s key has no version valid now (all expired or not yet valid); ops must add a valid version to the vault", keyvault.ErrNoValidKey)
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
	return h.ExplainRequest(ctx, ExplainInput{Caller: caller, Method: method, Target: target})
}

// ExplainHost is Explain for a request sent to host, which chooses the
// panel when panels are chosen by Host.
func (h *Handler) ExplainHost(ctx context.Context, caller, method, host, target string) Decision {
	return h.ExplainRequest(ctx, ExplainInput{Caller: caller, Method: method, Host: host, Target: target})
}

// ExplainBody is Explain for a request with a body of the given
// Content-Type ("" for none), which the station stage reads as it would
// read the caller's.
func (h *Handler) ExplainBody(ctx context.Context, caller, method, target, contentType string, body []byte) Decision {
	return h.ExplainRequest(ctx, ExplainInput{Caller: caller, Method: method, Target: target, ContentType: contentType, Body: body})
}

// ExplainInput is the request ExplainRequest decides.
type ExplainInput struct {
	Caller, Method string
	Host           string // the Host it is sent to ("" for none)
	Target         string // the path as the caller sends it, with an optional query
	ContentType    string // of Body; "" for none
	Body           []byte
}

// ExplainRequest is Explain for a request described in full.
func (h *Handler) ExplainRequest(ctx context.Context, x ExplainInput) Decision {
	caller, method := x.Caller, x.Method
	escaped, query, _ := strings.Cut(x.Target, "?")
	in := &stationInput{query: query, body: x.Body, hasBody: len(x.Body) > 0}
	if x.ContentType != "" {
		in.contentType = []string{x.ContentType}
	}
	st := &state{explainIn: in}
	_, e := h.decide(ctx, st, nil, caller, method, x.Host, escaped)
	d := Decision{Caller: caller, Key: st.keyName, Route: st.rule, Version: st.version, Station: st.station}
	if st.panel != nil {
		d.Panel = st.panel.name
	}
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
