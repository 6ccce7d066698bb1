// Package h1client is an experimental HTTP/1.1 client transport: the request
// is written and the response read on the calling goroutine, connections are
// kept in a bounded per-host idle pool, and no background goroutine reads or
// writes a connection. It implements http.RoundTripper, so it can stand where
// an *http.Transport stands.
//
// Framing is strict (RFC 9112): a response is framed by exactly one valid
// Content-Length, by "Transfer-Encoding: chunked" alone, or by the closing of
// the connection; anything else (both, duplicates, other codings, obs-fold,
// bare LF, oversize header sections) is refused as a malformed response and
// its connection closed. A connection goes back to the pool only when its
// response body was read to the end, nothing follows it, and neither side
// asked to close. Requests are never pipelined.
//
// Limits: HTTP/1.1 only (no HTTP/2, no protocol upgrades, no proxies); the
// request body is written whole before the response is read, so an upstream
// that answers while still reading a large body is only seen once the write
// finishes or fails; request trailers are not sent.
package h1client
