package metrics

import "github.com/prometheus/client_golang/prometheus"

// cacheCollectors are the response cache's series.
type cacheCollectors struct {
	// CacheLookups counts cacheable requests by result: hit (fresh), stale
	// (served past freshness: stale-while-revalidate or stale-if-error),
	// miss (sent upstream), coalesced (waited for another request's
	// fetch), bypass (not looked up: the request carried Authorization).
	CacheLookups *prometheus.CounterVec
	// CacheEvictions counts entries evicted to keep the store in its bound.
	CacheEvictions prometheus.Counter
	// CacheSize is the bytes the memory store holds.
	CacheSize prometheus.Gauge
	// CacheStoreErrors counts failed reads and writes of the cache store.
	CacheStoreErrors prometheus.Counter
}

func newCacheCollectors() cacheCollectors {
	c := cacheCollectors{
		CacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scgate_cache_lookups_total",
			Help: "Requests to cacheable routes, by result: hit, stale, miss, coalesced (answered by another request's fetch), bypass.",
		}, []string{"result"}),
		CacheEvictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scgate_cache_evictions_total",
			Help: "Cache entries evicted to keep the memory store within cache.max_bytes.",
		}),
		CacheSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scgate_cache_bytes",
			Help: "Bytes held by the memory cache store (bodies, headers and a fixed overhead per entry).",
		}),
		CacheStoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scgate_cache_store_errors_total",
			Help: "Failed reads and writes of the cache store (Redis unreachable, say); the gateway then forwards as on a miss.",
		}),
	}
	for _, r := range []string{"hit", "stale", "miss", "coalesced", "bypass"} {
		c.CacheLookups.WithLabelValues(r)
	}
	return c
}

func (c cacheCollectors) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.CacheLookups, c.CacheEvictions, c.CacheSize, c.CacheStoreErrors}
}

// CacheLookup counts one cacheable request by result.
func (m *Metrics) CacheLookup(result string) {
	if m != nil {
		m.CacheLookups.WithLabelValues(result).Inc()
	}
}

// CacheEvicted counts one entry evicted for space.
func (m *Metrics) CacheEvicted() {
	if m != nil {
		m.CacheEvictions.Inc()
	}
}

// CacheBytes sets the bytes the memory store holds.
func (m *Metrics) CacheBytes(n int64) {
	if m != nil {
		m.CacheSize.Set(float64(n))
	}
}

// CacheStoreError counts one failed store read or write.
func (m *Metrics) CacheStoreError() {
	if m != nil {
		m.CacheStoreErrors.Inc()
	}
}
