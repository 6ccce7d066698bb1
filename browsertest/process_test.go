package browsertest

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// findChromium returns the path of a Chromium (or Chrome) binary. The test
// fails without one: .ci/run installs Debian's chromium package.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SCGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium binary: install the Debian package chromium (apt-get install chromium), or set SCGATE_CHROMIUM")
	return ""
}

// buildScgate builds the scgate binary of the enclosing module.
func buildScgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "scgate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/scgate")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/scgate: %v\n%s", err, out)
	}
	return bin
}

// process is a running scgate command whose output is kept and can be
// waited on.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	more chan struct{} // closed and replaced at every new line
	done chan struct{}
}

func start(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), more: make(chan struct{}), done: make(chan struct{})}
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		_ = w.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of scgate %s:\n%s", args[0], p.output())
		}
	})
	return p
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor returns the first submatch of re in the output, waiting for it
// until timeout.
func (p *process) waitFor(t *testing.T, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		p.mu.Lock()
		m := re.FindStringSubmatch(p.out.String())
		more := p.more
		p.mu.Unlock()
		if m != nil {
			return m[1]
		}
		select {
		case <-more:
		case <-p.done:
			t.Fatalf("the process ended before printing %s:\n%s", re, p.output())
		case <-ctx.Done():
			t.Fatalf("no %s within %v:\n%s", re, timeout, p.output())
		}
	}
}
