package proxy

import (
	"container/list"
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ConnLimits bounds what connections can hold before they have carried one
// identified request. Anyone who can reach the listener can open
// connections; each one costs buffers and goroutines, so without these
// bounds a stranger with enough sockets exhausts the process's memory.
// The zero value imposes no limit.
type ConnLimits struct {
	// MaxConnections is the most connections open at once (0: no limit).
	// When it is reached, the oldest connection that has not yet carried an
	// identified request is closed to make room; when every open connection
	// has, the new one is closed at once. Accepting never blocks.
	MaxConnections int
	// MaxPerSource is the most connections open at once from one source IP
	// address that have not yet carried an identified request (0: no
	// limit); one more is closed at once. Identified connections do not
	// count, so that a sidecar's application or a busy caller is held only
	// to MaxConnections.
	MaxPerSource int
	// ExemptSources are networks not held to MaxPerSource, such as load
	// balancers or reverse proxies that carry many callers' connections.
	ExemptSources []netip.Prefix
	// UnidentifiedTimeout closes a connection that has not carried a request
	// from an identified caller (one with a key in the vault) within this
	// time of being accepted (0: never). It covers what read_header_timeout
	// does not: an HTTP/2 connection that sent its preface and then idles,
	// or that only sends requests that are refused.
	UnidentifiedTimeout time.Duration
	// OnRefused is called for every connection closed by these limits, with
	// the reason: "max_connections", "per_source" or "unidentified_timeout".
	OnRefused func(reason string)
}

func (l ConnLimits) active() bool {
	return l.MaxConnections > 0 || l.MaxPerSource > 0 || l.UnidentifiedTimeout > 0
}

// Reasons passed to ConnLimits.OnRefused.
const (
	RefusedMaxConnections      = "max_connections"
	RefusedPerSource           = "per_source"
	RefusedUnidentifiedTimeout = "unidentified_timeout"
)

// limitListener applies ConnLimits at accept. It wraps the TCP listener
// (under TLS), so a connection counts from the moment it is accepted, during
// its handshake too.
type limitListener struct {
	net.Listener
	limits ConnLimits

	mu       sync.Mutex
	open     int
	bySource map[netip.Addr]int // unidentified connections per source
	pending  list.List          // *trackedConn not yet identified, oldest first
}

func newLimitListener(ln net.Listener, limits ConnLimits) *limitListener {
	if limits.OnRefused == nil {
		limits.OnRefused = func(string) {}
	}
	return &limitListener{Listener: ln, limits: limits, bySource: map[netip.Addr]int{}}
}

// Accept returns the next connection within the limits; connections over
// them are closed here and never reach the server.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, evicted, reason := l.admit(c)
		if evicted != nil {
			l.limits.OnRefused(RefusedMaxConnections)
			_ = evicted.Close()
		}
		if tc != nil {
			return tc, nil
		}
		l.limits.OnRefused(reason)
		_ = c.Close()
	}
}

// admit counts c in, or says why it cannot be. When the listener is full, it
// picks the oldest unidentified connection for the caller to close.
func (l *limitListener) admit(c net.Conn) (_ *trackedConn, evicted *trackedConn, reason string) {
	src := sourceOf(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits.MaxPerSource > 0 && l.bySource[src] >= l.limits.MaxPerSource && !l.exempt(src) {
		return nil, nil, RefusedPerSource
	}
	if l.limits.MaxConnections > 0 && l.open >= l.limits.MaxConnections {
		front := l.pending.Front()
		if front == nil {
			return nil, nil, RefusedMaxConnections
		}
		evicted = front.Value.(*trackedConn)
		// Uncounted now, so that the new connection has its place even
		// before the evicted one's Close runs.
		l.releaseLocked(evicted)
	}
	tc := &trackedConn{Conn: c, l: l, src: src}
	l.open++
	l.bySource[src]++
	tc.elem = l.pending.PushBack(tc)
	if d := l.limits.UnidentifiedTimeout; d > 0 {
		tc.timer = time.AfterFunc(d, tc.expire)
	}
	return tc, evicted, ""
}

func (l *limitListener) exempt(a netip.Addr) bool {
	for _, p := range l.limits.ExemptSources {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// releaseLocked uncounts tc, once. l.mu is held.
func (l *limitListener) releaseLocked(tc *trackedConn) {
	if tc.released {
		return
	}
	tc.released = true
	l.open--
	l.unpendLocked(tc)
}

// unpendLocked takes tc off the unidentified list and its source's count,
// once. l.mu is held.
func (l *limitListener) unpendLocked(tc *trackedConn) {
	if tc.elem == nil {
		return
	}
	l.pending.Remove(tc.elem)
	tc.elem = nil
	if l.bySource[tc.src]--; l.bySource[tc.src] <= 0 {
		delete(l.bySource, tc.src)
	}
	if tc.timer != nil {
		tc.timer.Stop()
	}
}

// identify takes tc off the unidentified list: it is no longer evicted or
// timed out.
func (l *limitListener) identify(tc *trackedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unpendLocked(tc)
}

func sourceOf(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// trackedConn is a connection counted by a limitListener.
type trackedConn struct {
	net.Conn
	l          *limitListener
	src        netip.Addr
	identified atomic.Bool
	// Guarded by l.mu.
	elem     *list.Element
	timer    *time.Timer
	released bool
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// expire closes the connection if no identified request has come on it.
func (c *trackedConn) expire() {
	if c.identified.Load() {
		return
	}
	c.l.mu.Lock()
	late := c.released || c.elem == nil
	c.l.mu.Unlock()
	if late {
		return
	}
	c.l.limits.OnRefused(RefusedUnidentifiedTimeout)
	_ = c.Close()
}

type connKey struct{}

// limitConnContext lets a request reach the tracked connection it came on,
// to mark it identified.
func limitConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := unwrapConn(c).(*trackedConn); ok {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

// markIdentified records that a request from an identified caller came on
// the request's connection, which from then on is held to no deadline of
// ConnLimits and is never evicted for a newcomer.
func markIdentified(ctx context.Context) {
	tc, ok := ctx.Value(connKey{}).(*trackedConn)
	if !ok || tc.identified.Load() {
		return
	}
	tc.identified.Store(true)
	tc.l.identify(tc)
}
