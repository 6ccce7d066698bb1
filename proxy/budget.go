package proxy

import (
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/scgate/scgate/metrics"
)

// DefaultBufferBudget is the most bytes held at once, across all requests,
// for pagination rewrites and replay buffers when Options.BufferBudget is 0.
// It is sized for a 256 MiB container: with the gateway's own 25-50 MB and
// the garbage collector's headroom (up to as much again as is live), the
// budget spent in full still stays well under the limit.
const DefaultBufferBudget = 32 << 20

// What a budget reservation is for: the values of the fallback metric's
// "use" label and of the access log's buffer_fallback field.
const (
	useRewrite = "rewrite" // a paginated answer's link rewrite; fallback: it passes unchanged
	useReplay  = "replay"  // a request body kept for a retry with a standby key; fallback: no retry
)

// budget caps the bytes that requests hold in buffers of their own, so that
// callers who ask for answers and never read them, or send bodies slowly,
// cannot make the gateway hold memory in proportion to their number. When
// it is spent, a request does without the buffer instead of waiting.
type budget struct {
	sem      *semaphore.Weighted
	size     int64
	metrics  *metrics.Metrics
	log      *zap.Logger
	lastWarn atomic.Int64 // unix nanoseconds of the last warning
}

func newBudget(size int64, m *metrics.Metrics, log *zap.Logger) *budget {
	return &budget{sem: semaphore.NewWeighted(size), size: size, metrics: m, log: log}
}

// take reserves n bytes for use, or reports (metric, access log, a warning
// at most once a minute) that the budget is spent and returns false.
func (b *budget) take(n int64, use string, st *state) bool {
	if b.sem.TryAcquire(n) {
		return true
	}
	st.bufferFallback = use
	if b.metrics != nil {
		b.metrics.BufferFallbacks.WithLabelValues(use).Inc()
	}
	now := time.Now().UnixNano()
	if last := b.lastWarn.Load(); now-last >= int64(time.Minute) && b.lastWarn.CompareAndSwap(last, now) {
		b.log.Warn("the buffer budget (server.max_buffered_bytes) is spent: paginated answers pass without their links rewritten and requests refused for their key are not retried until it frees. Raise it if the memory allows, or look for callers that hold many answers unread",
			zap.Int64("budget_bytes", b.size), zap.String("use", use), zap.String("request_id", st.id))
	}
	return false
}

// give returns n reserved bytes.
func (b *budget) give(n int64) {
	if n > 0 {
		b.sem.Release(n)
	}
}
