package statuspage

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"
)

// Defaults of the panel probe.
const (
	// DefaultProbeEvery is how long a panel's reachability is reused
	// before the page checks it again: however often the page is loaded,
	// each panel gets at most one connection per this interval.
	DefaultProbeEvery = 15 * time.Second
	// DefaultProbeTimeout bounds one check.
	DefaultProbeTimeout = 2 * time.Second
	// maxPanels bounds the panels shown.
	maxPanels = 100
)

// PanelTarget is a broadcaster panel the gateway forwards to: its name
// (the config section that defines it) and its origin.
type PanelTarget struct {
	Name   string
	Origin *url.URL
}

// Panel is a panel's reachability as the page shows it.
type Panel struct {
	Name string `json:"name"`
	// Origin is scheme://host:port; it never holds credentials.
	Origin string `json:"origin"`
	// Reachable says a TCP connection to the panel succeeded at CheckedAt.
	Reachable bool      `json:"reachable"`
	CheckedAt time.Time `json:"checked_at"`
	// Error is why the last check failed; empty when it succeeded.
	Error string `json:"error,omitempty"`
	// LatencyMS is how long the connection took to open.
	LatencyMS int64 `json:"latency_ms"`
}

// Prober checks panels' reachability with a TCP connection, at most once
// per Every each, so that loading the page cannot make scgate flood a
// panel. It is safe for concurrent use.
type Prober struct {
	// Dial opens the connection; nil means a net.Dialer's.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Every and Timeout: 0 means DefaultProbeEvery and DefaultProbeTimeout.
	Every, Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	state map[string]*probeState
}

type probeState struct {
	running sync.Mutex // held by the one check in progress
	mu      sync.Mutex
	last    Panel
	checked bool
}

// Check returns each target's reachability, checking again those whose
// last check is older than Every. While one check of a panel runs, other
// page loads see the previous result instead of waiting or dialling.
func (p *Prober) Check(ctx context.Context, targets []PanelTarget) []Panel {
	if len(targets) > maxPanels {
		targets = targets[:maxPanels]
	}
	out := make([]Panel, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { out[i] = p.check(ctx, t) })
	}
	wg.Wait()
	return out
}

func (p *Prober) check(ctx context.Context, t PanelTarget) Panel {
	st := p.stateOf(t)
	now := p.now()
	st.mu.Lock()
	fresh := st.checked && now.Sub(st.last.CheckedAt) < p.every()
	last := st.last
	st.mu.Unlock()
	if fresh || !st.running.TryLock() {
		if !st.checked {
			last.Name, last.Origin, last.Error = t.Name, originOf(t.Origin), "not checked yet"
		}
		return last
	}
	defer st.running.Unlock()
	res := p.dial(ctx, t)
	st.mu.Lock()
	st.last, st.checked = res, true
	st.mu.Unlock()
	return res
}

func (p *Prober) stateOf(t PanelTarget) *probeState {
	key := t.Name + " " + originOf(t.Origin)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		p.state = map[string]*probeState{}
	}
	st, ok := p.state[key]
	if !ok {
		st = &probeState{}
		p.state[key] = st
	}
	return st
}

func (p *Prober) dial(ctx context.Context, t PanelTarget) Panel {
	res := Panel{Name: t.Name, Origin: originOf(t.Origin), CheckedAt: p.now()}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	// The check outlives a page load that is cancelled: its result serves
	// the next one.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	dial := p.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	start := time.Now()
	conn, err := dial(ctx, "tcp", hostPort(t.Origin))
	res.LatencyMS = time.Since(start).Milliseconds()
	if err != nil {
		res.Error = dialProblem(err)
		return res
	}
	_ = conn.Close()
	res.Reachable = true
	return res
}

func (p *Prober) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Prober) every() time.Duration {
	if p.Every > 0 {
		return p.Every
	}
	return DefaultProbeEvery
}

// dialProblem names a failed connection in a few fixed words: an error's
// own text could carry resolver details nobody needs on the page.
func dialProblem(err error) string {
	var ne net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return "name not resolved"
	case errors.As(err, &ne) && ne.Timeout():
		return "connection timed out"
	}
	return "connection refused or failed"
}

func originOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "443"
	if u.Scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
