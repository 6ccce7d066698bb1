package standin

import (
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Request is what the stand-in saw of one call. It never holds a full key: every SC-API-KEY value
// is reduced to its Prefix before it is stored, so a test can print or compare Requests freely.
type Request struct {
	Method   string
	Path     string // r.URL.Path, decoded
	RawQuery string
	Host     string // r.Host, what the gateway sent as the upstream host

	// KeyPrefixes holds the Prefix of every SC-API-KEY value received, whatever the header's
	// casing, one entry per value (several copies give several entries). Empty when none came.
	KeyPrefixes []string

	// Accepted is false only when the call was refused for its key (403). Calls to routes that
	// need no key, and calls refused for another reason (404, 405, 400, 413), are accepted.
	Accepted bool

	Status int // the status the stand-in answered with

	// Header is a clone of the request headers in which every SC-API-KEY value is replaced by its
	// Prefix.
	Header http.Header
}

func newRequest(r *http.Request, keys []string) Request {
	rec := Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Host:     r.Host,
		Accepted: true,
		Header:   r.Header.Clone(),
	}
	if len(keys) == 0 {
		return rec
	}
	rec.KeyPrefixes = make([]string, len(keys))
	for i, k := range keys {
		rec.KeyPrefixes[i] = Prefix(k)
	}
	for name, vals := range rec.Header {
		if !strings.EqualFold(name, KeyHeader) {
			continue
		}
		// Clone gave this name its own backing array, but build a new slice anyway so that
		// nothing aliasing the original values can ever see the redaction or the key.
		red := make([]string, len(vals))
		for i, v := range vals {
			red[i] = Prefix(v)
		}
		rec.Header[name] = red
	}
	return rec
}

func (rq Request) clone() Request {
	rq.KeyPrefixes = slices.Clone(rq.KeyPrefixes)
	rq.Header = rq.Header.Clone()
	return rq
}

// recorder is the request log: an append-only slice, or a ring of the newest max entries.
type recorder struct {
	mu    sync.Mutex
	max   int // 0: unbounded
	buf   []Request
	start int // index of the oldest entry once the ring is full
}

func (l *recorder) add(rq Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && len(l.buf) == l.max {
		l.buf[l.start] = rq
		l.start = (l.start + 1) % l.max
		return
	}
	l.buf = append(l.buf, rq)
}

// snapshot deep-copies the log, so that a caller editing what it got back cannot change what a
// later call sees.
func (l *recorder) snapshot() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Request, 0, len(l.buf))
	for _, rq := range l.buf[l.start:] {
		out = append(out, rq.clone())
	}
	for _, rq := range l.buf[:l.start] {
		out = append(out, rq.clone())
	}
	return out
}

func (l *recorder) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = nil
	l.start = 0
}
