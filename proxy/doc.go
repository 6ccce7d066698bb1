// Package proxy is the gateway itself: an http.Handler that takes a caller's
// request through the stages of docs/design.md, Request path (strip credentials, identify,
// authorise, limit, pick key, forward, observe), the listeners that serve it,
// and their lifecycle.
//
// errors.go is the one place where a failure becomes an HTTP response. Every
// request works on the vault snapshot it loaded at its start, so a reload never
// changes a request half-way. failover.go retries a request the broadcaster
// refused for its key (403) once with a standby version of the key.
// pagination.go points the top-level links of paginated answers at the
// gateway as they stream (proxy/pagelinks), and budget.go caps the bytes that
// such rewrites and failover's replay buffers hold across all requests.
package proxy
