package h1client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer is an upstream that answers every request head it reads with
// the same bytes, written as they are. With closeAfter it closes the
// connection after the answer.
type rawServer struct {
	ln       net.Listener
	accepted atomic.Int32
	answer   string
	close    bool
}

func newRawServer(t *testing.T, answer string, closeAfter bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, answer: answer, close: closeAfter}
	t.Cleanup(func() { _ = ln.Close() })
	go s.serve()
	return s
}

func (s *rawServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		go s.handle(c)
	}
}

func (s *rawServer) handle(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		for { // the request head; the tests send no bodies
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		if _, err := io.WriteString(c, s.answer); err != nil || s.close {
			return
		}
	}
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/x" }

func get(t *testing.T, cl *Client, method, url string) (*http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cl.RoundTrip(req)
}

const ok = "HTTP/1.1 200 OK\r\n"

// TestConformanceFraming is RFC 9112's framing through a real socket: each
// answer is accepted with exactly the body and reuse it allows, or refused.
func TestConformanceFraming(t *testing.T) {
	big := strings.Repeat("a", 7<<10)
	many := strings.Repeat("X-A: 1\r\n", 200)
	cases := []struct {
		name, answer string
		method       string // GET when empty
		close        bool   // the server closes after the answer
		headErr      error  // RoundTrip fails with it
		bodyErr      error  // reading the body fails with it
		body         string
		length       int64 // resp.ContentLength
		reuse        bool  // the connection carries a second request
		trailer      http.Header
	}{
		{name: "content-length", answer: ok + "Content-Length: 5\r\n\r\nhello", body: "hello", length: 5, reuse: true},
		{name: "content-length with OWS", answer: ok + "Content-Length:  5 \t\r\n\r\nhello", body: "hello", length: 5, reuse: true},
		{name: "content-length zero", answer: ok + "Content-Length: 0\r\n\r\n", length: 0, reuse: true},
		{name: "chunked", answer: ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", body: "hello world", length: -1, reuse: true},
		{name: "chunked, any case", answer: ok + "transfer-encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", body: "hello", length: -1, reuse: true},
		{name: "chunk extensions", answer: ok + "Transfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d\"\r\nhello\r\n0 ; last\r\n\r\n", body: "hello", length: -1, reuse: true},
		{name: "chunk size with leading zeros and upper case", answer: ok + "Transfer-Encoding: chunked\r\n\r\n000A\r\n0123456789\r\n0\r\n\r\n", body: "0123456789", length: -1, reuse: true},
		{name: "trailers", answer: ok + "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: abc\r\nContent-Length: 99\r\n\r\n", body: "ok", length: -1, reuse: true,
			trailer: http.Header{"X-Sum": {"abc"}}},
		{name: "close-delimited", answer: ok + "\r\nhello", close: true, body: "hello", length: -1},
		{name: "Connection: close", answer: ok + "Connection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok", close: true, body: "ok", length: 2},
		{name: "HTTP/1.0", answer: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", body: "ok", length: 2},
		{name: "HTTP/1.0 close-delimited", answer: "HTTP/1.0 200 OK\r\n\r\nok", close: true, body: "ok", length: -1},
		{name: "204 without body", answer: "HTTP/1.1 204 No Content\r\n\r\n", length: 0, reuse: true},
		{name: "304 with Content-Length, without body", answer: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", length: 0, reuse: true},
		{name: "HEAD with Content-Length, without body", method: "HEAD", answer: ok + "Content-Length: 1234\r\n\r\n", length: 1234, reuse: true},
		{name: "HEAD with chunked, without body", method: "HEAD", answer: ok + "Transfer-Encoding: chunked\r\n\r\n", length: -1, reuse: true},
		{name: "100 and 103 skipped", answer: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok + "Content-Length: 2\r\n\r\nok", body: "ok", length: 2, reuse: true},
		{name: "status without reason", answer: "HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok", body: "ok", length: 2, reuse: true},
		{name: "answer followed by stray bytes", answer: ok + "Content-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n", body: "ok", length: 2},

		{name: "Content-Length and chunked", answer: ok + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", headErr: ErrMalformed},
		{name: "chunked and Content-Length", answer: ok + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", headErr: ErrMalformed},
		{name: "chunked not final", answer: ok + "Transfer-Encoding: chunked, gzip\r\n\r\nhello", close: true, headErr: ErrMalformed},
		{name: "gzip, chunked", answer: ok + "Transfer-Encoding: gzip, chunked\r\n\r\n", headErr: ErrMalformed},
		{name: "two Transfer-Encoding lines", answer: ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", headErr: ErrMalformed},
		{name: "identity", answer: ok + "Transfer-Encoding: identity\r\n\r\n", headErr: ErrMalformed},
		{name: "chunked in HTTP/1.0", answer: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", headErr: ErrMalformed},
		{name: "two equal Content-Length", answer: ok + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", headErr: ErrMalformed},
		{name: "Content-Length list", answer: ok + "Content-Length: 5, 5\r\n\r\nhello", headErr: ErrMalformed},
		{name: "two different Content-Length", answer: ok + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello", headErr: ErrMalformed},
		{name: "negative Content-Length", answer: ok + "Content-Length: -1\r\n\r\n", headErr: ErrMalformed},
		{name: "signed Content-Length", answer: ok + "Content-Length: +5\r\n\r\nhello", headErr: ErrMalformed},
		{name: "overflowing Content-Length", answer: ok + "Content-Length: 99999999999999999999\r\n\r\n", headErr: ErrMalformed},
		{name: "hex Content-Length", answer: ok + "Content-Length: 0x5\r\n\r\n", headErr: ErrMalformed},
		{name: "empty Content-Length", answer: ok + "Content-Length: \r\n\r\n", headErr: ErrMalformed},
		{name: "Content-Length on a 304 still checked", answer: "HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n", headErr: ErrMalformed},
		{name: "obs-fold", answer: ok + "X-A: 1\r\n  2\r\nContent-Length: 0\r\n\r\n", headErr: ErrMalformed},
		{name: "bare LF in the head", answer: "HTTP/1.1 200 OK\nContent-Length: 0\n\n", headErr: ErrMalformed},
		{name: "bare LF in a field", answer: ok + "X-A: 1\nContent-Length: 0\r\n\r\n", headErr: ErrMalformed},
		{name: "bare CR in a field", answer: ok + "X-A: 1\rContent-Length: 9\r\nContent-Length: 0\r\n\r\n", headErr: ErrMalformed},
		{name: "NUL in a field", answer: ok + "X-A: 1\x002\r\nContent-Length: 0\r\n\r\n", headErr: ErrMalformed},
		{name: "space before the colon", answer: ok + "Content-Length : 5\r\n\r\nhello", headErr: ErrMalformed},
		{name: "no colon", answer: ok + "Content-Length 5\r\n\r\nhello", headErr: ErrMalformed},
		{name: "HTTP/2 status line", answer: "HTTP/2 200 OK\r\n\r\n", headErr: ErrMalformed},
		{name: "HTTP/1.2", answer: "HTTP/1.2 200 OK\r\n\r\n", headErr: ErrMalformed},
		{name: "four-digit status", answer: "HTTP/1.1 2000 OK\r\n\r\n", headErr: ErrMalformed},
		{name: "status below 100", answer: "HTTP/1.1 099 Odd\r\n\r\n", headErr: ErrMalformed},
		{name: "101 not asked for", answer: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", headErr: ErrMalformed},
		{name: "endless 1xx", answer: strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 20), headErr: ErrMalformed},
		{name: "a line longer than the buffer", answer: ok + "X-A: " + strings.Repeat("a", 9<<10) + "\r\n\r\n", headErr: ErrHeaderTooLarge},
		{name: "a section over the byte limit", answer: ok + strings.Repeat("X-A: "+big+"\r\n", 10) + "\r\n", headErr: ErrHeaderTooLarge},
		{name: "too many fields", answer: ok + many + "\r\n", headErr: ErrHeaderTooLarge},
		{name: "bad chunk size", answer: ok + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", length: -1, bodyErr: ErrMalformed},
		{name: "negative chunk size", answer: ok + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", length: -1, bodyErr: ErrMalformed},
		{name: "overflowing chunk size", answer: ok + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n", length: -1, bodyErr: ErrMalformed},
		{name: "chunk size then junk", answer: ok + "Transfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n", length: -1, bodyErr: ErrMalformed},
		{name: "chunk size with bare LF", answer: ok + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", length: -1, bodyErr: ErrMalformed},
		{name: "chunk data longer than its size", answer: ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n0\r\n\r\n", length: -1, bodyErr: ErrMalformed},
		{name: "obs-fold in trailers", answer: ok + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n 2\r\n\r\n", length: -1, bodyErr: ErrMalformed},
		{name: "body shorter than Content-Length", answer: ok + "Content-Length: 10\r\n\r\nhello", close: true, length: 10, bodyErr: io.ErrUnexpectedEOF},
		{name: "chunked body cut", answer: ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhel", close: true, length: -1, bodyErr: io.ErrUnexpectedEOF},
		{name: "chunked body without last chunk", answer: ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", close: true, length: -1, bodyErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newRawServer(t, tc.answer, tc.close)
			cl := New(Options{})
			defer cl.CloseIdleConnections()
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			resp, err := get(t, cl, method, s.url())
			if tc.headErr != nil {
				if !errors.Is(err, tc.headErr) {
					t.Fatalf("error %v, want %v", err, tc.headErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if tc.bodyErr != nil {
				if !errors.Is(err, tc.bodyErr) {
					t.Fatalf("body error %v, want %v", err, tc.bodyErr)
				}
				return
			}
			if err != nil || string(b) != tc.body || resp.ContentLength != tc.length {
				t.Fatalf("body %q (%v), length %d; want %q, %d", b, err, resp.ContentLength, tc.body, tc.length)
			}
			for k, v := range tc.trailer {
				if got := resp.Trailer[k]; len(got) != 1 || got[0] != v[0] {
					t.Errorf("trailer %s = %q, want %q", k, got, v)
				}
			}
			if tc.trailer != nil && resp.Trailer.Get("Content-Length") != "" {
				t.Error("a Content-Length trailer was kept")
			}
			// A second request shows whether the connection was reused.
			resp, err = get(t, cl, method, s.url())
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			want := int32(2)
			if tc.reuse {
				want = 1
			}
			if got := s.accepted.Load(); got != want {
				t.Fatalf("%d connections for two requests, want %d", got, want)
			}
		})
	}
}
