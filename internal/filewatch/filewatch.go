// Package filewatch follows a few files for changes: the one file watcher of
// scgate, used by the vault (keyvault) and the TLS files (proxy/tlsconf),
// with one set of timings.
//
// It watches each file's folder rather than the file: editors and
// deployment tools replace files by rename, and a Kubernetes Secret volume
// swaps a "..data" symlink beside the file, neither of which a watch on the
// file itself survives. When a file is a symlink, the folder of its target is
// watched too, so an in-place rewrite of the target is seen. Only events
// that can change a watched file count (its own name, its target's name, and
// the "..data" swap): a log file written beside the vault does not make it
// re-read. A burst of events is debounced into one check, and a poll catches
// what notifications miss (network file systems, a folder that could not be
// watched yet, which the next check tries again).
//
// It is a leaf package: it imports nothing of scgate's.
package filewatch

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// The timings every watcher shares.
const (
	// DefaultPollInterval is how often the files are checked when
	// notifications say nothing.
	DefaultPollInterval = 2 * time.Second
	// DebounceQuiet is how long the folder must be quiet after an event
	// before the check: a rewrite is truncate+write+close, a Secret update
	// several creates, a rename and removes, and a certificate may be
	// written a moment before its key.
	DebounceQuiet = 100 * time.Millisecond
	// DebounceMax bounds the wait from the first event of a burst, so a
	// busy folder cannot starve the check.
	DebounceMax = 500 * time.Millisecond
)

// k8sData is the symlink a Kubernetes Secret or ConfigMap volume swaps to
// replace every file at once.
const k8sData = "..data"

// Options configures Run.
type Options struct {
	// Files returns the files to follow. It is called again after every
	// check, so the set may change (the vault's secret_files do).
	Files func() []string
	// Check is called once when watching has started (so that a change
	// made between loading and watching is not lost), after every settled
	// burst of relevant events, and on every poll tick. It must be cheap
	// when nothing changed.
	Check func()
	// PollInterval: 0 means DefaultPollInterval; negative turns polling off.
	PollInterval time.Duration
	// DisableNotify leaves polling alone to find changes.
	DisableNotify bool
	// Logger receives watch problems; nil discards them.
	Logger *zap.Logger
}

// Run follows the files until ctx is done, then returns nil.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	poll := o.PollInterval
	if poll == 0 {
		poll = DefaultPollInterval
	}
	var n *notifier
	if !o.DisableNotify {
		fw, err := fsnotify.NewWatcher()
		if err != nil {
			log.Warn("file events unavailable; relying on polling", zap.Error(err), zap.Duration("poll_interval", poll))
		} else {
			n = &notifier{fw: fw, log: log, failed: map[string]bool{}}
			defer n.fw.Close()
		}
	}
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	check := func() {
		o.Check()
		n.sync(o.Files())
	}
	// Watch first, then check: a change made before the watch was in place
	// is caught by the check, and any later one by an event.
	n.sync(o.Files())
	o.Check()
	d := newDebouncer()
	defer d.t.Stop()
	events, errs := n.channels()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Op != fsnotify.Chmod && n.relevant(ev.Name) {
				d.arm()
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow means events were lost: check to be sure.
			log.Warn("file watch error", zap.Error(err))
			d.arm()
		case <-d.t.C:
			d.armed = false
			check()
		case <-tick:
			check()
		}
	}
}

// notifier wraps the fsnotify watcher. A nil *notifier is a valid, inert one.
type notifier struct {
	fw     *fsnotify.Watcher
	log    *zap.Logger
	failed map[string]bool     // folders whose watch failed, logged once
	names  map[string]struct{} // the paths whose events count
}

func (n *notifier) channels() (<-chan fsnotify.Event, <-chan error) {
	if n == nil {
		return nil, nil
	}
	return n.fw.Events, n.fw.Errors
}

// relevant reports whether an event on path can change a watched file.
func (n *notifier) relevant(path string) bool {
	_, ok := n.names[filepath.Clean(path)]
	return ok
}

// sync watches exactly the folders of files (and of their symlink targets)
// and notes which paths' events count. A folder that cannot be watched (it
// may not exist right now) is logged once and retried at the next check.
func (n *notifier) sync(files []string) {
	if n == nil {
		return
	}
	want := map[string]bool{}
	n.names = map[string]struct{}{}
	add := func(p string) {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		dir := filepath.Dir(p)
		want[dir] = true
		n.names[p] = struct{}{}
		n.names[filepath.Join(dir, k8sData)] = struct{}{}
	}
	for _, f := range files {
		add(f)
		if target, err := filepath.EvalSymlinks(f); err == nil {
			add(target)
		}
	}
	have := map[string]bool{}
	for _, d := range n.fw.WatchList() {
		have[filepath.Clean(d)] = true
	}
	for d := range want {
		if have[d] {
			continue
		}
		if err := n.fw.Add(d); err != nil {
			if !n.failed[d] {
				n.failed[d] = true
				n.log.Warn("cannot watch directory; relying on polling until it can be", zap.String("dir", d), zap.Error(err))
			}
			continue
		}
		if n.failed[d] {
			delete(n.failed, d)
			n.log.Info("watching directory again", zap.String("dir", d))
		}
	}
	for d := range have {
		if !want[d] {
			_ = n.fw.Remove(d)
		}
	}
}

// debouncer coalesces a burst of events into one timer firing.
type debouncer struct {
	t     *time.Timer
	armed bool
	first time.Time
}

func newDebouncer() *debouncer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &debouncer{t: t}
}

// arm (re)starts the quiet period, bounded by DebounceMax since the burst's
// first event. Since Go 1.23 Reset also discards a stale firing.
func (d *debouncer) arm() {
	now := time.Now()
	if !d.armed {
		d.armed, d.first = true, now
	}
	d.t.Reset(max(0, min(DebounceQuiet, d.first.Add(DebounceMax).Sub(now))))
}
