package tracing_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault/vaulttest"
	"github.com/scgate/scgate/tracing"
)

// stuckCollector accepts connections and never reads from or answers them:
// a collector that hangs.
func stuckCollector(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// Threat: a slow collector as a denial of service. Ending spans never
// waits for it; what does not fit the queue is dropped and counted.
func TestStuckCollectorNeverHoldsASpan(t *testing.T) {
	for _, proto := range []string{tracing.ProtocolHTTP, tracing.ProtocolGRPC} {
		t.Run(proto, func(t *testing.T) {
			var dropped atomic.Int64
			p, err := tracing.New(tracing.Options{
				Endpoint: "http://" + stuckCollector(t), Protocol: proto, Insecure: true, SampleRatio: 1,
				MaxQueueSize: 8, BatchSize: 4, BatchTimeout: 10 * time.Millisecond, ExportTimeout: 300 * time.Millisecond,
				Dropped: func(_ string, n int) { dropped.Add(int64(n)) },
			})
			if err != nil {
				t.Fatal(err)
			}
			tr := p.TracerProvider().Tracer("test")
			const spans = 2000
			start := time.Now()
			for range spans {
				_, s := tr.Start(context.Background(), "request")
				s.End()
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("ending %d spans took %v with a stuck collector", spans, took)
			}
			if d := dropped.Load(); d < spans-8-4*20 {
				t.Fatalf("%d spans counted as dropped, want nearly all %d", d, spans)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_ = p.Shutdown(ctx) // bounded by ctx, whatever the collector does
		})
	}
}

func TestEndpointChecks(t *testing.T) {
	for _, c := range []struct {
		endpoint, proto string
		insecure        bool
		want            string
	}{
		{"https://c:4317", "grpc", false, ""},
		{"http://c:4318/v1/traces", "http", true, ""},
		{"http://c:4317", "grpc", false, "clear text"},
		{"https://c:4317", "grpc", true, "only for an http://"},
		{"https://u:p@c:4317", "grpc", false, "user info"},
		{"https://c:4317/x", "grpc", false, "no path"},
		{"c:4317", "grpc", false, "https://"},
		{"https://c:4317", "thrift", false, "protocol"},
	} {
		err := tracing.CheckEndpoint(c.endpoint, c.proto, c.insecure)
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s insecure=%v: %v, want %q", c.endpoint, c.proto, c.insecure, err, c.want)
		}
	}
}

// counting is a TCP listener that counts the connections it accepts.
func counting(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String(), accepted
}

// Threat: the collector as a way out. The OTEL_EXPORTER_OTLP_* variables
// of the environment cannot send spans anywhere but the configured endpoint.
func TestEnvironmentCannotRedirectSpans(t *testing.T) {
	for _, proto := range []string{tracing.ProtocolHTTP, tracing.ProtocolGRPC} {
		t.Run(proto, func(t *testing.T) {
			configured, toConfigured := counting(t)
			elsewhere, toElsewhere := counting(t)
			for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
				t.Setenv(v, "http://"+elsewhere)
			}
			p, err := tracing.New(tracing.Options{
				Endpoint: "http://" + configured, Protocol: proto, Insecure: true, SampleRatio: 1,
				BatchTimeout: 10 * time.Millisecond, ExportTimeout: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, s := p.TracerProvider().Tracer("test").Start(context.Background(), "request")
			s.End()
			vaulttest.Eventually(t, 10*time.Second, "a span at the configured endpoint", func() bool { return toConfigured.Load() > 0 })
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = p.Shutdown(ctx)
			if n := toElsewhere.Load(); n != 0 {
				t.Fatalf("%d connections to the endpoint the environment named", n)
			}
		})
	}
}
