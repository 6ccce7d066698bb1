package proxy_test

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/proxy"
)

// reasonCounts records OnTLSHandshakeError calls.
type reasonCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *reasonCounts) add(reason string) { r.mu.Lock(); r.n[reason]++; r.mu.Unlock() }
func (r *reasonCounts) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// TestTLSHandshakeErrorsAreCountedNotFlooded: every failed handshake is
// counted by reason; a peer that connects and closes without a ClientHello
// (a load balancer's TCP check) is logged at debug level only, and any other
// reason at most once per interval however many peers fail.
func TestTLSHandshakeErrorsAreCountedNotFlooded(t *testing.T) {
	e := newEnv(t, envOptions{})
	core, logs := observer.New(zapcore.DebugLevel)
	counts := &reasonCounts{n: map[string]int{}}
	addr := serveGateway(t, e, proxy.ServerOptions{Logger: zap.New(core), OnTLSHandshakeError: counts.add}, true)

	const n = 20
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "hello, this is not TLS\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c) // until the server closes
		_ = c.Close()
	}
	for range n {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}})
		if err == nil {
			_ = c.Close()
			t.Fatal("a CBC-only client completed a handshake")
		}
	}
	waitFor(t, "every failure to be counted", 10*time.Second, func() bool {
		return counts.get(proxy.TLSErrorClosed) >= n && counts.get(proxy.TLSErrorNotTLS) == n && counts.get(proxy.TLSErrorCipher) == n
	})
	warned := map[string]int{}
	for _, l := range logs.All() {
		reason, _ := l.ContextMap()["reason"].(string)
		if l.Level >= zapcore.WarnLevel {
			warned[reason]++
		}
		if l.Level > zapcore.DebugLevel && reason == proxy.TLSErrorClosed {
			t.Errorf("a connection closed before its ClientHello was logged at %v", l.Level)
		}
	}
	for _, reason := range []string{proxy.TLSErrorNotTLS, proxy.TLSErrorCipher} {
		if warned[reason] != 1 {
			t.Errorf("%d warnings for reason %q after %d failures, want 1", warned[reason], reason, n)
		}
	}
}
