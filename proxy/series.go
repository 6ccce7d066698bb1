package proxy

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scgate/scgate/metrics"
)

// seriesKey is one combination of the request metrics' labels.
type seriesKey struct {
	caller, method, route string
	code                  int
}

// series are the label children of one seriesKey.
type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// seriesCache resolves the children of the request metrics once per label
// combination, so that a request neither hashes its labels nor formats its
// status code again: WithLabelValues does both on every call. The label sets
// are bounded (callers by the vault, routes and methods by construction,
// codes by HTTP), as are the metric vectors themselves.
type seriesCache struct {
	m        *metrics.Metrics
	mu       sync.RWMutex
	requests map[seriesKey]series
	upstream map[string]prometheus.Observer // by route
}

func newSeriesCache(m *metrics.Metrics) *seriesCache {
	return &seriesCache{m: m, requests: make(map[seriesKey]series), upstream: make(map[string]prometheus.Observer)}
}

// request returns the children for one finished request.
func (c *seriesCache) request(k seriesKey) series {
	c.mu.RLock()
	s, ok := c.requests[k]
	c.mu.RUnlock()
	if ok {
		return s
	}
	s = series{
		requests: c.m.Requests.WithLabelValues(k.caller, k.method, k.route, strconv.Itoa(k.code)),
		duration: c.m.RequestDuration.WithLabelValues(k.caller, k.route),
	}
	c.mu.Lock()
	c.requests[k] = s
	c.mu.Unlock()
	return s
}

// upstreamDuration returns the child of scgate_upstream_duration_seconds.
func (c *seriesCache) upstreamDuration(route string) prometheus.Observer {
	c.mu.RLock()
	o, ok := c.upstream[route]
	c.mu.RUnlock()
	if ok {
		return o
	}
	o = c.m.UpstreamDuration.WithLabelValues(route)
	c.mu.Lock()
	c.upstream[route] = o
	c.mu.Unlock()
	return o
}
