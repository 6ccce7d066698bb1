package keyvault

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// Run follows the vault file until ctx is done, then returns nil.
//
// It watches the file's directory rather than the file: editors and
// deployment tools replace files by rename, and a Kubernetes Secret volume
// swaps a "..data" symlink, neither of which a watch on the file itself
// survives. Any event in that directory, or in the directory of a
// secret_file, triggers a reload after a short debounce; a poll (unless
// disabled) catches what notifications miss, and re-adds watches on
// directories that were removed and recreated. If the watch cannot be set
// up, Run logs it and relies on polling. A reload whose content is unchanged
// is silent; an invalid file is logged and reported, and the last good vault
// stays in service.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("keyvault: Watcher.Run is already running")
	}
	defer w.running.Store(false)

	n := w.startNotify()
	defer n.close()
	var tick <-chan time.Time
	if w.poll > 0 {
		t := time.NewTicker(w.poll)
		defer t.Stop()
		tick = t.C
	}
	if n == nil && tick == nil {
		w.log.Warn("vault changes will only be picked up by Reload: polling is disabled and the directory is not watched",
			zap.String("file", w.path))
	}
	// Watch first, then re-read: a change made before the watch was in place
	// is caught by the read, and any later one by an event.
	n.sync(w.watchDirs())
	w.check(n)

	d := newDebouncer()
	defer d.stop()
	events, errs := n.channels()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			d.arm()
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow means events were lost: reload to be sure.
			w.log.Warn("vault directory watch reported an error", zap.String("file", w.path), zap.Error(err))
			d.arm()
		case <-d.fired():
			d.reset()
			w.check(n)
		case <-tick:
			w.check(n)
		}
	}
}

// check reloads (silently when nothing changed) and then adjusts the watched
// directories to the vault now in service.
func (w *Watcher) check(n *notifier) {
	_ = w.reload(false) // reported by reload itself
	n.sync(w.watchDirs())
}

// watchDirs lists the directories whose changes matter: the vault file's and
// those of the secret_files of the vault in service.
func (w *Watcher) watchDirs() []string {
	dirs := []string{filepath.Clean(filepath.Dir(w.path))}
	for _, f := range w.Current().SecretFiles() {
		dirs = append(dirs, filepath.Clean(filepath.Dir(f)))
	}
	return dirs
}

// notifier wraps the fsnotify watcher. A nil *notifier is a valid, inert
// one, used when notifications are disabled or unavailable.
type notifier struct {
	fw     *fsnotify.Watcher
	log    *zap.Logger
	failed map[string]bool // directories whose watch failed, logged once
}

func (w *Watcher) startNotify() *notifier {
	if w.disableNotify {
		return nil
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		w.log.Warn("cannot watch the vault directory; relying on polling", zap.String("file", w.path), zap.Error(err))
		return nil
	}
	return &notifier{fw: fw, log: w.log, failed: make(map[string]bool)}
}

func (n *notifier) channels() (<-chan fsnotify.Event, <-chan error) {
	if n == nil {
		return nil, nil
	}
	return n.fw.Events, n.fw.Errors
}

func (n *notifier) close() {
	if n != nil {
		_ = n.fw.Close()
	}
}

// sync watches exactly dirs. A directory that cannot be watched (it may not
// exist right now) is logged once and retried at the next check.
func (n *notifier) sync(dirs []string) {
	if n == nil {
		return
	}
	want := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		want[d] = true
	}
	have := make(map[string]bool)
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

// arm (re)starts the quiet period, bounded by debounceMax since the burst's
// first event. Since Go 1.23 Reset also discards a stale firing.
func (d *debouncer) arm() {
	now := time.Now()
	if !d.armed {
		d.armed, d.first = true, now
	}
	d.t.Reset(max(0, min(debounceQuiet, d.first.Add(debounceMax).Sub(now))))
}

func (d *debouncer) fired() <-chan time.Time { return d.t.C }
func (d *debouncer) reset()                  { d.armed = false }
func (d *debouncer) stop()                   { d.t.Stop() }
