package keyvault_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
)

// pickup is how fast a change must be noticed through notifications: the
// gateway promises well under a second.
const pickup = time.Second

// gen returns the n-th distinct test secret; all carry the leak marker.
func gen(n int) string { return fmt.Sprintf("Gen%05d.%s%d", n, leakMarker, n) }

func vaultText(secret string) string {
	return "[callers]\nsvc = \"k\"\n\n[[keys.k]]\nsecret = \"" + secret + "\"\n"
}

const vaultFileText = "[callers]\nsvc = \"k\"\n\n[[keys.k]]\nsecret_file = \"api.key\"\n"

// brokenText is invalid on line 5 and holds a secret that must not leak.
const brokenText = "[callers]\nsvc = \"k\"\n\n[[keys.k]]\nsecret = \"Broken01." + leakMarker + " with a space\"\n"

type reloadCall struct {
	v   *keyvault.Vault
	err error
}

// harness runs a Watcher with an observed logger and records OnReload calls.
type harness struct {
	t    *testing.T
	w    *keyvault.Watcher
	logs *observer.ObservedLogs

	mu    sync.Mutex
	calls []reloadCall
}

func newHarness(t *testing.T, opts keyvault.WatcherOptions) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h := &harness{t: t, logs: logs}
	opts.Logger = zap.New(core)
	opts.Now = fixedNow
	opts.OnReload = func(v *keyvault.Vault, _ []keyvault.Warning, err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls = append(h.calls, reloadCall{v, err})
	}
	w, err := keyvault.NewWatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	t.Cleanup(h.checkLogs)
	return h
}

// run starts Run and waits until its first check of the (unchanged) file,
// which comes after the watches are in place, so that the test's next write
// is not raced by that check.
func (h *harness) run() {
	h.t.Helper()
	h.start()
	vaulttest.Eventually(h.t, pickup, "Run to have started", func() bool {
		return h.logs.FilterMessage("vault checked; unchanged").Len() > 0
	})
}

// start starts Run and stops it (waiting for it to return) when the test
// ends.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.w.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Run: %v", err)
		}
	})
}

func (h *harness) secret() string {
	ver, err := h.w.Current().Select("svc", testNow)
	if err != nil {
		return "error: " + err.Error()
	}
	return ver.Secret.Value()
}

func (h *harness) waitSecret(want string, timeout time.Duration) {
	h.t.Helper()
	vaulttest.Eventually(h.t, timeout, "the vault to serve "+keyvault.Prefix(want), func() bool { return h.secret() == want })
}

func (h *harness) snapshot() []reloadCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]reloadCall(nil), h.calls...)
}

// waitFailure waits for a failed reload to be reported and returns its error.
func (h *harness) waitFailure(after int) error {
	h.t.Helper()
	var err error
	vaulttest.Eventually(h.t, pickup, "a failed reload to be reported", func() bool {
		for _, c := range h.snapshot()[after:] {
			if c.err != nil {
				err = c.err
				return true
			}
		}
		return false
	})
	return err
}

// checkLogs fails the test if any log line holds a secret.
func (h *harness) checkLogs() {
	for _, e := range h.logs.All() {
		if out := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(out, leakMarker) {
			h.t.Errorf("log line leaks a secret: %s", out)
		}
	}
}

func TestWatcherFollowsChanges(t *testing.T) {
	tests := []struct {
		name  string
		write func(t testing.TB, path, content string)
	}{
		{"plain rewrite", vaulttest.WriteFile},
		{"atomic rename", vaulttest.WriteAtomic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeVault(t, vaultText(gen(1)), nil)
			h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: -1})
			h.run()
			for i := 2; i <= 4; i++ {
				tt.write(t, path, vaultText(gen(i)))
				h.waitSecret(gen(i), pickup)
			}
			if tt.name == "atomic rename" {
				// OnReload runs just after the swap that waitSecret saw.
				vaulttest.Eventually(t, pickup, "the third OnReload", func() bool { return len(h.snapshot()) >= 3 })
			}
			// A plain rewrite may be read half-written (then refused), but
			// no vault other than the ones written is ever served.
			calls := h.snapshot()
			for _, c := range calls {
				if c.err != nil {
					continue
				}
				if got, err := c.v.Select("svc", testNow); err != nil || !strings.HasPrefix(got.Secret.Value(), "Gen0000") {
					t.Errorf("served a vault that was never written: %v, %v", got, err)
				}
			}
			if tt.name == "atomic rename" && len(calls) != 3 {
				t.Errorf("OnReload called %d times, want 3 (one per change)", len(calls))
			}
		})
	}
}

func TestWatcherSummaryLine(t *testing.T) {
	path := writeVault(t, vaultText(gen(1)), nil)
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: -1, DisableNotify: true})
	vaulttest.WriteFile(t, path, vaultText(gen(2)))
	if err := h.w.Reload(); err != nil {
		t.Fatal(err)
	}
	entries := h.logs.FilterMessage("vault reloaded").All()
	if len(entries) != 1 {
		t.Fatalf("summaries: %v", entries)
	}
	fields := entries[0].ContextMap()
	if fields["keys"] != int64(1) || fields["versions"] != int64(1) || fields["callers"] != int64(1) ||
		fmt.Sprint(fields["active"]) != "[k=Gen00002]" || fields["file"] != path {
		t.Errorf("summary fields = %v", fields)
	}
}

func TestWatcherKubernetesSecretVolume(t *testing.T) {
	vol := vaulttest.NewSecretVolume(t, map[string]string{"keys.toml": vaultFileText, "api.key": gen(1) + "\n"})
	h := newHarness(t, keyvault.WatcherOptions{Path: vol.Path("keys.toml"), PollInterval: -1})
	h.run()

	// The kubelet swaps ..data for every update, even of one file.
	vol.Update(map[string]string{"keys.toml": vaultFileText, "api.key": gen(2) + "\n"})
	h.waitSecret(gen(2), pickup)

	before := len(h.snapshot())
	vol.Update(map[string]string{"keys.toml": brokenText, "api.key": gen(3) + "\n"})
	if err := h.waitFailure(before); err == nil || h.secret() != gen(2) {
		t.Fatalf("broken update: err %v, serving %s", err, keyvault.Prefix(h.secret()))
	}

	vol.Update(map[string]string{"keys.toml": vaultFileText, "api.key": gen(4) + "\n"})
	h.waitSecret(gen(4), pickup)
}

func TestWatcherKeepsLastGoodVault(t *testing.T) {
	path := writeVault(t, vaultText(gen(1)), nil)
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: -1})
	h.run()
	good := h.w.Current()

	vaulttest.WriteAtomic(t, path, brokenText)
	err := h.waitFailure(0)
	var pe *keyvault.ParseError
	if !errors.As(err, &pe) || pe.Line != 5 {
		t.Fatalf("reported error = %v, want a ParseError on line 5", err)
	}
	if h.w.Current() != good {
		t.Error("the vault in service changed after an invalid file")
	}
	failures := h.logs.FilterMessage("vault reload failed; keeping the last good vault").All()
	if len(failures) != 1 {
		t.Fatalf("failure log lines: %v", failures)
	}
	if f := failures[0].ContextMap(); f["line"] != int64(5) || f["file"] != path || !strings.Contains(f["reason"].(string), "whitespace") {
		t.Errorf("failure fields = %v", f)
	}

	// A truncated file is just as invalid.
	vaulttest.WriteAtomic(t, path, vaultText(gen(2))[:30])
	if err := h.waitFailure(len(h.snapshot())); err == nil {
		t.Fatal("truncated file not reported")
	}
	vaulttest.WriteAtomic(t, path, vaultText(gen(2)))
	h.waitSecret(gen(2), pickup)
}

func TestWatcherDeletionThenRecreation(t *testing.T) {
	path := writeVault(t, vaultText(gen(1)), nil)
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: -1})
	h.run()

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := h.waitFailure(0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("deletion reported as %v, want fs.ErrNotExist", err)
	}
	if h.secret() != gen(1) {
		t.Error("the vault in service changed after deletion")
	}
	vaulttest.WriteFile(t, path, vaultText(gen(2)))
	h.waitSecret(gen(2), pickup)
}

func TestWatcherReload(t *testing.T) {
	path := writeVault(t, vaultText(gen(1)), nil)
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: -1, DisableNotify: true})

	vaulttest.WriteFile(t, path, vaultText(gen(2)))
	if err := h.w.Reload(); err != nil || h.secret() != gen(2) {
		t.Fatalf("Reload = %v, serving %s", err, keyvault.Prefix(h.secret()))
	}

	// An explicit reload of an unchanged file is reported but swaps nothing.
	cur := h.w.Current()
	if err := h.w.Reload(); err != nil || h.w.Current() != cur {
		t.Fatalf("unchanged Reload = %v, vault replaced: %v", err, h.w.Current() != cur)
	}
	if calls := h.snapshot(); len(calls) != 2 || calls[1].v != cur || calls[1].err != nil {
		t.Errorf("OnReload calls = %v", calls)
	}

	vaulttest.WriteFile(t, path, brokenText)
	if err := h.w.Reload(); err == nil || h.w.Current() != cur {
		t.Fatalf("invalid Reload = %v, vault replaced: %v", err, h.w.Current() != cur)
	}
	// Forced reloads report every time, even the same failure.
	if err := h.w.Reload(); err == nil {
		t.Fatal("second invalid Reload succeeded")
	}
	if calls := h.snapshot(); len(calls) != 4 || calls[2].err == nil || calls[3].err == nil {
		t.Errorf("OnReload calls = %v", calls)
	}
}

func TestWatcherConcurrentReloadAndReaders(t *testing.T) {
	path := writeVault(t, vaultText(gen(1)), nil)
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: -1, DisableNotify: true})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				_ = h.w.Reload()
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 2000; j++ {
				if _, err := h.w.Current().Select("svc", testNow); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestWatcherPollingOnly(t *testing.T) {
	path := writeVault(t, vaultText(gen(1)), nil)
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: 20 * time.Millisecond, DisableNotify: true})
	h.run()
	vaulttest.WriteFile(t, path, vaultText(gen(2)))
	h.waitSecret(gen(2), pickup)

	// A file that stays broken is reported once, not on every poll.
	vaulttest.WriteFile(t, path, brokenText)
	before := len(h.snapshot())
	h.waitFailure(before)
	vaulttest.Eventually(t, pickup, "several more polls of the broken file", func() bool {
		return h.logs.FilterMessage("vault checked; still failing").Len() >= 3
	})
	if n := len(h.snapshot()) - before; n != 1 {
		t.Errorf("a persistent failure was reported %d times", n)
	}
	vaulttest.WriteFile(t, path, vaultText(gen(3)))
	h.waitSecret(gen(3), pickup)
}

func TestWatcherIgnoresNoOpChanges(t *testing.T) {
	path := writeVault(t, vaultText(gen(1)), nil)
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: -1})
	h.run()
	cur := h.w.Current()

	checks := h.logs.FilterMessage("vault checked; unchanged").Len()
	vaulttest.WriteAtomic(t, path, vaultText(gen(1)))
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	vaulttest.Eventually(t, pickup, "the rewrite to be checked", func() bool {
		return h.logs.FilterMessage("vault checked; unchanged").Len() > checks
	})
	if calls := h.snapshot(); len(calls) != 0 || h.w.Current() != cur {
		t.Errorf("a no-op rewrite was reported: %v", calls)
	}
	if n := h.logs.FilterLevelExact(zapcore.InfoLevel).FilterMessage("vault reloaded").Len(); n != 0 {
		t.Errorf("a no-op rewrite was logged as a reload")
	}
}

func TestWatcherSecretFileElsewhere(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "api.key")
	vaulttest.WriteFile(t, keyPath, gen(1))
	path := writeVault(t, strings.Replace(vaultFileText, `"api.key"`, fmt.Sprintf("%q", keyPath), 1), nil)
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: -1})
	h.run()
	vaulttest.WriteAtomic(t, keyPath, gen(2)+"\n")
	h.waitSecret(gen(2), pickup)
}

func TestWatcherFallsBackToPolling(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keys.toml")
	vaulttest.WriteFile(t, path, vaultText(gen(1)))
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: 20 * time.Millisecond})
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	h.start()
	vaulttest.Eventually(t, pickup, "the failed watch to be logged", func() bool {
		return h.logs.FilterMessage("cannot watch directory; relying on polling until it can be").Len() == 1
	})
	if h.secret() != gen(1) {
		t.Error("the vault in service changed while its directory was gone")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	vaulttest.WriteFile(t, path, vaultText(gen(2)))
	h.waitSecret(gen(2), pickup)
	vaulttest.Eventually(t, pickup, "the watch to be restored", func() bool {
		return h.logs.FilterMessage("watching directory again").Len() == 1
	})
}

func TestWatcherRunTwice(t *testing.T) {
	path := writeVault(t, vaultText(gen(1)), nil)
	h := newHarness(t, keyvault.WatcherOptions{Path: path, PollInterval: -1, DisableNotify: true})
	h.run()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.w.Run(ctx); err == nil {
		t.Error("a second concurrent Run was not refused")
	}
}

func TestNewWatcherInvalid(t *testing.T) {
	called := false
	_, err := keyvault.NewWatcher(keyvault.WatcherOptions{
		Path:     writeVault(t, brokenText, nil),
		OnReload: func(*keyvault.Vault, []keyvault.Warning, error) { called = true },
	})
	if err == nil || called {
		t.Fatalf("NewWatcher = %v, OnReload called: %v", err, called)
	}
	if strings.Contains(err.Error(), leakMarker) {
		t.Errorf("error leaks: %v", err)
	}
	if _, err := keyvault.NewWatcher(keyvault.WatcherOptions{}); err == nil {
		t.Error("NewWatcher without a path succeeded")
	}
}
