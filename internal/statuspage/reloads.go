package statuspage

import (
	"sync"
	"time"
)

// MaxReloads is how many vault reloads the page keeps and shows.
const MaxReloads = 20

// maxReloadLines bounds the audit or problem lines kept for one reload.
const maxReloadLines = 50

// Reload is one vault load: the first one or a reload, successful or not.
type Reload struct {
	At time.Time `json:"at"`
	// OK is false for a reload that failed (the previous vault stayed).
	OK bool `json:"ok"`
	// Summary is the one-line outcome, like the log line's message.
	Summary string `json:"summary"`
	// Lines are the audit lines of a successful reload (what changed, with
	// prefixes only) or the problems of a failed one (file:line reason).
	Lines []string `json:"lines"`
	// More counts the lines left out beyond the cap.
	More int `json:"more,omitempty"`
}

// ReloadLog keeps the last MaxReloads reloads. It is safe for concurrent
// use; the zero value is ready.
type ReloadLog struct {
	mu   sync.Mutex
	ring []Reload // oldest first
}

// Add records r, dropping the oldest beyond MaxReloads and lines beyond
// the cap.
func (l *ReloadLog) Add(r Reload) {
	if len(r.Lines) > maxReloadLines {
		r.More += len(r.Lines) - maxReloadLines
		r.Lines = r.Lines[:maxReloadLines:maxReloadLines]
	}
	if r.Lines == nil {
		r.Lines = []string{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring = append(l.ring, r)
	if len(l.ring) > MaxReloads {
		l.ring = append(l.ring[:0:0], l.ring[len(l.ring)-MaxReloads:]...)
	}
}

// Recent returns the reloads kept, newest first.
func (l *ReloadLog) Recent() []Reload {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Reload, 0, len(l.ring))
	for i := len(l.ring) - 1; i >= 0; i-- {
		out = append(out, l.ring[i])
	}
	return out
}
