package proxy

import (
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// HTTP/2 bounds per connection. net/http's defaults allow 250 streams of up
// to 1 MiB of buffered body each per connection, and header tables of
// 4 KiB; these keep what one connection can make the process buffer well
// under a megabyte while leaving normal API traffic unaffected.
const (
	h2MaxConcurrentStreams = 100
	h2MaxReadFrameSize     = 16 << 10  // the protocol's minimum
	h2HeaderTableSize      = 4 << 10   // the protocol's default
	h2ReceiveBufferConn    = 512 << 10 // flow-control window per connection
	h2ReceiveBufferStream  = 256 << 10 // and per stream
)

// http2Limits is the HTTP/2 configuration of every scgate listener.
func http2Limits() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams:          h2MaxConcurrentStreams,
		MaxReadFrameSize:              h2MaxReadFrameSize,
		MaxDecoderHeaderTableSize:     h2HeaderTableSize,
		MaxEncoderHeaderTableSize:     h2HeaderTableSize,
		MaxReceiveBufferPerConnection: h2ReceiveBufferConn,
		MaxReceiveBufferPerStream:     h2ReceiveBufferStream,
	}
}

// Reasons of ServerOptions.OnTLSHandshakeError: a small fixed set, so that
// they can label a metric.
const (
	TLSErrorClosed     = "closed"      // the peer closed or reset before finishing (health checks, scanners)
	TLSErrorTimeout    = "timeout"     // the handshake did not finish in time
	TLSErrorNotTLS     = "not_tls"     // the first bytes were not a TLS record (plain HTTP to a TLS port)
	TLSErrorVersion    = "version"     // no TLS version in common
	TLSErrorCipher     = "cipher"      // no cipher suite or curve in common
	TLSErrorClientCert = "client_cert" // a client certificate was missing or did not verify
	TLSErrorOther      = "other"
)

// tlsErrorReasons lists every reason, for callers that pre-create labels.
var tlsErrorReasons = []string{TLSErrorClosed, TLSErrorTimeout, TLSErrorNotTLS, TLSErrorVersion,
	TLSErrorCipher, TLSErrorClientCert, TLSErrorOther}

// TLSErrorReasons returns every reason OnTLSHandshakeError can be called with.
func TLSErrorReasons() []string { return append([]string(nil), tlsErrorReasons...) }

// classifyTLSError maps crypto/tls's error text (the only form net/http
// hands it on in) to a reason.
func classifyTLSError(msg string) string {
	switch {
	case msg == "EOF" || strings.HasSuffix(msg, "EOF") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "broken pipe") || strings.Contains(msg, "use of closed network connection"):
		return TLSErrorClosed
	case strings.Contains(msg, "timeout") || strings.Contains(msg, "deadline exceeded"):
		return TLSErrorTimeout
	case strings.Contains(msg, "does not look like a TLS handshake") || strings.Contains(msg, "client sent an HTTP request"):
		return TLSErrorNotTLS
	case strings.Contains(msg, "version"):
		return TLSErrorVersion
	case strings.Contains(msg, "cipher") || strings.Contains(msg, "curve") || strings.Contains(msg, "key share"):
		return TLSErrorCipher
	case strings.Contains(msg, "certificate"):
		return TLSErrorClientCert
	}
	return TLSErrorOther
}

// tlsErrorLogInterval is how often one line per TLS handshake failure reason
// may be logged; every failure is counted.
const tlsErrorLogInterval = time.Minute

// serverErrorLog is the io.Writer behind an http.Server's ErrorLog. It takes
// the failed TLS handshakes out of the server's log lines: each is counted;
// a peer that only connected and closed (a load balancer's TCP check) is
// logged at debug level; every other reason at most once per interval, with
// the number of failures since. Any other line goes to next.
type serverErrorLog struct {
	next     io.Writer
	log      *zap.Logger
	count    func(reason string)
	interval time.Duration

	mu      sync.Mutex
	reasons map[string]*reasonLog
}

type reasonLog struct {
	every  rate.Sometimes
	missed int // failures since the last line
}

const tlsHandshakePrefix = "http: TLS handshake error from "

func (w *serverErrorLog) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	rest, ok := strings.CutPrefix(line, tlsHandshakePrefix)
	if !ok {
		return w.next.Write(p)
	}
	// rest is "ADDR: ERROR"; ADDR is host:port, IPv6 in brackets.
	peer, msg, _ := strings.Cut(rest, ": ")
	reason := classifyTLSError(msg)
	w.count(reason)
	if reason == TLSErrorClosed {
		w.log.Debug("TLS handshake failed", zap.String("reason", reason), zap.String("peer", peer), zap.String("error", msg))
		return len(p), nil
	}
	w.mu.Lock()
	r := w.reasons[reason]
	if r == nil {
		r = &reasonLog{every: rate.Sometimes{First: 1, Interval: w.interval}}
		w.reasons[reason] = r
	}
	r.missed++
	r.every.Do(func() {
		w.log.Warn("TLS handshake failed; further failures for this reason are counted in scgate_tls_handshake_errors_total and logged at most once per interval",
			zap.String("reason", reason), zap.String("peer", peer), zap.String("error", msg),
			zap.Int("failures_since_last_line", r.missed), zap.Duration("interval", w.interval))
		r.missed = 0
	})
	w.mu.Unlock()
	return len(p), nil
}

// applyServerLimits sets what bounds strangers on srv: the HTTP/2 limits,
// the failed-handshake log, and (with opts.Conns) the connection limits on
// ln, which must be the plain TCP listener. It returns the listener to serve.
func applyServerLimits(srv *http.Server, ln net.Listener, opts ServerOptions, logger *zap.Logger, errLog io.Writer) net.Listener {
	srv.HTTP2 = http2Limits()
	count := opts.OnTLSHandshakeError
	if count == nil {
		count = func(string) {}
	}
	srv.ErrorLog = log.New(&serverErrorLog{next: errLog, log: logger.Named(opts.Name), count: count,
		interval: tlsErrorLogInterval, reasons: map[string]*reasonLog{}}, "", 0)
	if !opts.Conns.active() {
		return ln
	}
	srv.ConnContext = chainConnContext(srv.ConnContext, limitConnContext)
	return newLimitListener(ln, opts.Conns)
}
