package proxy

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
)

// retryTransport resends a request to the broadcaster at most once, and only
// when it is safe: an idempotent request (GET, HEAD, OPTIONS) without a body
// whose first attempt failed to connect at all, so that not one byte of it
// was written. POST, PUT, PATCH and DELETE are never resent: the broadcaster
// does not deduplicate, and a second playlist is worse than a 502.
type retryTransport struct{ base http.RoundTripper }

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil || !retryable(req, err) {
		return resp, err
	}
	st, _ := req.Context().Value(stateKey{}).(*state)
	st.spanEvent("upstream.retry", attribute.String("reason", "dial"))
	return t.base.RoundTrip(req)
}

func retryable(req *http.Request, err error) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	if req.Body != nil && req.Body != http.NoBody || req.Context().Err() != nil {
		return false
	}
	// A failed dial (refused, unreachable, timed out) means no connection,
	// so nothing was sent. Failures on a connection are not retried here.
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// preventReplay removes Idempotency-Key and X-Idempotency-Key from requests
// that are not idempotent by method. Go's transport treats a body-less request
// carrying either as safe to resend after a kept-alive connection fails, and
// the broadcaster has no notion of them; scgate must never send a POST twice.
func preventReplay(out *http.Request) {
	switch out.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return
	}
	for k := range out.Header {
		if strings.EqualFold(k, "Idempotency-Key") || strings.EqualFold(k, "X-Idempotency-Key") {
			delete(out.Header, k)
		}
	}
}
