package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/tlsconf"
)

// serveGateway runs the env's handler on a proxy.Listen server built from
// so (TLS with a self-signed certificate when withTLS) and returns its
// address.
func serveGateway(t *testing.T, e *env, so proxy.ServerOptions, withTLS bool) string {
	t.Helper()
	so.Name, so.Addr = "gateway", "127.0.0.1:0"
	if withTLS {
		cert, _, err := tlsconf.SelfSigned([]string{"127.0.0.1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		so.TLSConfig, err = tlsconf.ServerConfig(tlsconf.ServerOptions{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }})
		if err != nil {
			t.Fatal(err)
		}
	}
	srv, err := proxy.Listen(e.gateway.Config.Handler, so)
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, srv)
	return srv.Addr().String()
}

// rawConn is an HTTP/1.1 client connection from a chosen loopback address.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialFrom(t *testing.T, addr string, last byte) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, last)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// get sends GET /api/v2/history/ as caller ("" for none) and returns the
// response, or the error that ended the exchange.
func (rc *rawConn) get(caller string) (*http.Response, error) {
	req := "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\n"
	if caller != "" {
		req += "X-Test-Caller: " + caller + "\r\n"
	}
	_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(rc.c, req+"\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(rc.r, nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// closedByServer waits up to 10 s for the server to close the connection.
func (rc *rawConn) closedByServer() bool {
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := rc.r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestStrangerConnectionIsClosedAfterRefusal(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := serveGateway(t, e, proxy.ServerOptions{IdleTimeout: time.Minute}, false)
	for _, caller := range []string{"", "not-in-the-vault"} {
		rc := dialFrom(t, addr, 1)
		resp, err := rc.get(caller)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Fatalf("caller %q: %d, want 401 or 403", caller, resp.StatusCode)
		}
		if !resp.Close {
			t.Errorf("caller %q: %d without Connection: close", caller, resp.StatusCode)
		}
		if !rc.closedByServer() {
			t.Errorf("caller %q: the connection stayed open after %d", caller, resp.StatusCode)
		}
	}
	// A known caller keeps its connection.
	rc := dialFrom(t, addr, 1)
	for i := range 2 {
		resp, err := rc.get("admin")
		if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("known caller, request %d on one connection: %v %v", i, resp, err)
		}
	}
}

func TestConnLimitsPerSource(t *testing.T) {
	e := newEnv(t, envOptions{})
	var refused atomic.Int64
	addr := serveGateway(t, e, proxy.ServerOptions{Conns: proxy.ConnLimits{
		MaxPerSource: 2, OnRefused: func(r string) {
			if r == proxy.RefusedPerSource {
				refused.Add(1)
			}
		}}}, false)
	a, b := dialFrom(t, addr, 2), dialFrom(t, addr, 2)
	if !dialFrom(t, addr, 2).closedByServer() {
		t.Fatal("a third connection from one source was kept, want it closed")
	}
	if refused.Load() != 1 {
		t.Errorf("OnRefused(per_source) called %d times, want 1", refused.Load())
	}
	for i, rc := range []*rawConn{a, b, dialFrom(t, addr, 3)} {
		if resp, err := rc.get("admin"); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("connection %d within the limits: %v %v", i, resp, err)
		}
	}
	// Identified connections do not count: the source may open more.
	for i := range 2 {
		if resp, err := dialFrom(t, addr, 2).get("admin"); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("connection %d from a source whose other connections are identified: %v %v", i, resp, err)
		}
	}
}

func TestConnLimitsEvictOldestUnidentified(t *testing.T) {
	e := newEnv(t, envOptions{})
	addr := serveGateway(t, e, proxy.ServerOptions{Conns: proxy.ConnLimits{MaxConnections: 3}}, false)
	known := dialFrom(t, addr, 1)
	if resp, err := known.get("admin"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("known caller: %v %v", resp, err)
	}
	// The listener accepts in the order of connection, so these two are
	// counted before the newcomer; a full listener evicts the oldest
	// stranger for it.
	oldest, second := dialFrom(t, addr, 2), dialFrom(t, addr, 2)
	newcomer := dialFrom(t, addr, 3)
	if resp, err := newcomer.get("reader"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("newcomer on a full listener: %v %v", resp, err)
	}
	if !oldest.closedByServer() {
		t.Fatal("the oldest unidentified connection was kept, want it evicted")
	}
	if resp, err := known.get("admin"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the identified connection after the eviction: %v %v", resp, err)
	}
	// Now admin, newcomer (identified) and second are open; the next
	// newcomer evicts second, and when all are identified, one more is
	// closed at once.
	last := dialFrom(t, addr, 3)
	if resp, err := last.get("reader"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("second newcomer: %v %v", resp, err)
	}
	if !second.closedByServer() {
		t.Fatal("the second unidentified connection was kept, want it evicted")
	}
	if !dialFrom(t, addr, 4).closedByServer() {
		t.Fatal("a connection over the limit with every open one identified was kept")
	}
}

// TestUnidentifiedHTTP2ConnectionTimesOut: an HTTP/2 connection that sent
// only the preface is closed after UnidentifiedTimeout, though the idle
// timeout is far away; an identified one outlives it.
func TestUnidentifiedHTTP2ConnectionTimesOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	const timeout = 500 * time.Millisecond
	addr := serveGateway(t, e, proxy.ServerOptions{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute,
		Conns: proxy.ConnLimits{UnidentifiedTimeout: timeout}}, true)

	var dials atomic.Int64
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, a)
		}}
	defer tr.CloseIdleConnections()
	known := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/api/v2/history/", nil)
		req.Header.Set("X-Test-Caller", "admin")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Fatalf("known caller: %s %s", resp.Proto, resp.Status)
		}
	}
	known()

	// The server's clock starts when it accepts, which can be before Dial
	// returns here: start ours before dialling.
	start := time.Now()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if _, err := c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.Copy(io.Discard, c) // the server's SETTINGS, then the close
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a preface-only HTTP/2 connection was still open after 20s")
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("closed after %v, before the %v timeout", d, timeout)
	}
	known() // the identified connection, older than the stranger's, serves on
	if n := dials.Load(); n != 1 {
		t.Errorf("the identified caller dialled %d times, want its one connection kept", n)
	}
}
