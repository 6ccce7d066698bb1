package proxy

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/scgate/scgate/proxy/identity"
)

// DefaultMaxConnectionAge is how long a caller's connection is kept when
// ServerOptions.MaxConnectionAge is zero.
const DefaultMaxConnectionAge = 5 * time.Minute

// connAcceptedKey is the context key of the time a connection was accepted.
type connAcceptedKey struct{}

// callerConnContext is part of the server's ConnContext. It records when the connection
// was accepted, for the connection age limit, and gives the mTLS resolver
// its per-connection verdict cache (the verdict is re-checked on every
// request, so the cache keeps that cheap).
func callerConnContext(ctx context.Context, _ net.Conn) context.Context {
	ctx = identity.WithPeerCache(ctx)
	return context.WithValue(ctx, connAcceptedKey{}, time.Now())
}

// limitConnectionAge asks the client to close a connection older than
// maxAge: the response carries "Connection: close", which HTTP/1.1 honours
// by closing after it and which the HTTP/2 server turns into a graceful
// GOAWAY (streams in flight finish; new requests open a new connection).
// A new connection means a new handshake against the current CAs and the
// caller's current certificate, so no identity rides on one connection for
// longer than maxAge. maxAge <= 0 switches the limit off.
func limitConnectionAge(h http.Handler, maxAge time.Duration) http.Handler {
	if maxAge <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if at, ok := r.Context().Value(connAcceptedKey{}).(time.Time); ok && time.Since(at) >= maxAge {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// maxConnectionAge turns the option into the limit: zero means the
// default, negative means none.
func maxConnectionAge(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultMaxConnectionAge
	case d < 0:
		return 0
	}
	return d
}
