package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// ServerOptions configures one listener. Zero timeouts take the defaults
// given; every server has read-header, read, write and idle limits.
type ServerOptions struct {
	// Name labels the server in logs ("gateway", "admin").
	Name string
	// Addr is the host:port to bind.
	Addr string
	// TLSConfig, when set, makes the listener speak TLS.
	TLSConfig *tls.Config
	// ReadHeaderTimeout closes connections that do not send their headers in
	// time, so slow clients cannot hold connections open (default 10s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included (default 2m).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response (default 2m).
	WriteTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections (default 2m).
	IdleTimeout time.Duration
	// MaxHeaderBytes refuses larger request headers with 431 (default 64 KiB).
	MaxHeaderBytes int
	// Logger receives the server's own errors (TLS handshakes, panics).
	Logger *zap.Logger

	// Conns bounds the connections of callers not yet identified
	// (connlimit.go); the zero value imposes no limit.
	Conns ConnLimits
	// OnTLSHandshakeError, if set, is called with the reason of every
	// failed TLS handshake (serverlimits.go), for a metric.
	OnTLSHandshakeError func(reason string)

	// MaxConnectionAge closes connections older than this after their next
	// response (HTTP/2: a graceful GOAWAY), so every caller's certificate
	// and CA are checked again by a new handshake at least this often
	// (default DefaultMaxConnectionAge; negative switches it off).
	MaxConnectionAge time.Duration
}

// Server is one bound listener with its http.Server.
type Server struct {
	name string
	srv  *http.Server
	ln   net.Listener
}

// Listen binds opts.Addr now, so that a taken port is an error at start, and
// readiness can wait for every listener to be bound.
func Listen(h http.Handler, opts ServerOptions) (*Server, error) {
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	errLog, err := zap.NewStdLogAt(logger.Named(opts.Name), zap.WarnLevel)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		// The guard and ConnContext carry each HTTP/1 request's framing
		// verdict (framing.go) to the handler, and the connection's accept
		// time and peer-verdict cache (connage.go) to the mTLS resolver.
		Handler:           framingGuard{next: limitConnectionAge(h, maxConnectionAge(opts.MaxConnectionAge))},
		ConnContext:       chainConnContext(callerConnContext, framingConnContext),
		TLSConfig:         opts.TLSConfig,
		ReadHeaderTimeout: orDefault(opts.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(opts.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDefault(opts.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(opts.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		// OPTIONS * goes to the handler, which refuses it like any request it
		// cannot forward faithfully.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     log.New(errLog.Writer(), "", 0),
	}
	if srv.MaxHeaderBytes <= 0 {
		srv.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener: %w", opts.Name, err)
	}
	// The limits wrap the plain TCP listener (they count connections before
	// any handshake); the framing listener completes TLS handshakes itself.
	ln = applyServerLimits(srv, ln, opts, logger, errLog.Writer())
	// net/http refuses header blocks larger than MaxHeaderBytes plus its
	// 4 KiB buffer; the inspector reads no more than that of one.
	ln = newFramingListener(ln, srv.MaxHeaderBytes+4096, opts.TLSConfig, srv.ReadHeaderTimeout, srv.ErrorLog)
	return &Server{name: opts.Name, srv: srv, ln: ln}, nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// serve runs until Shutdown; it never returns http.ErrServerClosed.
func (s *Server) serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", s.name, err)
	}
	return nil
}

// Close stops a server that was never run, releasing its listener.
func (s *Server) Close() error {
	err := s.srv.Close()
	_ = s.ln.Close() // a server never run does not know its listener
	return err
}

// LifecycleOptions drives Run.
type LifecycleOptions struct {
	// Gateways are drained on shutdown; Admin is stopped after them, so
	// /readyz keeps answering "draining" while they drain.
	Gateways []*Server
	Admin    *Server
	// OnDrain is called the moment shutdown starts (it makes /readyz fail).
	OnDrain func()
	// ShutdownDelay keeps serving new requests after OnDrain, while load
	// balancers and Kubernetes endpoints stop routing here.
	ShutdownDelay time.Duration
	// SkipDelay, when it is closed or receives, ends the shutdown delay
	// early (a second SIGTERM or Ctrl-C); the drain still runs.
	SkipDelay <-chan struct{}
	// ShutdownTimeout bounds the drain of in-flight requests.
	ShutdownTimeout time.Duration
	Logger          *zap.Logger
}

// Run serves until ctx is done (SIGTERM), then: OnDrain, ShutdownDelay of
// normal service, and a drain of in-flight requests up to ShutdownTimeout
// (docs/design.md, Lifecycle). It returns the first server error, if any.
func Run(ctx context.Context, o LifecycleOptions) error {
	logger := o.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	all := append([]*Server{}, o.Gateways...)
	if o.Admin != nil {
		all = append(all, o.Admin)
	}
	errc := make(chan error, len(all))
	for _, s := range all {
		go func() { errc <- s.serve() }()
	}
	var runErr error
	received := 0
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		received++
		logger.Error("a listener stopped; shutting down", zap.Error(runErr))
	}
	if o.OnDrain != nil {
		o.OnDrain()
	}
	if received == 0 && o.ShutdownDelay > 0 {
		logger.Info("draining: readiness is failing; still serving during the shutdown delay",
			zap.Duration("shutdown_delay", o.ShutdownDelay))
		t := time.NewTimer(o.ShutdownDelay)
		select {
		case <-t.C:
		case <-o.SkipDelay:
			t.Stop()
			logger.Info("draining: shutdown delay cut short")
		case runErr = <-errc:
			received++
			t.Stop()
		}
	}
	timeout := orDefault(o.ShutdownTimeout, DefaultShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, s := range o.Gateways {
		if err := s.srv.Shutdown(sctx); err != nil {
			logger.Warn("requests still in flight at the end of the shutdown timeout were cut",
				zap.String("server", s.name), zap.Error(err))
			_ = s.srv.Close()
		}
	}
	if o.Admin != nil {
		_ = o.Admin.srv.Shutdown(sctx)
	}
	// Collect the serve goroutines so none outlives Run.
	for range len(all) - received {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	return runErr
}
