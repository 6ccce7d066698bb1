package keyvault

import (
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/scgate/scgate/internal/filewatch"
)

// DefaultPollInterval is the fallback poll of a [Watcher] whose
// PollInterval is 0.
const DefaultPollInterval = filewatch.DefaultPollInterval

// maxLoggedProblems bounds the log lines one failed reload writes.
const maxLoggedProblems = 20

// WatcherOptions configures [NewWatcher].
type WatcherOptions struct {
	// Path is the vault file. Required.
	Path string
	// PollInterval is how often the file is re-read as a fallback for file
	// systems where notifications do not arrive. 0 means
	// DefaultPollInterval; a negative value disables polling.
	PollInterval time.Duration
	// DisableNotify turns off the directory watch, leaving polling (and
	// Reload) to pick up changes: for network or FUSE file systems whose
	// notifications are unreliable.
	DisableNotify bool
	// Logger receives reload results and problems; it never sees a secret,
	// only prefixes. nil means no logging.
	Logger *zap.Logger
	// Now is the clock for validity decisions in warnings and log summaries.
	// nil means time.Now.
	Now func() time.Time
	// Identities decrypt an age-encrypted vault (see LoadOptions).
	Identities []age.Identity
	// Panels are the configured panels (see LoadOptions).
	Panels []string
	// OnReload, if set, is called after every reload attempt that is
	// reported: every forced Reload, every change of the files, the first
	// failure of a given kind, and the recovery from it. It is not called for
	// the initial load, whose result NewWatcher returns. On success v is the
	// vault in service; on failure err is set (v is nil) and the previous
	// vault stays in service. Calls are serialised; OnReload must not call
	// Reload.
	OnReload func(v *Vault, warnings []Warning, err error)
}

// Watcher keeps the current vault and replaces it when the file changes.
// Readers ([Watcher.Current]) never wait: the vault sits behind an
// atomic.Pointer, and reloads build the new one off to the side and only
// then swap it in. A reload that fails keeps the last good vault.
type Watcher struct {
	path          string
	loadOpts      LoadOptions
	poll          time.Duration
	disableNotify bool
	log           *zap.Logger
	onReload      func(*Vault, []Warning, error)

	cur     atomic.Pointer[Vault]
	running atomic.Bool

	mu sync.Mutex // serialises reloads (never taken by readers); guards failSig
	// failSig identifies the failure reported last (zero after a success),
	// so that a file that stays broken is not reported on every poll.
	failSig [32]byte
}

// NewWatcher loads the vault once and returns a Watcher serving it. It
// returns the load's error (every problem, as [Load] does) if the file is
// invalid, without logging it or calling OnReload: the caller reports it.
// Call [Watcher.Run] to follow changes.
func NewWatcher(opts WatcherOptions) (*Watcher, error) {
	if opts.Path == "" {
		return nil, errors.New("keyvault: WatcherOptions.Path is required")
	}
	w := &Watcher{
		path:          opts.Path,
		loadOpts:      LoadOptions{Now: opts.Now, Identities: opts.Identities, Panels: opts.Panels}.withDefaults(),
		poll:          opts.PollInterval,
		disableNotify: opts.DisableNotify,
		log:           opts.Logger,
		onReload:      opts.OnReload,
	}
	if w.poll == 0 {
		w.poll = DefaultPollInterval
	}
	if w.log == nil {
		w.log = zap.NewNop()
	}
	if w.onReload == nil {
		w.onReload = func(*Vault, []Warning, error) {}
	}
	res := load(w.path, w.loadOpts)
	if res.err != nil {
		return nil, res.err
	}
	w.cur.Store(res.vault)
	w.logLoaded("vault loaded", res)
	return w, nil
}

// Current returns the vault in service. It never blocks.
func (w *Watcher) Current() *Vault { return w.cur.Load() }

// Reload re-reads the vault now (for SIGHUP) and reports the result (log and
// OnReload) even if nothing changed. It returns the load's error, in which
// case the previous vault stays in service; each problem has already been
// logged with its file and line. Concurrent reloads are serialised; readers
// are never blocked.
func (w *Watcher) Reload() error { return w.reload(true) }

// reload loads the file and swaps it in if its content changed. Unforced
// reloads (events, polls) stay silent when nothing changed and report a given
// failure once.
func (w *Watcher) reload(forced bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	res := load(w.path, w.loadOpts)
	if res.err != nil {
		sig := failureSignature(res)
		if !forced && sig == w.failSig {
			w.log.Debug("vault checked; still failing", zap.String("file", w.path))
			return res.err
		}
		w.failSig = sig
		w.logFailure(res.err)
		w.onReload(nil, nil, res.err)
		return res.err
	}
	recovered := w.failSig != [32]byte{}
	w.failSig = [32]byte{}
	cur := w.cur.Load()
	if res.vault.Digest() == cur.Digest() {
		if !forced && !recovered {
			w.log.Debug("vault checked; unchanged", zap.String("file", w.path))
			return nil
		}
		w.log.Info("vault unchanged", zap.String("file", w.path), zap.Bool("recovered", recovered))
		w.logWarnings(res.warnings)
		w.onReload(cur, res.warnings, nil)
		return nil
	}
	w.cur.Store(res.vault)
	changes := Diff(cur, res.vault, w.loadOpts.Now())
	w.logLoaded("vault reloaded", res, zap.Object("changes", changes))
	w.onReload(res.vault, res.warnings, nil)
	return nil
}

// failureSignature tells one failure from another: the same error on the
// same bytes is the same failure.
func failureSignature(res result) [32]byte {
	h := sha256.New()
	h.Write(res.digest[:])
	h.Write([]byte(res.err.Error()))
	var sig [32]byte
	h.Sum(sig[:0])
	return sig
}

// logLoaded writes the one-line summary of a vault put in service, with the
// active prefix of each key (prefixes only) and, for a reload, the audit
// trail of what changed; then its warnings.
func (w *Watcher) logLoaded(msg string, res result, extra ...zap.Field) {
	v := res.vault
	now := w.loadOpts.Now()
	active := make([]string, 0, len(v.sortedKeys))
	for _, k := range v.sortedKeys {
		p := "none"
		if a := k.Active(now); a != nil {
			p = a.Secret.Prefix()
		}
		active = append(active, k.Name+"="+p)
	}
	w.log.Info(msg, append([]zap.Field{
		zap.String("file", v.path),
		zap.Int("keys", len(v.sortedKeys)),
		zap.Int("versions", v.versionCount()),
		zap.Int("callers", len(v.callerNames)),
		zap.Strings("active", active)}, extra...)...)
	w.logWarnings(res.warnings)
}

func (w *Watcher) logWarnings(ws []Warning) {
	for _, wr := range ws {
		w.log.Warn("vault warning", zap.String("file", wr.File), zap.Int("line", wr.Line), zap.String("reason", wr.Message))
	}
}

// logFailure writes one line per problem (file, line, reason). Messages never
// hold a secret, so they can be logged as they are.
func (w *Watcher) logFailure(err error) {
	problems := parseErrors(err)
	for i, pe := range problems {
		if i == maxLoggedProblems {
			w.log.Error("vault reload failed: more problems not shown", zap.String("file", w.path), zap.Int("more", len(problems)-i))
			return
		}
		w.log.Error("vault reload failed; keeping the last good vault",
			zap.String("file", pe.File), zap.Int("line", pe.Line), zap.String("reason", pe.Message))
	}
}

// parseErrors flattens a load error into its ParseErrors.
func parseErrors(err error) []*ParseError {
	var out []*ParseError
	var walk func(error)
	walk = func(e error) {
		if pe, ok := e.(*ParseError); ok {
			out = append(out, pe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
			return
		}
		if e != nil {
			out = append(out, &ParseError{Message: e.Error()})
		}
	}
	walk(err)
	return out
}
