package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOnlyTheWatchedFilesEventsCount: a log file written beside the vault
// must not make the vault be re-read; the file itself, its symlink target and
// a Kubernetes "..data" swap must.
func TestOnlyTheWatchedFilesEventsCount(t *testing.T) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	dir, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "cert.pem")
	write(t, target, "x")
	link := filepath.Join(dir, "tls.crt")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	vault := filepath.Join(dir, "keys.toml")
	n := &notifier{fw: fw, log: zap.NewNop(), failed: map[string]bool{}}
	n.sync([]string{vault, link})
	for path, want := range map[string]bool{
		vault:                             true,
		link:                              true,
		target:                            true,
		filepath.Join(dir, "..data"):      true,
		filepath.Join(dir, "scgate.log"):  false,
		filepath.Join(dir, "keys.toml~"):  false,
		filepath.Join(elsewhere, "other"): false,
	} {
		if got := n.relevant(path); got != want {
			t.Errorf("relevant(%s) = %v, want %v", path, got, want)
		}
	}
	if got := len(fw.WatchList()); got != 2 {
		t.Errorf("%d folders watched, want 2 (the file's and its target's)", got)
	}
}

// checker counts Check calls and lets a test wait for the next one.
type checker struct {
	n    atomic.Int64
	wake chan struct{}
}

func newChecker() *checker { return &checker{wake: make(chan struct{}, 1)} }

func (c *checker) check() {
	c.n.Add(1)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checker) waitFor(t *testing.T, what string, n int64) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for c.n.Load() < n {
		select {
		case <-c.wake:
		case <-deadline:
			t.Fatalf("timed out waiting for %s (%d checks, want %d)", what, c.n.Load(), n)
		}
	}
}

// TestKubernetesSwapAndRenameAreSeen: with polling off, an atomic rename of
// the file and a Kubernetes "..data" symlink swap each lead to a check.
func TestKubernetesSwapAndRenameAreSeen(t *testing.T) {
	dir := t.TempDir()
	// The layout of a Secret volume: keys.toml -> ..data/keys.toml,
	// ..data -> ..v1.
	for _, v := range []string{"..v1", "..v2"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, v, "keys.toml"), v)
	}
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "keys.toml"), filepath.Join(dir, "keys.toml")); err != nil {
		t.Fatal(err)
	}
	c := newChecker()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Files: func() []string { return []string{filepath.Join(dir, "keys.toml")} }, Check: c.check, PollInterval: -1})
	}()
	defer func() { cancel(); <-done }()
	c.waitFor(t, "the first check", 1)

	// The swap: a new symlink renamed over ..data.
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "the check after the ..data swap", 2)
}

// TestPollAloneFindsChanges: without notifications, the poll calls Check.
func TestPollAloneFindsChanges(t *testing.T) {
	dir := t.TempDir()
	c := newChecker()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Files: func() []string { return []string{filepath.Join(dir, "f")} }, Check: c.check,
			PollInterval: 10 * time.Millisecond, DisableNotify: true})
	}()
	defer func() { cancel(); <-done }()
	c.waitFor(t, "three polls", 3)
}
