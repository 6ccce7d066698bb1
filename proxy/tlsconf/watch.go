package tlsconf

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// DefaultPollInterval is how often Run re-reads watched files when the
// options leave PollInterval at zero. The poll is the fallback for the file
// changes that fsnotify cannot report (network file systems, some container
// volume drivers, a watch that could not be added).
const DefaultPollInterval = 5 * time.Second

// settleDelay collects the burst of events that one logical change makes (a
// rewrite is truncate+write+close; a Secret update is several creates, a
// rename and removes) into one reload, so a certificate written a moment
// before its key is not reported as a mismatched pair.
const settleDelay = 100 * time.Millisecond

// pollInterval turns an option value into the interval used: 0 means the
// default, a negative value switches polling off.
func pollInterval(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultPollInterval
	case d < 0:
		return 0
	}
	return d
}

// readAll reads the files and returns their contents with a digest that
// changes when any of them does. Read failures get a digest too (of the
// error), so the same failure seen again by the poll is not reported again.
func readAll(paths []string) ([][]byte, [sha256.Size]byte, error) {
	h := sha256.New()
	contents := make([][]byte, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, sha256.Sum256([]byte("read error: " + err.Error())), err
		}
		contents[i] = b
		// Length-prefix each file so that moving bytes from one file to the
		// other changes the digest.
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return contents, sum, nil
}

// watchDirs is the set of directories to watch for the files: each file's
// own directory, because Kubernetes replaces a Secret by swapping the
// "..data" symlink next to it (the file itself never sees an event), and,
// when the file is a symlink elsewhere, the target's directory, so an
// in-place rewrite of the target is seen too.
func watchDirs(paths []string) []string {
	seen := map[string]bool{}
	var dirs []string
	add := func(p string) {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		d := filepath.Dir(p)
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	for _, p := range paths {
		add(p)
		if target, err := filepath.EvalSymlinks(p); err == nil {
			add(target)
		}
	}
	return dirs
}

// watchFiles calls check once when watching has started (so a change made
// between loading and watching is not lost), then after every settled burst
// of fsnotify events in the files' directories and on every poll tick, until
// ctx is done. check must be cheap when nothing changed: it is called on
// every poll and on events for unrelated files in the same directories.
//
// If fsnotify cannot be used at all the poll carries on alone, with a
// warning; only when there is neither is an error returned.
func watchFiles(ctx context.Context, paths []string, poll time.Duration, log *zap.Logger, check func()) error {
	w, err := newWatcher(paths, log)
	if err != nil {
		if poll <= 0 {
			return fmt.Errorf("tlsconf: cannot watch %v and polling is off: %w (set a positive poll interval)", paths, err)
		}
		log.Warn("tlsconf: file events unavailable; relying on polling", zap.Error(err), zap.Duration("poll_interval", poll))
	}
	if w != nil {
		defer w.Close()
	}
	loop(ctx, w, poll, log, check)
	return nil
}

// newWatcher watches every directory in watchDirs(paths). A directory that
// cannot be watched is logged and skipped; the error is only returned when
// none can be.
func newWatcher(paths []string, log *zap.Logger) (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	var errs []error
	added := 0
	for _, d := range watchDirs(paths) {
		if err := w.Add(d); err != nil {
			errs = append(errs, err)
			log.Warn("tlsconf: cannot watch directory", zap.String("dir", d), zap.Error(err))
			continue
		}
		added++
	}
	if added == 0 {
		w.Close()
		return nil, errors.Join(errs...)
	}
	return w, nil
}

// loop is the event loop of watchFiles; w may be nil (poll only) and poll may
// be zero (events only).
func loop(ctx context.Context, w *fsnotify.Watcher, poll time.Duration, log *zap.Logger, check func()) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	settle := time.NewTimer(settleDelay)
	settle.Stop()
	defer settle.Stop()
	pending := false

	check()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			// A chmod alone never changes what the file says.
			if ev.Op == fsnotify.Chmod || pending {
				continue
			}
			pending = true
			settle.Reset(settleDelay)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			log.Warn("tlsconf: file watch error", zap.Error(err))
		case <-settle.C:
			pending = false
			check()
		case <-tick:
			check()
		}
	}
}
