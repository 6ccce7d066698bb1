package proxy

import (
	"errors"
	"net/http"

	"github.com/scgate/scgate/proxy/policy"
)

// PolicySource hands out the route policy in force; *policy.Holder is one.
type PolicySource interface {
	Current() *policy.Policy
}

// checkPath normalises the request path once (policy.Normalize). A path that
// the broadcaster could read differently from scgate is refused, never
// repaired; an accepted one is forwarded exactly as the caller escaped it.
func checkPath(escapedPath string, st *state) *gatewayError {
	p, err := policy.Normalize(escapedPath)
	if err != nil {
		var pe *policy.PathError
		reason := "it cannot be forwarded safely"
		if errors.As(err, &pe) {
			reason = pe.Reason // a fixed sentence, safe to send
		}
		return newError(CodeBadRequest, http.StatusBadRequest,
			"the request path was refused: "+reason+"; send the plain path, e.g. /api/v2/playlists/3/", err)
	}
	st.path = p
	return nil
}

// authorise applies the caller's route allow-list.
func (h *Handler) authorise(method string, st *state) *gatewayError {
	if h.policy == nil {
		st.rule = policy.Decision{Allowed: true}
		return nil
	}
	d := h.policy.Current().Allow(st.caller, method, st.path)
	st.rule = d
	if d.Allowed {
		return nil
	}
	return newError(CodeForbidden, http.StatusForbidden,
		"caller "+quote(st.caller)+" may not send "+quote(method)+" to "+quote(st.path)+
			": the route is not in its rule set "+quote(d.Set)+"; ask the gateway's operators to extend that rule set", nil)
}
