package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy"
)

func getAs(t *testing.T, c net.Conn, br *bufio.Reader, caller string) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: "+caller+"\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// An identified connection must outlive UnidentifiedTimeout in every mode
// (the sleeps let that timeout pass; they synchronise nothing).
func TestIdentifiedConnectionOutlivesTheUnidentifiedTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond
	for _, mode := range []string{"plain", "tls-h1", "h2"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			addr := serveGateway(t, e, proxy.ServerOptions{IdleTimeout: time.Minute,
				Conns: proxy.ConnLimits{UnidentifiedTimeout: timeout}}, mode != "plain")
			if mode == "h2" {
				var dials atomic.Int64
				tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
					DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
						dials.Add(1)
						return (&net.Dialer{}).DialContext(ctx, n, a)
					}}
				defer tr.CloseIdleConnections()
				for i := range 2 {
					req, _ := http.NewRequest("GET", "https://"+addr+"/api/v2/history/", nil)
					req.Header.Set("X-Test-Caller", "admin")
					resp, err := tr.RoundTrip(req)
					if err != nil || resp.ProtoMajor != 2 {
						t.Fatalf("req %d: %v %v", i, resp, err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					time.Sleep(3 * timeout)
				}
				if dials.Load() != 1 {
					t.Fatalf("dials %d, want 1: identified h2 connection was cut", dials.Load())
				}
				return
			}
			var c net.Conn
			var err error
			if mode == "plain" {
				c, err = net.Dial("tcp", addr)
			} else {
				c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			if s := getAs(t, c, br, "admin"); s != 200 {
				t.Fatalf("first: %d", s)
			}
			time.Sleep(3 * timeout)
			if s := getAs(t, c, br, "admin"); s != 200 {
				t.Fatalf("second: %d", s)
			}
		})
	}
}

// Plain HTTP sent to the TLS port: net/http logged it, so it was counted as not_tls.
func TestPlainHTTPOnTheTLSPortIsCounted(t *testing.T) {
	e := newEnv(t, envOptions{})
	counts := &reasonCounts{n: map[string]int{}}
	addr := serveGateway(t, e, proxy.ServerOptions{OnTLSHandshakeError: counts.add}, true)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.0 400") {
		t.Errorf("answer %q, want net/http's 400", b)
	}
	waitFor(t, "the failure to be counted", 10*time.Second, func() bool { return counts.get(proxy.TLSErrorNotTLS) >= 1 })
	if n := counts.get(proxy.TLSErrorNotTLS); n != 1 {
		t.Errorf("not_tls counted %d times, want 1", n)
	}
}

func handshakeGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "(*framingListener).handshakeTLS(")
}

// Handshake goroutines are bounded by MaxConnections and cut at the handshake timeout.
func TestHungHandshakesAreBoundedByMaxConnections(t *testing.T) {
	e := newEnv(t, envOptions{})
	counts := &reasonCounts{n: map[string]int{}}
	addr := serveGateway(t, e, proxy.ServerOptions{ReadHeaderTimeout: 1500 * time.Millisecond, OnTLSHandshakeError: counts.add,
		Conns: proxy.ConnLimits{MaxConnections: 5}}, true)
	var conns []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Each newcomer past the fifth evicts the oldest connection, whose
	// handshake then ends as "closed".
	waitFor(t, "45 evicted handshakes", 10*time.Second, func() bool { return counts.get(proxy.TLSErrorClosed) >= 45 })
	n := handshakeGoroutines()
	t.Logf("handshake goroutines with 50 idle dials, max 5: %d", n)
	if n > 6 {
		t.Errorf("%d handshake goroutines, want at most 6 (5 connections, one helper)", n)
	}
	waitFor(t, "handshakes to time out", 10*time.Second, func() bool { return handshakeGoroutines() == 0 })
	for _, c := range conns {
		c.Close()
	}
	t.Logf("timeout %d closed %d", counts.get(proxy.TLSErrorTimeout), counts.get(proxy.TLSErrorClosed))
}

// A connection that carries many callers (a trusted balancer, header
// identity): one stranger's request closes it for everyone.
func TestStrangerRefusalKeepsASharedConnection(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := serveGateway(t, e, proxy.ServerOptions{IdleTimeout: time.Minute,
		Conns: proxy.ConnLimits{MaxConnections: 100}}, true)
	var dials atomic.Int64
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, n, a string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, n, a)
		}}
	defer tr.CloseIdleConnections()
	do := func(caller string) int {
		req, _ := http.NewRequest("GET", "https://"+addr+"/api/v2/history/", nil)
		req.Header.Set("X-Test-Caller", caller)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 5 {
		do("admin")
		do("stranger-" + string(rune('a'+i)))
	}
	do("admin")
	t.Logf("dials for 6 admin + 5 stranger requests over one identified h2 connection: %d", dials.Load())
	if dials.Load() != 1 {
		t.Errorf("the identified (shared) connection was closed by strangers' 403s: %d dials", dials.Load())
	}
}

// net/http half-closes (CloseWrite) before closing after a body it did not
// read; trackedConn hides *net.TCPConn's CloseWrite.
func TestRefusalBeforeCloseIsNotLostToAReset(t *testing.T) {
	for _, limits := range []bool{false, true} {
		t.Run(map[bool]string{false: "no-limits", true: "limits"}[limits], func(t *testing.T) {
			e := newEnv(t, envOptions{maxBody: 1 << 10})
			so := proxy.ServerOptions{}
			if limits {
				so.Conns = proxy.ConnLimits{MaxConnections: 100}
			}
			addr := serveGateway(t, e, so, false)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go func() {
				_, _ = io.WriteString(c, "POST /api/v2/playlists/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\nContent-Length: 10000000\r\n\r\n")
				_, _ = c.Write(make([]byte, 1<<20))
			}()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_, err = br.ReadByte()
			t.Logf("status %d; then %v", resp.StatusCode, err)
			if err != io.EOF {
				t.Errorf("got %v, want the server's FIN (io.EOF)", err)
			}
		})
	}
}
