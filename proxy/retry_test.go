package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy"
)

// closedAddr is a loopback address where nothing listens: dialing it is
// refused, a real connection error before any byte is written.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// flakyDialer refuses the first `fail` dials (by dialing a closed port), then
// dials for real; it counts every dial.
type flakyDialer struct {
	fail   int32
	dials  atomic.Int32
	closed string
}

func (d *flakyDialer) transport() *http.Transport {
	nd := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if n := d.dials.Add(1); n <= d.fail {
			addr = d.closed
		}
		return nd.DialContext(ctx, network, addr)
	}}
}

func TestIdempotentRequestIsRetriedOnceWhenTheConnectFails(t *testing.T) {
	for _, c := range []struct {
		name, method string
		fail         int32
		status       int
		dials        int32
	}{
		{"GET after one refused connect", "GET", 1, http.StatusOK, 2},
		{"HEAD after one refused connect", "HEAD", 1, http.StatusOK, 2},
		{"GET: at most one retry", "GET", 5, http.StatusBadGateway, 2},
		{"POST is never retried", "POST", 1, http.StatusBadGateway, 1},
		{"PUT is never retried", "PUT", 1, http.StatusBadGateway, 1},
		{"DELETE is never retried", "DELETE", 1, http.StatusBadGateway, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := &flakyDialer{fail: c.fail, closed: closedAddr(t)}
			tr := d.transport()
			defer tr.CloseIdleConnections()
			e := newEnv(t, envOptions{rt: tr})
			before := len(e.standin.Requests())
			var body io.Reader
			if c.method == "POST" || c.method == "PUT" {
				body = strings.NewReader(`{"name":"x","is_random":true,"server":1}`)
			}
			resp, _ := e.do(c.method, "/api/v2/playlists/", "admin", body, nil)
			if resp.StatusCode != c.status && !(c.status == http.StatusOK && resp.StatusCode < 300) {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
			}
			if got := d.dials.Load(); got != c.dials {
				t.Fatalf("%d connects, want %d", got, c.dials)
			}
			if c.status == http.StatusBadGateway && len(e.standin.Requests()) != before {
				t.Fatal("the failed request reached the upstream")
			}
		})
	}
}

// A POST that reached the broadcaster, whose connection then died without
// an answer, is not sent again, even with an Idempotency-Key (which would make
// Go's transport resend it on a kept-alive connection).
func TestPostIsNeverResentAfterItWasWritten(t *testing.T) {
	var mu sync.Mutex
	var posts int
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			_, _ = io.WriteString(w, "{}")
			return
		}
		mu.Lock()
		posts++
		mu.Unlock()
		// Read the request, then drop the connection without an answer.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	})
	e := newEnv(t, envOptions{upstream: up})
	for _, hdr := range []http.Header{nil, {"Idempotency-Key": {"abc"}}, {"X-Idempotency-Key": {"abc"}}} {
		// A GET first, so the POST goes on a kept-alive connection.
		if resp, _ := e.do("GET", "/api/v2/history/", "admin", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %d", resp.StatusCode)
		}
		mu.Lock()
		posts = 0
		mu.Unlock()
		resp, body := e.do("POST", "/api/v2/playlists/1/shuffle_tracks/", "admin", nil, hdr)
		checkGatewayError(t, resp, body, proxy.CodeUpstreamUnavailable, http.StatusBadGateway)
		mu.Lock()
		n := posts
		mu.Unlock()
		if n != 1 {
			t.Fatalf("headers %v: the broadcaster received the POST %d times, want once", hdr, n)
		}
	}
}
