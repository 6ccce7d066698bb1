package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The typed API: what the gateway records, with the label order known only
// here. Every method does nothing on a nil *Metrics, so a component built
// without metrics needs no checks.

// Label values of scgate_rate_limited_total's scope and
// scgate_vault_reloads_total's result.
const (
	ScopeCaller   = "caller"
	ScopeKey      = "key"
	ScopePanel    = "panel"
	ResultSuccess = "success"
	ResultError   = "error"
	// UnknownCaller is the caller label of a request whose caller is not in
	// the vault (or has no identity), so that label sets stay bounded. The
	// access log writes the same word.
	UnknownCaller = "unknown"
)

// Request records a finished request: scgate_requests_total and
// scgate_request_duration_seconds.
func (m *Metrics) Request(caller, method, route string, status int, elapsed time.Duration) {
	m.RequestTraced(caller, method, route, status, elapsed, "")
}

// RequestTraced is Request with the request's trace id, which the duration
// sample carries as its exemplar (shown with the OpenMetrics exposition);
// "" adds none.
func (m *Metrics) RequestTraced(caller, method, route string, status int, elapsed time.Duration, traceID string) {
	if m == nil {
		return
	}
	s := m.series.request(m, requestKey{caller: caller, method: method, route: route, status: status})
	s.requests.Inc()
	if eo, ok := s.duration.(prometheus.ExemplarObserver); ok && traceID != "" {
		eo.ObserveWithExemplar(elapsed.Seconds(), prometheus.Labels{"trace_id": traceID})
		return
	}
	s.duration.Observe(elapsed.Seconds())
}

// TraceSpansDropped counts n spans that were not exported, by reason
// (tracing.DroppedQueueFull, tracing.DroppedExportFailed).
func (m *Metrics) TraceSpansDropped(reason string, n int) {
	if m != nil {
		m.TraceDropped.WithLabelValues(reason).Add(float64(n))
	}
}

// UpstreamAnswered records the time the broadcaster (panel) took to send
// response headers for route. Panels are bounded by the configuration.
func (m *Metrics) UpstreamAnswered(panel, route string, elapsed time.Duration) {
	if m == nil {
		return
	}
	m.series.upstreamDuration(m, upstreamKey{panel, route}).Observe(elapsed.Seconds())
}

// RequestStarted and RequestDone keep scgate_inflight_requests.
func (m *Metrics) RequestStarted() {
	if m != nil {
		m.Inflight.Inc()
	}
}

// RequestDone is the end of a request that RequestStarted counted.
func (m *Metrics) RequestDone() {
	if m != nil {
		m.Inflight.Dec()
	}
}

// RateLimited counts a request refused with 429 by the limit of scope
// (ScopeCaller, ScopeKey or ScopePanel).
func (m *Metrics) RateLimited(caller, scope string) {
	if m != nil {
		m.RateLimitedTotal.WithLabelValues(caller, scope).Inc()
	}
}

// GatewayError counts an error response scgate produced itself, by code.
func (m *Metrics) GatewayError(code string) {
	if m != nil {
		m.GatewayErrors.WithLabelValues(code).Inc()
	}
}

// StationCheck counts a station check by its result (one of StationResults).
func (m *Metrics) StationCheck(result string) {
	if m != nil {
		m.StationChecks.WithLabelValues(result).Inc()
	}
}

// KeyRejected counts a key version set aside after the broadcaster refused it.
func (m *Metrics) KeyRejected(panel, key, prefix string) {
	if m != nil {
		m.KeyRejections.WithLabelValues(panel, key, prefix).Inc()
	}
}

// VaultReload counts a vault load attempt; a successful one also sets
// scgate_vault_last_success_timestamp_seconds.
func (m *Metrics) VaultReload(ok bool) {
	if m == nil {
		return
	}
	if !ok {
		m.VaultReloads.WithLabelValues(ResultError).Inc()
		return
	}
	m.VaultReloads.WithLabelValues(ResultSuccess).Inc()
	m.VaultLastSuccess.SetToCurrentTime()
}

// CertExpiry sets when the certificate called name expires.
func (m *Metrics) CertExpiry(name string, notAfter time.Time) {
	if m != nil {
		m.TLSCertExpiry.WithLabelValues(name).Set(float64(notAfter.Unix()))
	}
}

// RateLimitBackendUp sets scgate_ratelimit_backend_up.
func (m *Metrics) RateLimitBackendUp(up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.RateLimitBackend.Set(v)
}

// KeyVersion names one version of a vault key by its panel and prefix.
type KeyVersion struct{ Panel, Key, Prefix string }

// Prepare creates the series that counters will have once the first event
// happens, at 0, so that increase() and rate() see that first event: a
// series born at 1 is invisible to them. callers are the vault's callers,
// versions every key version. Calling it again after a reload adds the new
// ones; series of removed callers or versions stay (a counter must not go
// away while a dashboard looks at it).
func (m *Metrics) Prepare(callers []string, versions []KeyVersion) {
	if m == nil {
		return
	}
	for _, c := range callers {
		m.RateLimitedTotal.WithLabelValues(c, ScopeCaller)
		m.RateLimitedTotal.WithLabelValues(c, ScopeKey)
	}
	for _, v := range versions {
		m.KeyRejections.WithLabelValues(v.Panel, v.Key, v.Prefix)
	}
}

// ConnectionRefused counts a connection the gateway's connection limits
// closed, by reason.
func (m *Metrics) ConnectionRefused(reason string) {
	if m != nil {
		m.ConnectionsRefused.WithLabelValues(reason).Inc()
	}
}

// TLSHandshakeError counts a failed TLS handshake, by reason.
func (m *Metrics) TLSHandshakeError(reason string) {
	if m != nil {
		m.TLSHandshakeErrors.WithLabelValues(reason).Inc()
	}
}

// PrepareTLSHandshakeErrors creates the handshake error series at 0, one
// per reason, so that dashboards show 0 rather than nothing.
func (m *Metrics) PrepareTLSHandshakeErrors(reasons []string) {
	if m == nil {
		return
	}
	for _, r := range reasons {
		m.TLSHandshakeErrors.WithLabelValues(r)
	}
}
