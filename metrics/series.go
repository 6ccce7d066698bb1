package metrics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// requestKey is one combination of the request metrics' labels.
type requestKey struct {
	caller, method, route string
	status                int
}

// requestSeries are the label children of one requestKey.
type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// seriesCache resolves the children of the request metrics once per label
// combination, so that a request neither hashes its labels nor formats its
// status code again: WithLabelValues does both on every call. The label sets
// are bounded (callers by the vault, routes and methods by construction,
// statuses by HTTP), as are the metric vectors themselves. It lives here, with
// the vectors, so that the label order is known in one package.
type seriesCache struct {
	mu       sync.RWMutex
	requests map[requestKey]requestSeries
	upstream map[upstreamKey]prometheus.Observer
}

func newSeriesCache() *seriesCache {
	return &seriesCache{requests: make(map[requestKey]requestSeries), upstream: make(map[upstreamKey]prometheus.Observer)}
}

func (c *seriesCache) request(m *Metrics, k requestKey) requestSeries {
	c.mu.RLock()
	s, ok := c.requests[k]
	c.mu.RUnlock()
	if ok {
		return s
	}
	s = requestSeries{
		requests: m.Requests.WithLabelValues(k.caller, k.method, k.route, strconv.Itoa(k.status)),
		duration: m.RequestDuration.WithLabelValues(k.caller, k.route),
	}
	c.mu.Lock()
	c.requests[k] = s
	c.mu.Unlock()
	return s
}

// upstreamKey is the label set of scgate_upstream_duration_seconds.
type upstreamKey struct{ panel, route string }

func (c *seriesCache) upstreamDuration(m *Metrics, k upstreamKey) prometheus.Observer {
	c.mu.RLock()
	o, ok := c.upstream[k]
	c.mu.RUnlock()
	if ok {
		return o
	}
	o = m.UpstreamDuration.WithLabelValues(k.panel, k.route)
	c.mu.Lock()
	c.upstream[k] = o
	c.mu.Unlock()
	return o
}
