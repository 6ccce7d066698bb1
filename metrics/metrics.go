package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// KeyState describes one key version for the key gauges. It carries the
// prefix only: a secret never becomes a label.
type KeyState struct {
	Key     string
	Prefix  string
	Expires time.Time // zero: no expiry, so no expiry sample
	Active  bool
}

// Metrics is the set of scgate collectors on their own registry.
type Metrics struct {
	// Registry holds every collector below plus the Go and process collectors.
	Registry *prometheus.Registry

	// The collectors, for tests to read; the gateway records through the
	// typed methods of record.go, which know the label order.
	Requests         *prometheus.CounterVec   // caller, method, route, status
	RequestDuration  *prometheus.HistogramVec // caller, route
	UpstreamDuration *prometheus.HistogramVec // route
	Inflight         prometheus.Gauge
	RateLimitedTotal *prometheus.CounterVec // caller, scope
	GatewayErrors    *prometheus.CounterVec // code
	KeyRejections    *prometheus.CounterVec // key, prefix
	VaultReloads     *prometheus.CounterVec // result
	VaultLastSuccess prometheus.Gauge
	TLSCertExpiry    *prometheus.GaugeVec   // name
	RateLimitBackend prometheus.Gauge       // 1: the configured limit backend is in use
	BufferFallbacks  *prometheus.CounterVec // use (rewrite, replay)
	// StationChecks counts the station stage's decisions for callers scoped
	// to stations, by result (never by station: the label stays bounded).
	StationChecks *prometheus.CounterVec
	BuildInfo     *prometheus.GaugeVec // version, revision, goversion
	// ConnectionsRefused counts connections the gateway closed to bound
	// strangers (reason: max_connections, per_source, unidentified_timeout).
	ConnectionsRefused *prometheus.CounterVec
	// TLSHandshakeErrors counts failed TLS handshakes by a bounded reason.
	TLSHandshakeErrors *prometheus.CounterVec
	// TraceDropped counts spans not exported to the trace collector, by
	// reason (queue_full, export_failed).
	TraceDropped *prometheus.CounterVec
	cacheCollectors
	series        *seriesCache
	keySource     atomic.Pointer[func() []KeyState]
	keyExpiryDesc *prometheus.Desc
	keyActiveDesc *prometheus.Desc
}

// New creates the collectors and registers them on a fresh registry.
func New() *Metrics {
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_requests_total",
			Help: "Requests handled, by caller, method, route template and HTTP status.",
		}, []string{"caller", "method", "route", "status"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scgate_request_duration_seconds",
			Help:    "Time from request start to the last byte of the response, by caller and route.",
			Buckets: buckets,
		}, []string{"caller", "route"}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "scgate_upstream_duration_seconds",
			Help:    "Time the broadcaster took to answer with response headers, by panel and route.",
			Buckets: buckets,
		}, []string{"panel", "route"}),
		Inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scgate_inflight_requests",
			Help: "Requests currently being handled.",
		}),
		RateLimitedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_rate_limited_total",
			Help: "Requests refused with 429, by caller and by the limit that refused them (caller or key).",
		}, []string{"caller", "scope"}),
		GatewayErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_gateway_errors_total",
			Help: "Error responses produced by scgate itself (not by the broadcaster), by error code.",
		}, []string{"code"}),
		KeyRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_upstream_key_rejections_total",
			Help: "Times the broadcaster refused a key version (403) and scgate set it aside for a cool-down, by panel, key name and prefix (once per cool-down, not per request).",
		}, []string{"panel", "key", "prefix"}),
		VaultReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_vault_reloads_total",
			Help: "Vault reload attempts, by result (success, error).",
		}, []string{"result"}),
		VaultLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scgate_vault_last_success_timestamp_seconds",
			Help: "Unix time of the last successful vault load.",
		}),
		TLSCertExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scgate_tls_cert_expiry_timestamp_seconds",
			Help: "Unix time at which a served certificate (or the client CA) expires, by name.",
		}, []string{"name"}),
		RateLimitBackend: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scgate_ratelimit_backend_up",
			Help: "1 while the configured rate-limit backend is in use; 0 while a Redis backend is unreachable and this replica limits alone with its share.",
		}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scgate_build_info",
			Help: "Always 1; its labels say which scgate build runs.",
		}, []string{"version", "revision", "goversion"}),
		series: newSeriesCache(),
		ConnectionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_connections_refused_total",
			Help: "Connections closed by the gateway's connection limits, by reason (max_connections, per_source, unidentified_timeout).",
		}, []string{"reason"}),
		TLSHandshakeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_tls_handshake_errors_total",
			Help: "Failed TLS handshakes on the gateway listener, by reason (closed, timeout, not_tls, version, cipher, client_cert, other).",
		}, []string{"reason"}),
		BufferFallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_buffer_budget_fallbacks_total",
			Help: "Requests that did without a buffer because the buffer budget (server.max_buffered_bytes) was spent, by use: rewrite (a paginated answer passed with its links unchanged), replay (a request body was not kept, so a refusal for its key is not retried).",
		}, []string{"use"}),
		StationChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_station_checks_total",
			Help: "Station checks of callers scoped to stations, by result (allowed, missing, malformed, forbidden, route, too_large, unchecked).",
		}, []string{"result"}),
		TraceDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_trace_spans_dropped_total",
			Help: "Spans not exported to the trace collector, by reason: queue_full (ended while the export queue was full), export_failed (the collector refused them or did not answer in time).",
		}, []string{"reason"}),
		keyExpiryDesc: prometheus.NewDesc("scgate_key_expiry_timestamp_seconds",
			"Unix time at which a key version expires (versions with an expiry only).", []string{"key", "prefix"}, nil),
		keyActiveDesc: prometheus.NewDesc("scgate_key_active",
			"1 for the key version currently attached to requests, 0 for the other versions.", []string{"key", "prefix"}, nil),
		cacheCollectors: newCacheCollectors(),
	}
	// Initialise the result labels so a dashboard sees 0 rather than nothing.
	m.VaultReloads.WithLabelValues(ResultSuccess)
	m.VaultReloads.WithLabelValues(ResultError)
	m.BufferFallbacks.WithLabelValues("rewrite")
	m.BufferFallbacks.WithLabelValues("replay")
	for _, r := range StationResults {
		m.StationChecks.WithLabelValues(r)
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Requests, m.RequestDuration, m.UpstreamDuration, m.Inflight, m.RateLimitedTotal,
		m.GatewayErrors, m.KeyRejections, m.VaultReloads, m.VaultLastSuccess, m.TLSCertExpiry,
		m.RateLimitBackend, m.BuildInfo, m.ConnectionsRefused, m.TLSHandshakeErrors, m.BufferFallbacks,
		m.StationChecks, m.TraceDropped,
		keyCollector{m},
	)
	m.Registry.MustRegister(m.cacheCollectors.collectors()...)
	return m
}

// StationResults are the results of the station check, the values of
// scgate_station_checks_total's result label.
var StationResults = []string{"allowed", "missing", "malformed", "forbidden", "route", "too_large", "unchecked"}

// SetBuildInfo sets scgate_build_info{version,revision,goversion} to 1.
func (m *Metrics) SetBuildInfo(version, revision, goversion string) {
	if m != nil {
		m.BuildInfo.WithLabelValues(version, revision, goversion).Set(1)
	}
}

// SetKeySource installs the function that lists key versions at scrape time.
// Reading the live vault at scrape time, rather than copying it into gauges on
// reload, means a removed version disappears from /metrics with no cleanup.
func (m *Metrics) SetKeySource(f func() []KeyState) { m.keySource.Store(&f) }

// keyCollector turns the key source into the two key gauges.
type keyCollector struct{ m *Metrics }

func (c keyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.keyExpiryDesc
	ch <- c.m.keyActiveDesc
}

func (c keyCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.keySource.Load()
	if src == nil {
		return
	}
	for _, k := range (*src)() {
		active := 0.0
		if k.Active {
			active = 1
		}
		ch <- prometheus.MustNewConstMetric(c.m.keyActiveDesc, prometheus.GaugeValue, active, k.Key, k.Prefix)
		if !k.Expires.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.m.keyExpiryDesc, prometheus.GaugeValue,
				float64(k.Expires.Unix()), k.Key, k.Prefix)
		}
	}
}

// Readiness reports why the gateway cannot take traffic yet, or nil when it can.
type Readiness func() error

// AdminHandler serves /metrics, /healthz (the process is alive) and /readyz
// (ready reports nil: config, vault and certificates loaded, listeners bound,
// not draining).
func (m *Metrics) AdminHandler(ready Readiness) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		// A scraper asking for OpenMetrics gets the duration exemplars
		// (trace ids); the plain text format stays the default.
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
