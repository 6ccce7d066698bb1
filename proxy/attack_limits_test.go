package proxy_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy"
)

// TestAttackOversizedHeaders: headers past max_header_bytes get 431 from the
// HTTP server, before the handler, so nothing reaches the upstream. (Go reads
// up to 4 KiB past the limit before it refuses; the cases are well over it.)
// cmd/scgate's TestHeaderLimitAndSIGHUP covers the configured limit end to end.
func TestAttackOversizedHeaders(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{MaxHeaderBytes: 4096})
	head := "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n"
	var many strings.Builder
	for i := range 400 {
		many.WriteString("X-H" + strconv.Itoa(i) + ": " + strings.Repeat("v", 30) + "\r\n")
	}
	for _, c := range []struct {
		name, raw string
		status    int
	}{
		{"one huge header", head + "X-Big: " + strings.Repeat("x", 32<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"many small headers", head + many.String() + "\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"a huge request line", "GET /api/v2/history/?q=" + strings.Repeat("a", 32<<10) + " HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"under the limit", head + "X-Fine: " + strings.Repeat("x", 2048) + "\r\n\r\n", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := a.up.mark()
			x := rawExchange(t, a.addr, c.raw, 1)
			if got := x.statuses(); len(got) != 1 || got[0] != c.status {
				t.Fatalf("statuses %v (%v), want %d", got, x.err, c.status)
			}
			reqs, _ := a.up.since(m)
			if want := map[bool]int{true: 1, false: 0}[c.status == http.StatusOK]; len(reqs) != want {
				t.Fatalf("the upstream received %d requests, want %d", len(reqs), want)
			}
		})
	}
}

// TestAttackOversizedBody: a body over max_body_bytes gets 413
// payload_too_large whether or not it announced its length. A small body is
// buffered for a key failover and refused before anything is sent; a large
// one streams, so the upstream may see its beginning, but never a complete
// request: its read of the body fails.
func TestAttackOversizedBody(t *testing.T) {
	const limit = 1024
	for _, c := range []struct {
		name       string
		replayBody int64
		size       int
		chunked    bool
		status     int
	}{
		{"announced length over the limit", 0, 4 * limit, false, http.StatusRequestEntityTooLarge},
		{"chunked over the limit, buffered for failover", 0, 4 * limit, true, http.StatusRequestEntityTooLarge},
		{"chunked over the limit, streamed", -1, 64 * limit, true, http.StatusRequestEntityTooLarge},
		{"chunked, exactly the limit", -1, limit, true, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newAttackEnv(t, envOptions{maxBody: limit, replayBody: c.replayBody}, proxy.ServerOptions{})
			body := strings.Repeat("b", c.size)
			raw := "POST /api/v2/playlists/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n"
			if c.chunked {
				raw += "Transfer-Encoding: chunked\r\n\r\n"
				for i := 0; i < len(body); i += 512 {
					raw += "200\r\n" + body[i:i+512] + "\r\n"
				}
				raw += "0\r\n\r\n"
			} else {
				raw += "Content-Length: " + strconv.Itoa(c.size) + "\r\n\r\n" + body
			}
			x := rawExchange(t, a.addr, raw, 1)
			if got := x.statuses(); len(got) != 1 || got[0] != c.status {
				t.Fatalf("statuses %v (%v) %q, want %d", got, x.err, x.bodies, c.status)
			}
			if c.status != http.StatusOK {
				checkGatewayError(t, x.resps[0], x.bodies[0], proxy.CodePayloadTooLarge, c.status)
			}
			for _, r := range a.up.requests() {
				complete := r.BodyErr == nil && len(r.Body) == c.size
				if complete != (c.status == http.StatusOK) {
					t.Fatalf("the upstream read %d bytes (err %v) of a %d-byte body", len(r.Body), r.BodyErr, c.size)
				}
			}
		})
	}
}

// TestAttackSlowloris: a caller that sends its headers a byte at a time is
// cut off at the read-header timeout without an answer, nothing reaches the
// upstream, and other callers are served meanwhile.
func TestAttackSlowloris(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{ReadHeaderTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n"); err != nil {
		t.Fatal(err)
	}
	// Trickle a header that never ends: at most 200 bytes, 20 ms apart
	// (4 s, far past the timeout), until the gateway hangs up.
	trickleDone := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range 200 {
			select {
			case <-stop:
				trickleDone <- nil
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte("x")); err != nil {
				trickleDone <- err
				return
			}
		}
		trickleDone <- errors.New("the gateway kept the connection open for 200 header bytes over 4 s")
	}()

	// Meanwhile an honest caller is served.
	resp, body := a.do("GET", "/api/v2/history/", "reader", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("honest caller during the attack: %d %s", resp.StatusCode, body)
	}
	m := a.up.mark()

	got, err := io.ReadAll(conn) // returns when the gateway closes the connection
	close(stop)
	if terr := <-trickleDone; terr != nil && !isConnClosed(terr) {
		t.Fatal(terr)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the gateway did not close the slow connection within 10 s")
	}
	// Go's server answers a request line it could not finish with a bare
	// 400 from the HTTP layer (not the handler), or closes without a word.
	if len(got) != 0 && !strings.HasPrefix(string(got), "HTTP/1.1 400 Bad Request\r\n") {
		t.Fatalf("the slow caller got an answer: %q", got)
	}
	if reqs, _ := a.up.since(m); len(reqs) != 0 {
		t.Fatalf("the upstream received %d requests", len(reqs))
	}
}

func isConnClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "broken pipe") ||
		strings.Contains(err.Error(), "connection reset")
}

// TestAttackSlowBody: headers arrive at once, the body a byte at a time. The
// read timeout ends the request; the upstream never gets a complete body, and
// the caller gets a closed connection, not a success.
func TestAttackSlowBody(t *testing.T) {
	a := newAttackEnv(t, envOptions{replayBody: -1}, proxy.ServerOptions{ReadTimeout: 500 * time.Millisecond})
	conn, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	const size = 200
	if _, err := io.WriteString(conn, "POST /api/v2/playlists/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n"+
		"Content-Length: "+strconv.Itoa(size)+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	trickleDone := make(chan struct{})
	go func() {
		defer close(trickleDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range size {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte("b")); err != nil {
				return
			}
		}
	}()
	got, err := io.ReadAll(conn)
	close(stop)
	<-trickleDone
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the gateway did not end the slow request within 10 s")
	}
	// The request was never read whole, so there is nothing to answer: the
	// connection is closed, never answered with a success (regression: the
	// server's default empty 200 when the handler wrote nothing).
	if len(got) != 0 {
		t.Fatalf("the slow caller got an answer: %q", got)
	}
	for _, r := range a.up.requests() {
		if r.BodyErr == nil && len(r.Body) == size {
			t.Fatal("the upstream received the complete slow body")
		}
	}
}
