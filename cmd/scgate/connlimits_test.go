package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

// strangerCount is how many connections the flood opens: what took an
// unbounded gateway from 33 MB to over 250 MB.
const strangerCount = 6000

// raiseFileLimit lifts the test process's open-file limit to its hard limit
// and returns it: the flood holds one descriptor per stranger here, and
// the child scgate inherits the limit.
func raiseFileLimit(t *testing.T) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	return lim.Cur
}

// rssBytes reads a process's resident set size from /proc.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// TestStrangersCannotHoldMemory: 6,000 connections from strangers (no client
// certificate, on a verify-if-given listener), half of them sending only
// the HTTP/2 preface and half one HTTP/1.1 request answered 401, from 12
// source addresses, keep the gateway's RSS under 128 MB with the default
// max_connections, while a caller with a certificate still gets answers on
// new connections.
func TestStrangersCannotHoldMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("the connection flood takes a while")
	}
	count := strangerCount
	if lim := raiseFileLimit(t); lim < uint64(count)+2000 {
		count = int(lim) - 2000
		t.Logf("open-file limit %d: flooding with %d connections instead of %d", lim, count, strangerCount)
	}
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "callers")
	clientCert, _, _ := ca.Issue(t, tlstest.LeafOptions{URIs: []string{"spiffe://test/svc"}, Client: true})
	tlstest.WriteFiles(t, dir, map[string][]byte{"ca.pem": ca.PEM})
	up := standinUpstream(t)
	cfg := writeConfigVault(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
tls = "self-signed"
self_signed_hosts = ["127.0.0.1"]
client_ca_file = %q
client_auth = "verify-if-given"
# Defaults but this one: the strangers stay until the listener is full,
# however slow the flood (the race detector in this process slows it past
# the default 10s), so that max_connections alone bounds the memory.
unidentified_timeout = "10m"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
`, filepath.Join(dir, "ca.pem"), up.URL), "spiffe://test/svc")
	p := startScgate(t, buildScgateRace(t, false), cfg)
	addr := strings.TrimPrefix(p.base, "http://")
	before := rssBytes(t, p.cmd.Process.Pid)

	caller := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{clientCert}},
		ForceAttemptHTTP2: true, DisableKeepAlives: true,
	}}
	served := func() error {
		return expect(caller, http.MethodGet, "https://"+addr+"/api/v2/history/", "", http.StatusOK)
	}
	if err := served(); err != nil {
		t.Fatalf("before the flood: %v", err)
	}

	held := flood(t, addr, count)
	defer held.close()
	t.Logf("flood: %d connections attempted, %d refused at dial or handshake", count, held.failed.Load())

	// The caller is served on new connections during the flood.
	for i := range 5 {
		if err := served(); err != nil {
			t.Fatalf("identified request %d during the flood: %v", i, err)
		}
	}
	rss := rssBytes(t, p.cmd.Process.Pid)
	t.Logf("RSS: %d MB before, %d MB with the flood held", before>>20, rss>>20)
	if rss > 128<<20 {
		t.Errorf("RSS %d MB with %d strangers connected, want under 128 MB", rss>>20, count)
	}
	metrics := scrape(t, p.admin)
	if want := `scgate_connections_refused_total{reason="max_connections"}`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics has no %s after the flood", want)
	}
}

func scrape(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// strangers are the flood's open connections.
type strangers struct {
	mu     sync.Mutex
	conns  []net.Conn
	failed atomic.Int64
}

func (s *strangers) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

// flood opens n connections from 127.0.0.2 to 127.0.0.13: even ones send
// the HTTP/2 preface and an empty SETTINGS frame, odd ones one HTTP/1.1
// request; each then stays open, idle.
func flood(t *testing.T, addr string, n int) *strangers {
	t.Helper()
	s := &strangers{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := stranger(addr, i)
				if err != nil {
					s.failed.Add(1)
					continue
				}
				s.mu.Lock()
				s.conns = append(s.conns, c)
				s.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return s
}

func stranger(addr string, i int) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%12))}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	proto := "h2"
	if i%2 == 1 {
		proto = "http/1.1"
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{proto}})
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		_ = raw.Close()
		return nil, err
	}
	if proto == "h2" {
		// The client preface and an empty SETTINGS frame.
		_, err = c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
	} else {
		_, err = c.Write([]byte("GET /api/v2/history/ HTTP/1.1\r\nHost: x\r\n\r\n"))
		if err == nil {
			_, err = http.ReadResponse(bufio.NewReader(c), nil)
		}
	}
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return raw, nil
}
