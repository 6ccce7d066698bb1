package h1client

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// bodyError marks a failure to read the caller's request body, as opposed
// to a failure of the connection.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return "h1client: reading the request body: " + e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// writeRequest writes req's head and body and flushes them. Host,
// Content-Length, Transfer-Encoding and Trailer in req.Header are ignored:
// framing comes from req.ContentLength and req.Body alone.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return fmt.Errorf("h1client: invalid Host %q", host)
	}
	uri := req.URL.RequestURI()
	for i := 0; i < len(uri); i++ {
		if uri[i] <= ' ' || uri[i] == 0x7f {
			return errors.New("h1client: invalid request target")
		}
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	chunked := hasBody && req.ContentLength <= 0

	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vs := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		case "User-Agent":
			if len(vs) > 0 && vs[0] == "" {
				continue // an empty User-Agent means none, as in net/http
			}
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("h1client: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("h1client: invalid value for header field %q", k)
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if req.Close && req.Header.Get("Connection") == "" {
		bw.WriteString("Connection: close\r\n")
	}
	switch {
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case hasBody:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n")
	case method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
	if hasBody {
		var err error
		if chunked {
			err = writeChunked(bw, req.Body)
		} else {
			err = writeFixed(bw, req.Body, req.ContentLength)
		}
		_ = req.Body.Close()
		if err != nil {
			return err
		}
	}
	return bw.Flush()
}

// recorder tells the body's read errors from the connection's write errors.
type recorder struct {
	r   io.Reader
	err error
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

func writeFixed(bw *bufio.Writer, body io.Reader, length int64) error {
	rec := &recorder{r: body}
	n, err := bw.ReadFrom(io.LimitReader(rec, length))
	if rec.err != nil {
		return &bodyError{rec.err}
	}
	if err != nil {
		return err
	}
	if n < length {
		return &bodyError{fmt.Errorf("the body ended after %d of its %d bytes", n, length)}
	}
	return nil
}

func writeChunked(bw *bufio.Writer, body io.Reader) error {
	var buf [4 << 10]byte
	for {
		n, err := body.Read(buf[:])
		if n > 0 {
			bw.WriteString(strconv.FormatInt(int64(n), 16))
			bw.WriteString("\r\n")
			bw.Write(buf[:n])
			if _, werr := bw.WriteString("\r\n"); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			_, werr := bw.WriteString("0\r\n\r\n")
			return werr
		}
		if err != nil {
			return &bodyError{err}
		}
	}
}
