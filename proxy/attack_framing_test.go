package proxy_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/tlsconf/tlstest"
)

// hidden is a request that a caller the gateway identifies (admin) hides
// after an ambiguous body: served as a request of its own, it would reach
// the broadcaster with admin's vault key, past whatever framed the
// connection by Content-Length in front of scgate.
const hidden = "DELETE /api/v2/playlists/7/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n\r\n"

var ambiguousFraming = []struct{ name, head, body string }{
	{"Content-Length and chunked", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"},
	{"chunked and Content-Length", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"},
	{"Transfer-Encoding folded", "Transfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n"},
	{"Transfer-Encoding folded, with Content-Length", "Content-Length: 5\r\nTransfer-Encoding:\r\n\tchunked\r\n", "0\r\n\r\n"},
	{"Content-Length folded", "Content-Length:\r\n 5\r\n", "0\r\n\r\n"},
	{"lower-case names", "content-length: 5\r\ntransfer-encoding: CHUNKED\r\n", "0\r\n\r\n"},
}

// exchangeOn sends raw on conn and reads every answer until the gateway
// closes the connection (or the deadline passes, which fails the test).
func exchangeOn(t *testing.T, conn net.Conn, raw string) (statuses []int, bodies []string, closed bool) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if asNetErr(err, &ne) && ne.Timeout() {
				t.Fatalf("the connection was still open 10s after %v", statuses)
			}
			return statuses, bodies, true
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		bodies = append(bodies, string(b))
		if resp.Close {
			// The server said it closes: check that it does.
			if _, err := br.ReadByte(); err == nil {
				t.Fatal("bytes after a response that announced the close")
			}
			return statuses, bodies, true
		}
	}
}

func asNetErr(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// TestAmbiguousFramingClosesTheConnection: a request whose body framing is
// ambiguous is answered once, with 400 bad_request, and the connection is
// closed: the bytes after its header block never become a request (they
// would carry admin's key), on plain HTTP and over TLS.
func TestAmbiguousFramingClosesTheConnection(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	cert, _, _ := ca.Issue(t, tlstest.LeafOptions{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	for _, useTLS := range []bool{false, true} {
		so := proxy.ServerOptions{}
		if useTLS {
			so.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
		}
		a := newAttackEnv(t, envOptions{}, so)
		dial := func(t *testing.T) net.Conn {
			if !useTLS {
				c, err := net.Dial("tcp", a.addr)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			c, err := tls.Dial("tcp", a.addr, &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}, ServerName: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		cases := append([]struct{ name, head, body string }(nil), ambiguousFraming...)
		cases = append(cases, struct{ name, head, body string }{"chunked on HTTP/1.0 with keep-alive", "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n", "0\r\n\r\n"})
		for _, c := range cases {
			name := c.name
			if useTLS {
				name = "TLS/" + name
			}
			t.Run(name, func(t *testing.T) {
				proto := "HTTP/1.1"
				if strings.Contains(c.name, "HTTP/1.0") {
					proto = "HTTP/1.0"
				}
				conn := dial(t)
				defer conn.Close()
				m := a.up.mark()
				raw := "POST /api/v2/playlists/ " + proto + "\r\nHost: gw\r\nX-Test-Caller: admin\r\n" + c.head + "\r\n" + c.body + hidden
				statuses, bodies, closed := exchangeOn(t, conn, raw)
				if len(statuses) != 1 || statuses[0] != http.StatusBadRequest || !closed {
					t.Fatalf("statuses %v (closed %v), want one 400 and the end of the connection: %q", statuses, closed, bodies)
				}
				if !strings.Contains(bodies[0], `"error":"bad_request"`) || !strings.Contains(bodies[0], "ambiguous") {
					t.Errorf("body %q, want bad_request naming the ambiguity", bodies[0])
				}
				reqs, raw2 := a.up.since(m)
				if len(reqs) != 0 {
					t.Fatalf("the upstream received %d request(s): %s %s", len(reqs), reqs[0].Method, reqs[0].Path)
				}
				if strings.Contains(raw2, "/api/v2/playlists/7/") {
					t.Fatal("the hidden request crossed the wire")
				}
			})
		}
		t.Run("clean requests keep the connection", func(t *testing.T) {
			conn := dial(t)
			defer conn.Close()
			one := "POST /api/v2/playlists/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\nContent-Length: 2\r\n\r\n{}"
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, one+one+"GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			for i := range 3 {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Close {
					t.Fatalf("answer %d: %d, close %v", i, resp.StatusCode, resp.Close)
				}
			}
		})
		t.Run("a chunked request is the last on its connection", func(t *testing.T) {
			conn := dial(t)
			defer conn.Close()
			m := a.up.mark()
			raw := "POST /api/v2/playlists/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + hidden
			statuses, _, closed := exchangeOn(t, conn, raw)
			if len(statuses) != 1 || statuses[0] != http.StatusOK || !closed {
				t.Fatalf("statuses %v (closed %v), want one 200 and the end of the connection", statuses, closed)
			}
			if reqs, _ := a.up.since(m); len(reqs) != 1 || reqs[0].Method != "POST" || string(reqs[0].Body) != "{}" {
				t.Fatalf("the upstream received %v", reqs)
			}
		})
	}
}

// TestHTTP2OverTLSStillServed: the TLS listener hands HTTP/2 connections to
// net/http's HTTP/2 server unwrapped, and callers still see their TLS state.
func TestHTTP2OverTLSStillServed(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	cert, _, _ := ca.Issue(t, tlstest.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12},
	})
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		req, _ := http.NewRequest("GET", "https://"+a.addr+"/api/v2/history/", nil)
		req.Header.Set("X-Test-Caller", "admin")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := "HTTP/1.1"
		if h2 {
			want = "HTTP/2.0"
		}
		if resp.StatusCode != http.StatusOK || resp.Proto != want {
			t.Fatalf("%s %d, want %s 200", resp.Proto, resp.StatusCode, want)
		}
	}
}
