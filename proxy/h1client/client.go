package h1client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of Options' zero values.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdlePerHost        = 512
	DefaultMaxHeaderBytes        = 64 << 10
	DefaultMaxHeaderFields       = 128
	// bufferSize is each connection's read and write buffer; it also bounds
	// one header line.
	bufferSize = 8 << 10
)

// Options configures a Client. Zero values take the defaults above.
type Options struct {
	// TLSConfig is used (cloned) for https URLs; nil means a zero
	// tls.Config. Its ServerName, when empty, becomes the URL's host, and its
	// NextProtos is always replaced by "http/1.1".
	TLSConfig *tls.Config
	// DialTimeout bounds a TCP connect.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response head once the
	// request is written.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes pooled connections unused this long.
	IdleConnTimeout time.Duration
	// MaxIdlePerHost bounds the idle pool of each host.
	MaxIdlePerHost int
	// MaxHeaderBytes bounds a response's header section (1xx heads included)
	// and, separately, its trailer section.
	MaxHeaderBytes int
	// MaxHeaderFields bounds the number of fields of either section.
	MaxHeaderFields int
}

// Client is an http.RoundTripper speaking HTTP/1.1 on the caller's goroutine.
// It is safe for concurrent use.
type Client struct {
	opts   Options
	dialer net.Dialer
	limits limits

	mu    sync.Mutex
	pools map[string]*pool // by "scheme://host:port"
}

// New returns a Client.
func New(o Options) *Client {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.DialTimeout, DefaultDialTimeout)
	def(&o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	def(&o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	def(&o.IdleConnTimeout, DefaultIdleConnTimeout)
	if o.MaxIdlePerHost <= 0 {
		o.MaxIdlePerHost = DefaultMaxIdlePerHost
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxHeaderFields <= 0 {
		o.MaxHeaderFields = DefaultMaxHeaderFields
	}
	if o.TLSConfig == nil {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &Client{
		opts:   o,
		dialer: net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second},
		limits: limits{maxBytes: o.MaxHeaderBytes, maxFields: o.MaxHeaderFields},
		pools:  map[string]*pool{},
	}
}

// conn is one connection to a host with its buffers.
type conn struct {
	net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	p       *pool
	idleAt  time.Time
	timer   *time.Timer // closes the connection once idle too long
	scratch []byte      // header parsing
}

// exchange is one request/response on a connection.
type exchange struct {
	cl       *Client
	c        *conn
	stop     func() bool // stops the context watcher
	reuse    bool        // neither side asked to close
	ctx      context.Context
	released bool
}

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

// RoundTrip sends req and returns the response head; the body is read from
// the connection as the caller reads resp.Body.
func (cl *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := cl.roundTrip(req)
	if err != nil && req.Body != nil {
		_ = req.Body.Close()
	}
	return resp, err
}

func (cl *Client) roundTrip(req *http.Request) (*http.Response, error) {
	if err := checkRequest(req); err != nil {
		return nil, err
	}
	ctx := req.Context()
	p := cl.pool(req.URL)
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		ex := &exchange{cl: cl, c: c, ctx: ctx, reuse: !req.Close}
		ex.watch()
		resp, sent, err := ex.do(req)
		if err == nil {
			return resp, nil
		}
		ex.finish(false)
		// A pooled connection the server closed before it read anything:
		// try once more on a fresh one when resending is safe.
		if reused && !sent && attempt == 0 && replayable(req) && ctx.Err() == nil {
			if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
				body, gerr := req.GetBody()
				if gerr != nil {
					return nil, err
				}
				req = req.Clone(ctx)
				req.Body = body
			}
			p.discardIdle()
			continue
		}
		return nil, err
	}
}

// replayable: idempotent by method, as net/http decides it for a request
// that failed on a reused connection.
func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	}
	return false
}

// watch makes the connection's blocked reads and writes return when the
// request's context ends.
func (ex *exchange) watch() {
	if ex.ctx.Done() == nil {
		return
	}
	c := ex.c
	ex.stop = context.AfterFunc(ex.ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
}

// wrap returns the context's error in place of the deadline error that
// the context's end caused.
func (ex *exchange) wrap(err error) error {
	if cerr := ex.ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}

// do writes req and reads the response head. sent reports whether any
// response byte arrived (after which nothing may be resent).
func (ex *exchange) do(req *http.Request) (resp *http.Response, sent bool, err error) {
	c := ex.c
	werr := writeRequest(c.bw, req)
	var be *bodyError
	if werr != nil && (errors.As(werr, &be) || !isConnError(werr)) {
		return nil, true, werr // the caller's body or request failed: nothing more to do
	}
	if err := c.SetReadDeadline(time.Now().Add(ex.cl.opts.ResponseHeaderTimeout)); err != nil {
		return nil, false, err
	}
	var interim func(int, http.Header) error
	if trace := httptrace.ContextClientTrace(ex.ctx); trace != nil && trace.Got1xxResponse != nil {
		// As net/http does: ReverseProxy forwards them to its caller.
		interim = func(code int, h http.Header) error { return trace.Got1xxResponse(code, textproto.MIMEHeader(h)) }
	}
	h, err := readHead(c.br, req.Method, ex.cl.limits, &c.scratch, interim)
	if err != nil {
		if werr != nil {
			return nil, false, ex.wrap(werr)
		}
		// Only a connection closed or reset before any answer may be
		// retried; a timeout or a malformed answer may not.
		got := c.br.Buffered() > 0 || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET)
		return nil, got, ex.wrap(err)
	}
	if werr != nil {
		h.close = true // answered before the request was complete
	}
	_ = c.SetReadDeadline(time.Time{})
	ex.reuse = ex.reuse && !h.close
	return ex.response(req, h), true, nil
}

// isConnError reports whether err is the connection's (and not the request's).
func isConnError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

func (ex *exchange) response(req *http.Request, h *head) *http.Response {
	resp := &http.Response{
		Status:     h.statusLine,
		StatusCode: h.status,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: h.minor,
		Header:     h.header,
		Request:    req,
		Close:      !ex.reuse,
	}
	if h.minor == 0 {
		resp.Proto = "HTTP/1.0"
	}
	b := &body{ex: ex, framing: h.framing}
	switch h.framing {
	case framingNone:
		resp.ContentLength = 0
		if req.Method == http.MethodHead {
			resp.ContentLength = -1
			if cl, ok := h.header["Content-Length"]; ok {
				resp.ContentLength, _ = parseLength(cl[0]) // validated by frame
			}
		}
		resp.Body = http.NoBody
		b.release(true)
		return resp
	case framingLength:
		resp.ContentLength, b.remaining = h.length, h.length
		if h.length == 0 {
			resp.Body = http.NoBody
			b.release(true)
			return resp
		}
	case framingChunked:
		resp.ContentLength = -1
		resp.TransferEncoding = []string{"chunked"}
		delete(h.header, "Transfer-Encoding")
		if names, ok := h.header["Trailer"]; ok {
			resp.Trailer = http.Header{}
			for _, n := range names {
				for _, t := range splitList(n) {
					resp.Trailer[canonical(t)] = nil
				}
			}
			delete(h.header, "Trailer")
		}
		b.trailer = resp.Trailer
	case framingClose:
		resp.ContentLength = -1
	}
	resp.Body = b
	return resp
}

// finish ends the exchange: the connection goes back to the pool or is closed.
func (ex *exchange) finish(reuse bool) {
	if ex.released {
		return
	}
	ex.released = true
	if ex.stop != nil && !ex.stop() {
		reuse = false // the context ended: the deadline is set
	}
	if reuse && ex.reuse && ex.c.br.Buffered() == 0 {
		ex.c.p.put(ex.c)
		return
	}
	_ = ex.c.Close()
}

// CloseIdleConnections closes every pooled connection.
func (cl *Client) CloseIdleConnections() {
	cl.mu.Lock()
	pools := make([]*pool, 0, len(cl.pools))
	for _, p := range cl.pools {
		pools = append(pools, p)
	}
	cl.mu.Unlock()
	for _, p := range pools {
		p.discardIdle()
	}
}

// pool returns the idle pool of u's scheme and host, making it on first use.
func (cl *Client) pool(u *url.URL) *pool {
	key := u.Scheme + "://" + u.Host
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if p, ok := cl.pools[key]; ok {
		return p
	}
	p := &pool{cl: cl, addr: hostPort(u.Scheme, u.Host)}
	if u.Scheme == "https" {
		cfg := cl.opts.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		p.tls = cfg
	}
	cl.pools[key] = p
	return p
}

// checkRequest refuses what cannot be written as a well-formed request.
func checkRequest(req *http.Request) error {
	switch {
	case req.URL == nil:
		return errors.New("h1client: nil request URL")
	case req.URL.Scheme != "http" && req.URL.Scheme != "https":
		return fmt.Errorf("h1client: unsupported scheme %q", req.URL.Scheme)
	case req.URL.Host == "":
		return errors.New("h1client: no host in request URL")
	case req.Method != "" && !validName(req.Method):
		return fmt.Errorf("h1client: invalid method %q", req.Method)
	}
	return nil
}

// hostPort returns u's host with the scheme's default port when it has none.
func hostPort(scheme, host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if scheme == "https" {
		return net.JoinHostPort(host, "443")
	}
	return net.JoinHostPort(host, "80")
}

// splitList splits a comma-separated field value into its trimmed,
// non-empty elements.
func splitList(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.Trim(t, " \t"); t != "" {
			out = append(out, t)
		}
	}
	return out
}
