package h1client

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// scripted is a raw upstream whose handler sees each request line with its
// connection's request count.
func scripted(t *testing.T, handle func(c net.Conn, reqLine string, nth int) bool) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for nth := 1; ; nth++ {
					first := ""
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if first == "" {
							first = line
						}
						if line == "\r\n" {
							break
						}
					}
					if !handle(c, first, nth) {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &accepted
}

// TestStalePooledConnection: a pooled connection closed by the upstream
// after reading the request is retried on a new one for a GET and never for
// a POST.
func TestStalePooledConnection(t *testing.T) {
	var posts atomic.Int32
	url, _ := scripted(t, func(c net.Conn, line string, nth int) bool {
		if strings.HasPrefix(line, "POST") {
			posts.Add(1)
		}
		if nth == 2 {
			return false // read the request, then close without answering
		}
		_, _ = io.WriteString(c, ok+"Content-Length: 2\r\n\r\nok")
		return true
	})
	cl := New(Options{})
	defer cl.CloseIdleConnections()
	do := func(method string) error {
		req, _ := http.NewRequest(method, url+"/", nil)
		resp, err := cl.RoundTrip(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	if err := do("GET"); err != nil { // the first request of connection 1
		t.Fatal(err)
	}
	if err := do("GET"); err != nil { // dropped on connection 1, answered on connection 2
		t.Fatalf("the GET on a connection closed under it was not retried: %v", err)
	}
	if err := do("POST"); err == nil { // dropped on connection 2
		t.Fatal("a POST on a connection closed under it succeeded: it was sent twice")
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("the upstream saw %d POSTs, want 1", n)
	}
}

// TestUnsolicitedBytesDropTheConnection: bytes an idle connection received
// must not become the answer to the next request.
func TestUnsolicitedBytesDropTheConnection(t *testing.T) {
	wrote := make(chan struct{}, 1)
	url, accepted := scripted(t, func(c net.Conn, line string, nth int) bool {
		_, _ = io.WriteString(c, ok+"Content-Length: 5\r\n\r\nfirst")
		if nth == 1 {
			_, _ = io.WriteString(c, ok+"Content-Length: 6\r\n\r\nforged")
			wrote <- struct{}{}
		}
		return true
	})
	cl := New(Options{})
	defer cl.CloseIdleConnections()
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest("GET", url+"/", nil)
		resp, err := cl.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if string(b) != "first" {
			t.Fatalf("answer %d: %q", i, b)
		}
		if i == 0 {
			<-wrote
		}
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	url, _ := scripted(t, func(c net.Conn, line string, nth int) bool {
		_, _ = io.Copy(io.Discard, c) // never answers
		return false
	})
	cl := New(Options{ResponseHeaderTimeout: 200 * time.Millisecond})
	defer cl.CloseIdleConnections()
	req, _ := http.NewRequest("GET", url+"/", nil)
	start := time.Now()
	_, err := cl.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestCancelMidBody(t *testing.T) {
	url, _ := scripted(t, func(c net.Conn, line string, nth int) bool {
		_, _ = io.WriteString(c, ok+"Content-Length: 10\r\n\r\nab")
		_, _ = io.Copy(io.Discard, c) // then nothing
		return false
	})
	cl := New(Options{})
	defer cl.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/", nil)
	resp, err := cl.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 2)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := resp.Body.Read(buf); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read did not end with the context")
	}
}

func TestDialErrorIsADialOpError(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	_ = ln.Close()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	_, err := New(Options{}).RoundTrip(req)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("error %v, want a dial *net.OpError (the retry wrapper relies on it)", err)
	}
}

func TestTLSVerifiesWithTheGivenPoolAndName(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	get := func(o Options) (string, error) {
		cl := New(o)
		defer cl.CloseIdleConnections()
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		resp, err := cl.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get(Options{TLSConfig: tlsConfig(pool, "")}); err != nil || got != "HTTP/1.1" {
		t.Fatalf("%q %v, want HTTP/1.1", got, err)
	}
	if got, err := get(Options{TLSConfig: tlsConfig(pool, "example.com")}); err != nil || got != "HTTP/1.1" {
		t.Fatalf("with the certificate's name: %q %v", got, err)
	}
	if _, err := get(Options{TLSConfig: tlsConfig(pool, "other.example")}); err == nil {
		t.Fatal("a certificate for another name was accepted")
	}
	if _, err := get(Options{TLSConfig: tlsConfig(nil, "")}); err == nil {
		t.Fatal("a certificate from an unknown CA was accepted")
	}
}

func TestIdlePoolBoundAndTimeout(t *testing.T) {
	release := make(chan struct{})
	url, accepted := scripted(t, func(c net.Conn, line string, nth int) bool {
		if nth == 1 {
			<-release
		}
		_, _ = io.WriteString(c, ok+"Content-Length: 2\r\n\r\nok")
		return true
	})
	cl := New(Options{MaxIdlePerHost: 1, IdleConnTimeout: 300 * time.Millisecond})
	defer cl.CloseIdleConnections()
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			req, _ := http.NewRequest("GET", url+"/", nil)
			resp, err := cl.RoundTrip(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			errs <- err
		}()
	}
	waitFor(t, "three connections", func() bool { return accepted.Load() == 3 })
	close(release)
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	p := cl.pool(mustURL(t, url))
	idle := func() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.idle) }
	if n := idle(); n != 1 {
		t.Fatalf("%d idle connections, want the bound 1", n)
	}
	waitFor(t, "the idle connection to expire", func() bool { return idle() == 0 })
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func tlsConfig(pool *x509.CertPool, name string) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: name}
}
