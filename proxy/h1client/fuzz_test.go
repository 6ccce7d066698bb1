package h1client

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// bytesConn is a net.Conn that reads from a byte slice, for parsing without
// a socket.
type bytesConn struct {
	net.Conn // nil: only the methods below are used
	r        io.Reader
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

// parse reads data as the answer to a request of method, as RoundTrip
// would, and returns the head, the body read whole, and the first error.
func parse(data []byte, method string) (*head, []byte, http.Header, error) {
	cl := New(Options{})
	c := &conn{Conn: &bytesConn{r: bytes.NewReader(data)}}
	c.br = bufio.NewReaderSize(c.Conn, bufferSize)
	h, err := readHead(c.br, method, cl.limits, &c.scratch, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	ex := &exchange{cl: cl, c: c, ctx: context.Background()}
	req, _ := http.NewRequest(method, "http://upstream.test/", nil)
	resp := ex.response(req, h)
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(len(data))+1))
	return h, b, resp.Trailer, err
}

// FuzzResponse checks the response parser against its own invariants and,
// for every answer it accepts, against net/http's reading of the same bytes.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		ok + "Content-Length: 5\r\n\r\nhello",
		ok + "Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
		ok + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok + "Content-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nclose-delimited",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		ok + "X-A: 1\r\n 2\r\n\r\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		h, body, trailer, err := parse(data, method)
		if h == nil {
			return // refused
		}
		if h.status < 200 || h.status > 999 {
			t.Fatalf("final status %d", h.status)
		}
		_, te := h.header["Transfer-Encoding"]
		if cl, ok := h.header["Content-Length"]; ok && (te || len(cl) != 1) {
			t.Fatalf("accepted framing %q", h.header)
		}
		for k, vs := range h.header {
			if !validName(k) {
				t.Fatalf("field name %q", k)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("field %s value %q", k, v)
				}
			}
		}
		if err != nil || bytes.HasPrefix(data, []byte("HTTP/1.1 1")) || bytes.HasPrefix(data, []byte("HTTP/1.0 1")) {
			return // the oracle below reads one answer, 1xx included
		}
		req, _ := http.NewRequest(method, "http://upstream.test/", nil)
		want, werr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req)
		if werr != nil {
			t.Fatalf("accepted what net/http refuses (%v): %q", werr, data)
		}
		wb, werr := io.ReadAll(want.Body)
		if werr != nil {
			t.Fatalf("read a body net/http cannot read (%v): %q", werr, data)
		}
		if want.StatusCode != h.status || !bytes.Equal(wb, body) {
			t.Fatalf("status %d body %q; net/http: %d %q", h.status, body, want.StatusCode, wb)
		}
		for k := range trailer {
			if want.Trailer.Get(k) != trailer.Get(k) {
				t.Fatalf("trailer %s: %q; net/http: %q", k, trailer.Get(k), want.Trailer.Get(k))
			}
		}
	})
}
