package proxy_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/metrics"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/cache"
)

// A caller's context, as a tracing client would send it.
const (
	callerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpanID  = "00f067aa0ba902b7"
	callerParent  = "00-" + callerTraceID + "-" + callerSpanID + "-01"
)

// tracedEnv is an env whose handler traces into a span recorder with the
// SDK's own in-memory processor; sampler decides new traces.
func tracedEnv(t *testing.T, sampler sdktrace.Sampler, trusted ...string) (*env, *tracetest.SpanRecorder, *observer.ObservedLogs) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.ParentBased(sampler)))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	core, logs := observer.New(zap.InfoLevel)
	e := newEnv(t, envOptions{logger: zap.New(core), trace: proxy.TraceOptions{Provider: tp, TrustedCallers: trusted}})
	return e, rec, logs
}

// serverSpan is the one ended server span.
func serverSpan(t *testing.T, rec *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	waitFor(t, "the server span", 5*time.Second, func() bool {
		found = found[:0]
		for _, s := range rec.Ended() {
			if s.SpanKind() == trace.SpanKindServer {
				found = append(found, s)
			}
		}
		return len(found) > 0
	})
	if len(found) != 1 {
		t.Fatalf("%d server spans, want 1", len(found))
	}
	return found[0]
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

func upstreamParent(t *testing.T, h http.Header) trace.SpanContext {
	t.Helper()
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h))
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		t.Fatalf("the broadcaster got no valid traceparent: %q", h.Get("Traceparent"))
	}
	return sc
}

func TestTraceTrustedCallerContinuesItsTrace(t *testing.T) {
	e, rec, logs := tracedEnv(t, sdktrace.NeverSample(), "admin")
	hdr := http.Header{"Traceparent": {callerParent}, "Tracestate": {"vendor=abc"}, "Baggage": {"tenant=radio1"}}
	resp, body := e.do("GET", "/api/v2/playlists/", "admin", nil, hdr)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	srv := serverSpan(t, rec)
	if srv.Parent().TraceID().String() != callerTraceID || srv.Parent().SpanID().String() != callerSpanID {
		t.Fatalf("server span's parent is %v, want the caller's span", srv.Parent())
	}
	for k, want := range map[string]string{"scgate.caller": "admin", "http.route": "/api/v2/playlists/",
		"scgate.key": "admin", "scgate.key_prefix": "TestAdm1", "http.response.status_code": "200", "scgate.upstream_status": "200"} {
		if got := attr(srv, k); got != want {
			t.Errorf("attribute %s = %q, want %q", k, got, want)
		}
	}
	var client sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client = s
		}
	}
	if client == nil || client.Parent().SpanID() != srv.SpanContext().SpanID() {
		t.Fatal("no client span under the server span")
	}
	names := map[string]bool{}
	for _, ev := range client.Events() {
		names[ev.Name] = true
	}
	for _, n := range []string{"got_conn", "wrote_request", "first_byte"} {
		if !names[n] {
			t.Errorf("client span has no %s event (%v)", n, names)
		}
	}
	up := e.lastUpstream().Header
	sc := upstreamParent(t, up)
	if sc.TraceID().String() != callerTraceID || sc.SpanID() != client.SpanContext().SpanID() {
		t.Fatalf("the broadcaster's traceparent %q is not the client span's", up.Get("Traceparent"))
	}
	if up.Get("Tracestate") != "vendor=abc" || up.Get("Baggage") != "tenant=radio1" {
		t.Fatalf("tracestate %q, baggage %q not passed on", up.Get("Tracestate"), up.Get("Baggage"))
	}
	line := logs.FilterMessage("request").All()
	if len(line) != 1 || line[0].ContextMap()["trace_id"] != callerTraceID {
		t.Fatalf("the access log line has no trace_id %s: %v", callerTraceID, line)
	}
}

// Threat: a caller forging traceparent (to join or pollute another trace,
// or to force sampling with the sampled flag) and injecting tracestate or
// baggage towards the broadcaster.
func TestTraceUntrustedCallerStartsANewLinkedTrace(t *testing.T) {
	e, rec, _ := tracedEnv(t, sdktrace.NeverSample(), "admin")
	hdr := http.Header{"Traceparent": {callerParent}, "Tracestate": {"vendor=abc"}, "Baggage": {"role=admin"}}
	resp, body := e.do("GET", "/api/v2/playlists/", "reader", nil, hdr)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	up := e.lastUpstream().Header
	sc := upstreamParent(t, up)
	if sc.TraceID().String() == callerTraceID {
		t.Fatal("an untrusted caller's trace id reached the broadcaster")
	}
	if sc.IsSampled() {
		t.Fatal("an untrusted caller's sampled flag forced sampling")
	}
	if up.Get("Tracestate") != "" || up.Get("Baggage") != "" {
		t.Fatalf("an untrusted caller's tracestate %q or baggage %q reached the broadcaster", up.Get("Tracestate"), up.Get("Baggage"))
	}
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded for an unsampled trace", n)
	}

	// Sampled, the new trace links to what the caller sent.
	e, rec, _ = tracedEnv(t, sdktrace.AlwaysSample(), "admin")
	e.do("GET", "/api/v2/playlists/", "reader", nil, hdr)
	srv := serverSpan(t, rec)
	if srv.Parent().IsValid() || srv.SpanContext().TraceID().String() == callerTraceID {
		t.Fatal("the untrusted caller's span became the parent")
	}
	links := srv.Links()
	if len(links) != 1 || links[0].SpanContext.TraceID().String() != callerTraceID || links[0].SpanContext.TraceState().Len() != 0 {
		t.Fatalf("links %v, want one to the caller's context without its tracestate", links)
	}
}

// Threat: huge tracestate or baggage, to bloat every span and every request
// to the broadcaster.
func TestTraceOversizedHeadersAreDropped(t *testing.T) {
	e, rec, _ := tracedEnv(t, sdktrace.AlwaysSample(), "*")
	hdr := http.Header{
		"Traceparent": {callerParent},
		"Tracestate":  {"a=" + strings.Repeat("x", 600)},
		"Baggage":     {"b=" + strings.Repeat("y", 9000)},
	}
	resp, body := e.do("GET", "/api/v2/playlists/", "reader", nil, hdr)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	srv := serverSpan(t, rec)
	if srv.Parent().TraceID().String() != callerTraceID {
		t.Fatal("a trusted caller's parent was lost with its oversized tracestate")
	}
	up := e.lastUpstream().Header
	if up.Get("Tracestate") != "" || up.Get("Baggage") != "" {
		t.Fatalf("oversized tracestate (%d bytes) or baggage (%d bytes) reached the broadcaster", len(up.Get("Tracestate")), len(up.Get("Baggage")))
	}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceState().Len() != 0 {
			t.Fatal("a span carries the oversized tracestate")
		}
	}
}

// Threat: a secret in span data. Requests that succeed, fail over to
// another key and are refused: no attribute, event or link of any span
// holds a key.
func TestTraceSpansHoldNoSecret(t *testing.T) {
	e, rec, _ := tracedEnv(t, sdktrace.AlwaysSample(), "*")
	e.do("GET", "/api/v2/playlists/", "admin", nil, http.Header{"Sc-Api-Key": {keyReader}})
	e.do("GET", "/api/v2/playlists/", "archiver", nil, nil)
	e.do("GET", "/api/v2/playlists/", "", nil, nil)
	waitFor(t, "three server spans", 5*time.Second, func() bool { return len(rec.Ended()) >= 4 })
	for _, s := range rec.Ended() {
		var all bytes.Buffer
		all.WriteString(s.Name())
		for _, a := range s.Attributes() {
			all.WriteString(string(a.Key) + "=" + a.Value.Emit() + "\n")
		}
		for _, ev := range s.Events() {
			all.WriteString(ev.Name)
			for _, a := range ev.Attributes {
				all.WriteString(string(a.Key) + "=" + a.Value.Emit() + "\n")
			}
		}
		for _, l := range s.Links() {
			for _, a := range l.Attributes {
				all.WriteString(a.Value.Emit())
			}
		}
		for _, secret := range []string{keyAdmin, keyReader, keyExpired, "FAKEfake"} {
			if strings.Contains(all.String(), secret) {
				t.Fatalf("span %q holds a secret: %s", s.Name(), all.String())
			}
		}
	}
}

func TestTraceIDIsTheDurationExemplar(t *testing.T) {
	e, rec, _ := tracedEnv(t, sdktrace.AlwaysSample())
	e.do("GET", "/api/v2/playlists/", "admin", nil, nil)
	id := serverSpan(t, rec).SpanContext().TraceID().String()
	mfs, err := e.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, mf := range mfs {
		if mf.GetName() != "scgate_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, b := range m.GetHistogram().GetBucket() {
				found = found || hasExemplar(b.GetExemplar(), id)
			}
		}
	}
	if !found {
		t.Fatalf("no duration bucket has the exemplar trace_id=%s", id)
	}
}

func hasExemplar(ex *dto.Exemplar, id string) bool {
	for _, l := range ex.GetLabel() {
		if l.GetName() == "trace_id" && l.GetValue() == id {
			return true
		}
	}
	return false
}

// Without a provider the trace headers pass as any other header does.
func TestTraceOffPassesHeadersUnchanged(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.do("GET", "/api/v2/playlists/", "reader", nil, http.Header{"Traceparent": {callerParent}})
	if got := e.lastUpstream().Header.Get("Traceparent"); got != callerParent {
		t.Fatalf("traceparent %q, want the caller's", got)
	}
}

// A HEAD answer and a refused request end their spans too, with their
// statuses: no span is left open.
func TestTraceEveryAttemptEndsItsSpan(t *testing.T) {
	e, rec, _ := tracedEnv(t, sdktrace.AlwaysSample())
	e.do("HEAD", "/api/v2/playlists/", "admin", nil, nil)
	e.do("GET", "/api/v2/playlists/", "nobody", nil, nil)
	waitFor(t, "three ended spans", 5*time.Second, func() bool { return len(rec.Ended()) == 3 })
	if n := len(rec.Started()); n != 3 {
		t.Fatalf("%d spans started, 3 ended", n)
	}
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindServer && attr(s, "scgate.caller") == "unknown" && attr(s, "scgate.error") != "forbidden" {
			t.Fatalf("refused request's span: error %q", attr(s, "scgate.error"))
		}
	}
}

// A cached answer's span says so and has no client span under it; the
// miss that filled the cache has one in the same trace.
func TestTraceCacheHitHasNoUpstreamCall(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	m := metrics.New()
	c := newCache(t, cache.Options{Metrics: m}, map[string]time.Duration{"GET " + history: time.Minute})
	e := newEnv(t, envOptions{upstream: &upstreamCounter{}, cache: c, metrics: m, trace: proxy.TraceOptions{Provider: tp}})
	for range 2 {
		e.do("GET", history+"?limit=1&server=1", "reader", nil, nil)
	}
	waitFor(t, "three spans", 5*time.Second, func() bool { return len(rec.Ended()) == 3 })
	outcome := map[string]sdktrace.ReadOnlySpan{}
	var client sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient {
			client = s
			continue
		}
		outcome[attr(s, "scgate.cache")] = s
	}
	miss, hit := outcome["miss"], outcome["hit"]
	if miss == nil || hit == nil {
		t.Fatalf("cache outcomes %v, want a miss and a hit", outcome)
	}
	if client == nil || client.SpanContext().TraceID() != miss.SpanContext().TraceID() {
		t.Fatal("the miss's upstream call is not in its trace")
	}
	if attr(hit, "scgate.panel") == "" {
		t.Fatal("no panel attribute")
	}
}
