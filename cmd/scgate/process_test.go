package main

// Helpers for tests of process behaviour (signals, exit, memory over time):
// they build the scgate binary and run it as a child process, talking to it
// only through its sockets, its signals and its log on stderr.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildScgate builds the binary into a temporary folder, with the race
// detector when the tests run with it (so a race in the process fails the
// test too: it exits 66 and prints DATA RACE).
func buildScgate(t *testing.T) string {
	t.Helper()
	return buildScgateRace(t, raceEnabled)
}

// buildScgateRace builds the binary with the race detector or without it
// (for tests that measure its memory, which the detector multiplies).
func buildScgateRace(t *testing.T, race bool) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "scgate")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, ".")...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %v (race detector: %v)", bin, time.Since(start).Round(time.Millisecond), race)
	return bin
}

// process is a running scgate.
type process struct {
	t     *testing.T
	cmd   *exec.Cmd
	base  string // http://gateway
	admin string // http://admin
	done  chan struct{}
	err   error // Wait's result, once done is closed

	mu          sync.Mutex
	lines       []map[string]any // the JSON log lines but the access log's
	raw         strings.Builder  // stderr but the access log
	accessLines int
}

// startScgate runs `scgate run --config cfg` and waits until it logs that it
// is ready; the test's end kills it if it still runs.
func startScgate(t *testing.T, bin, cfg string) *process {
	t.Helper()
	p := &process{t: t, cmd: exec.Command(bin, "run", "--config", cfg), done: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.read(stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	waitUntil(t, "scgate to be ready", func() bool {
		select {
		case <-p.done:
			t.Fatalf("scgate exited at start: %v\n%s", p.err, p.stderr())
		default:
		}
		return p.count("scgate is ready") == 1
	})
	ready := p.find("scgate is ready")
	p.base, p.admin = "http://"+ready["listen"].(string), "http://"+ready["admin"].(string)
	return p
}

func (p *process) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"msg":"request"`) {
			// Access-log lines: counted, not kept, so a long soak does not
			// pile them up in the test's memory.
			p.mu.Lock()
			p.accessLines++
			p.mu.Unlock()
			continue
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(line), &m)
		p.mu.Lock()
		p.raw.WriteString(line + "\n")
		if m != nil {
			p.lines = append(p.lines, m)
		}
		p.mu.Unlock()
	}
}

// count is how many log lines have the message msg.
func (p *process) count(msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

// find returns the first log line with the message msg.
func (p *process) find(msg string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if l["msg"] == msg {
			return l
		}
	}
	return nil
}

func (p *process) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

func (p *process) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the process to exit (at most 60 s) and checks that it
// exited 0 without a data race or a line at error level.
func (p *process) wait() {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatal("scgate did not exit within 60 s")
	}
	out := p.stderr()
	if p.err != nil || strings.Contains(out, "DATA RACE") {
		p.t.Fatalf("scgate exited with %v\n%s", p.err, out)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if l["level"] == "error" {
			p.t.Errorf("scgate logged an error: %v", l)
		}
	}
}

// refusing reports whether the gateway's listener is closed.
func (p *process) refusing() bool {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.base, "http://"), time.Second)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	c.Close()
	return false
}

// load runs workers against the gateway until stop is closed, each with its
// own keep-alive client, at most 1e6 requests each; one returns an error for
// a request that failed.
type load struct {
	mu       sync.Mutex
	sent     int
	failed   int
	failures []string
	wg       sync.WaitGroup
}

func startLoad(workers int, stop <-chan struct{}, one func(c *http.Client, w, i int) error) *load {
	l := &load{}
	for w := range workers {
		l.wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 30 * time.Second}
			defer c.CloseIdleConnections()
			for i := range 1000000 {
				select {
				case <-stop:
					return
				default:
				}
				err := one(c, w, i)
				l.mu.Lock()
				l.sent++
				if err != nil {
					l.failed++
					if len(l.failures) < 10 {
						l.failures = append(l.failures, err.Error())
					}
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// result waits for the workers and returns the counts.
func (l *load) result() (sent, failed int, failures []string) {
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.failed, l.failures
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// expect sends a request and checks its status; the body is read whole.
func expect(c *http.Client, method, url, body string, want int) error {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s %s: reading the body: %w", method, url, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d, want %d: %.200s", method, url, resp.StatusCode, want, b)
	}
	return nil
}
