package tracetest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// bin is the scgate binary built once for every test.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scgate-tracetest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "scgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/scgate")
	build.Dir = ".." // the main module, with its own go.mod
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building scgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// The test keys: fake, in the broadcaster's format. No span may hold them.
const (
	keyTrusted = "TrcAdm01.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	keyOther   = "TrcRdr01.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
)

// proc is a running scgate subcommand whose stderr (or stdout) lines are kept.
type proc struct {
	cmd   *exec.Cmd
	done  chan struct{}
	mu    sync.Mutex
	lines []string
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	out, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = p.cmd.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// find returns the first line matching re's first group, waiting for it.
func (p *proc) find(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	waitFor(t, "a line matching "+re.String(), func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s exited:\n%s", p.cmd.Args[1], p.text())
		default:
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, l := range p.lines {
			if m = re.FindStringSubmatch(l); m != nil {
				return true
			}
		}
		return false
	})
	return m
}

func (p *proc) text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// jsonLines are the JSON log lines with msg.
func (p *proc) jsonLines(msg string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, l := range p.lines {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// standin runs the stand-in broadcaster and returns its address.
func standin(t *testing.T) string {
	p := start(t, "standin", "--listen", "127.0.0.1:0", "--key", keyTrusted, "--key", keyOther)
	return p.find(t, regexp.MustCompile(`on http://([0-9.:]+)/`))[1]
}

// gateway runs scgate with [tracing] section tracing (may be ""), callers
// from 127.0.0.1 ("trusted-svc") and 127.0.0.2 ("other-svc"), and returns
// it with its gateway and admin addresses.
func gateway(t *testing.T, upstream, tracing string) (p *proc, addr, admin string) {
	t.Helper()
	dir := t.TempDir()
	vault := `[callers]
"trusted-svc" = "admin"
"other-svc" = "reader"
[[keys.admin]]
secret = "` + keyTrusted + `"
[[keys.reader]]
secret = "` + keyOther + `"
`
	cfg := `[server]
listen = "127.0.0.1:0"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = "http://` + upstream + `"
[vault]
file = "keys.toml"
[identity]
order = ["cidr"]
[identity.cidr]
"127.0.0.1/32" = "trusted-svc"
"127.0.0.2/32" = "other-svc"
` + tracing
	for name, data := range map[string]string{"keys.toml": vault, "config.toml": cfg} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p = start(t, "run", "--config", filepath.Join(dir, "config.toml"))
	m := p.find(t, regexp.MustCompile(`"scgate is ready".*"listen":"([^"]+)","admin":"([^"]+)"`))
	return p, m[1], m[2]
}

// freeAddr is a loopback address free a moment ago, for a server that
// cannot tell which port it bound.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls cond until it holds or 20 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

func readAll(r io.Reader) string {
	b, _ := io.ReadAll(r)
	return string(b)
}
