package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/scgate/scgate/proxy/ratelimit"
)

// Error codes of docs/design.md, Error bodies (contract).
const (
	CodeUnauthenticated     = "unauthenticated"
	CodeForbidden           = "forbidden"
	CodeNoValidKey          = "no_valid_key"
	CodeRateLimited         = "rate_limited"
	CodePayloadTooLarge     = "payload_too_large"
	CodeBadRequest          = "bad_request"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodeMisdirected         = "misdirected_request"
	CodeCrossSite           = "cross_site_request"
	CodeUpstreamUnavailable = "upstream_unavailable"
	CodeUpstreamTimeout     = "upstream_timeout"
	// CodeUnknownPanel: the request names a panel the gateway does not
	// serve, or names none while its caller holds keys on several (404).
	CodeUnknownPanel = "unknown_panel"
	// CodePanelForbidden: the caller holds no key on the panel the request
	// names (403).
	CodePanelForbidden = "panel_forbidden"

	// Station scoping (station.go): the request names no station, names
	// one in a way that is refused (repeated, not an integer, duplicate
	// JSON keys, ...), names one outside the caller's list or uses a route
	// scoped callers may not use, or its body could not be held to check.
	CodeStationMissing   = "station_missing"
	CodeStationMalformed = "station_malformed"
	CodeStationForbidden = "station_forbidden"
	CodeStationUnchecked = "station_unchecked"
)

// statusClientClosed is logged (never sent) when the caller went away before
// the answer, as nginx and Caddy do.
const statusClientClosed = 499

// gatewayError is a failure that scgate answers itself. msg is written to the
// caller, so it is always a fixed sentence, never an error's text, which could
// carry an upstream address or worse.
type gatewayError struct {
	code   string
	status int
	msg    string
	cause  error // logged, never sent

	// For rate_limited only: the limiter's decision, for the headers.
	rl *ratelimit.Decision
	// retryAfter, when positive, is the Retry-After of a refusal without a
	// limiter decision (a panel's rate cap).
	retryAfter int
	// allow, for method_not_allowed, is the Allow header's value.
	allow string
	// close ends the connection after the answer (HTTP/1.x): the rest of
	// what the caller sent cannot be trusted to be a request of its own.
	close bool
}

func (e *gatewayError) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.cause.Error()
	}
	return e.code + ": " + e.msg
}

func (e *gatewayError) Unwrap() error { return e.cause }

func newError(code string, status int, msg string, cause error) *gatewayError {
	return &gatewayError{code: code, status: status, msg: msg, cause: cause}
}

// errorBody is the JSON body of every gateway error (contract).
type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// writeError renders e. It is the only function that writes a gateway error.
func (h *Handler) writeError(w http.ResponseWriter, st *state, e *gatewayError) {
	st.code = e.code
	st.err = e
	h.metrics.GatewayError(e.code)
	if e.status == statusClientClosed {
		st.status = statusClientClosed
		// Nothing is written, and the response must not look complete: a
		// caller whose body stopped arriving (the read timeout) ends here
		// too, and may still be reading. Returning would let the server send
		// its default empty 200; aborting closes the connection (HTTP/2:
		// resets the stream) instead. The deferred access log still runs.
		panic(http.ErrAbortHandler)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Scgate-Error", e.code)
	hdr.Set("X-Request-Id", st.id)
	if e.allow != "" {
		hdr.Set("Allow", e.allow)
	}
	// net/http closes the connection after a response that says so (HTTP/2:
	// GOAWAY). A caller who is not in the vault keeps no connection open
	// after a refusal: idle connections of strangers would otherwise hold
	// memory until the idle timeout.
	if e.close || (!st.known && !st.sharedConn && (e.status == http.StatusUnauthorized || e.status == http.StatusForbidden)) {
		hdr.Set("Connection", "close")
	}
	if e.rl != nil {
		hdr.Set("Retry-After", strconv.Itoa(e.rl.RetryAfterSeconds()))
		setRateLimitHeaders(hdr, e.rl, nil)
	} else if e.retryAfter > 0 {
		hdr.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	body, _ := json.Marshal(errorBody{Error: e.code, Message: e.msg, RequestID: st.id})
	body = append(body, '\n')
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// upstreamError classifies a failure of the forward stage.
func upstreamError(r *http.Request, err error) *gatewayError {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return errTooLarge(tooBig.Limit, err)
	case r.Context().Err() != nil && !errors.Is(r.Context().Err(), context.DeadlineExceeded):
		return newError("client_closed", statusClientClosed, "the caller went away", err)
	case isTimeout(err):
		return newError(CodeUpstreamTimeout, http.StatusGatewayTimeout,
			"the broadcaster did not answer in time; retry later", err)
	default:
		return newError(CodeUpstreamUnavailable, http.StatusBadGateway,
			"the broadcaster could not be reached; retry later", err)
	}
}

func errTooLarge(limit int64, cause error) *gatewayError {
	return newError(CodePayloadTooLarge, http.StatusRequestEntityTooLarge,
		"the request body is larger than this gateway accepts ("+strconv.FormatInt(limit, 10)+" bytes)", cause)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
