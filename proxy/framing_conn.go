package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// framingConn is an HTTP/1 connection whose requests' framing is inspected
// as the server reads them (framing.go).
type framingConn struct {
	net.Conn
	mu      sync.Mutex // the server's reads and its handler's next() may run at once
	in      *inspector
	stopped bool
	// current is the verdict of the request being served. HTTP/1 serves one
	// request at a time per connection, and only the server's goroutine for
	// it (the guard, then the handler) touches it.
	current framingVerdict
}

func newFramingConn(c net.Conn, limit int) *framingConn {
	return &framingConn{Conn: c, in: newInspector(limit)}
}

func (c *framingConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	stopped := c.stopped
	c.mu.Unlock()
	if stopped {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	pass := c.in.feed(p[:n])
	if pass < n {
		// The rest follows a refused request: it is never read as a request.
		c.stopped = true
		return pass, nil
	}
	return n, err
}

// CloseWrite lets net/http half-close before closing, as it does on a bare
// TCP or TLS connection, so that a refusal is not lost to a reset.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *framingConn) next() framingVerdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.in.next()
}

// tlsFramingConn is a framingConn over a TLS connection whose handshake is
// done; net/http takes Request.TLS from ConnectionState.
type tlsFramingConn struct {
	*framingConn
	tls *tls.Conn
}

func (c tlsFramingConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// framingListener wraps every accepted connection in a framingConn. With a
// TLS config it completes the handshake first (off the accept loop), since
// only a *tls.Conn that negotiated HTTP/2 may go to net/http's HTTP/2
// server; HTTP/2 frames every request itself and needs no inspection.
type framingListener struct {
	net.Listener
	limit     int
	tlsConfig *tls.Config
	handshake time.Duration // bounds a TLS handshake
	errLog    *log.Logger

	start  sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	conns  chan net.Conn
	errc   chan error
	wg     sync.WaitGroup
}

func newFramingListener(ln net.Listener, limit int, cfg *tls.Config, handshake time.Duration, errLog *log.Logger) *framingListener {
	ctx, cancel := context.WithCancel(context.Background())
	return &framingListener{Listener: ln, limit: limit, tlsConfig: cfg, handshake: handshake, errLog: errLog,
		ctx: ctx, cancel: cancel, conns: make(chan net.Conn), errc: make(chan error, 1)}
}

func (l *framingListener) Accept() (net.Conn, error) {
	if l.tlsConfig == nil {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		return newFramingConn(c, l.limit), nil
	}
	l.start.Do(func() { l.wg.Go(l.acceptTLS) })
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		l.errc <- err // every later Accept fails the same way
		return nil, err
	}
}

// acceptTLS accepts connections and handshakes each on its own goroutine,
// so that a slow handshake never holds up the others.
func (l *framingListener) acceptTLS() {
	var delay time.Duration
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				l.errc <- err
				return
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http's own accept loop does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.errLog.Printf("http: Accept error: %v; retrying in %v", err, delay)
			select {
			case <-time.After(delay):
			case <-l.ctx.Done():
			}
			continue
		}
		delay = 0
		l.wg.Go(func() { l.handshakeTLS(raw) })
	}
}

func (l *framingListener) handshakeTLS(raw net.Conn) {
	tc := tls.Server(raw, l.tlsConfig)
	ctx, cancel := context.WithTimeout(l.ctx, l.handshake)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			// As net/http does: a plain HTTP request on the TLS port.
			_ = re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		} else if l.ctx.Err() == nil {
			l.errLog.Printf("http: TLS handshake error from %s: %v", raw.RemoteAddr(), err)
		}
		_ = raw.Close()
		return
	}
	var c net.Conn = tc
	if p := tc.ConnectionState().NegotiatedProtocol; p == "" || p == "http/1.1" || p == "http/1.0" {
		c = tlsFramingConn{newFramingConn(tc, l.limit), tc}
	}
	select {
	case l.conns <- c:
	case <-l.ctx.Done():
		_ = c.Close()
	}
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// Close stops accepting and waits for the handshakes under way, which it
// cuts short.
func (l *framingListener) Close() error {
	l.cancel()
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

type framingKey struct{}

// framingConnContext remembers the inspected connection in each request's
// context.
func framingConnContext(ctx context.Context, c net.Conn) context.Context {
	switch fc := c.(type) {
	case *framingConn:
		return context.WithValue(ctx, framingKey{}, fc)
	case tlsFramingConn:
		return context.WithValue(ctx, framingKey{}, fc.framingConn)
	}
	return ctx
}

// framingGuard takes each HTTP/1 request's framing verdict in the order
// the server serves them, closes the connection after a request the
// inspector did not follow to its end, and leaves the verdict in the
// request's context for the handler (the gateway refuses such requests).
type framingGuard struct{ next http.Handler }

func (g framingGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fc, _ := r.Context().Value(framingKey{}).(*framingConn)
	if fc == nil || r.ProtoMajor != 1 {
		g.next.ServeHTTP(w, r)
		return
	}
	fc.current = fc.next()
	if fc.current.kind != framingClean {
		w.Header().Set("Connection", "close")
	}
	g.next.ServeHTTP(w, r)
}

// checkFraming refuses a request the framing guard found ambiguous or did
// not inspect. Requests served without the guard (no inspected connection,
// or HTTP/2) pass: the Handler may be mounted on a server scgate did not
// build.
func checkFraming(r *http.Request) *gatewayError {
	fc, _ := r.Context().Value(framingKey{}).(*framingConn)
	if fc == nil || r.ProtoMajor != 1 {
		return nil
	}
	v := fc.current
	if v.kind == framingClean || v.kind == framingLast {
		return nil
	}
	e := newError(CodeBadRequest, http.StatusBadRequest,
		"the request's framing is ambiguous ("+v.reason+"); send one Content-Length or Transfer-Encoding: chunked (HTTP/1.1 only), unfolded", nil)
	e.close = true
	return e
}

// unwrapConn returns the connection beneath the framing and TLS layers the
// server's listeners add: the one the connection limits track.
func unwrapConn(c net.Conn) net.Conn {
	for {
		switch w := c.(type) {
		case tlsFramingConn:
			c = w.tls
		case *framingConn:
			c = w.Conn
		case *tls.Conn:
			c = w.NetConn()
		default:
			return c
		}
	}
}

// chainConnContext runs the http.Server ConnContext functions in order.
func chainConnContext(fs ...func(context.Context, net.Conn) context.Context) func(context.Context, net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		for _, f := range fs {
			if f != nil {
				ctx = f(ctx, c)
			}
		}
		return ctx
	}
}
