package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Tracing (docs/tracing.md). A request gets a server span, started once
// its caller is identified (with the request's start as its start time),
// and each call to the broadcaster a client span under it. The W3C
// traceparent and tracestate a caller sends continue its trace only when
// the caller is trusted for it (TraceOptions); any other caller's request
// starts a new trace, linked to the context it sent. The broadcaster gets
// scgate's own traceparent, and the trusted caller's tracestate and
// baggage; an untrusted caller's go nowhere. Baggage is forwarded, never
// read into a span.

// TraceOptions configures tracing in Options.
type TraceOptions struct {
	// Provider starts the spans; nil traces nothing, and the trace headers
	// pass through like any other header.
	Provider trace.TracerProvider
	// TrustedCallers are the caller identities whose traceparent,
	// tracestate and baggage are honoured; "*" is every caller in the vault.
	TrustedCallers []string
	// TrustProxies also honours them from a peer in Options.TrustedProxies
	// (an ingress or mesh proxy that traces), whoever the caller.
	TrustProxies bool
}

// Bounds on what a caller's trace headers may hold, past which they are
// dropped whole (W3C Trace Context and Baggage give the same limits).
const (
	maxTraceStateBytes = 512
	maxBaggageBytes    = 8192
)

// The names of the trace headers, as Header.Get canonicalises them.
const (
	hdrTraceparent = "Traceparent"
	hdrTracestate  = "Tracestate"
	hdrBaggage     = "Baggage"
)

// tracer is the handler's view of TraceOptions; a nil *tracer traces nothing.
type tracer struct {
	t        trace.Tracer
	trustAll bool
	trusted  map[string]bool
	proxies  bool
	traceCtx propagation.TraceContext
}

func newTracer(o TraceOptions) *tracer {
	if o.Provider == nil {
		return nil
	}
	t := &tracer{
		t:       o.Provider.Tracer("github.com/scgate/scgate/proxy"),
		trusted: make(map[string]bool, len(o.TrustedCallers)),
		proxies: o.TrustProxies,
	}
	for _, c := range o.TrustedCallers {
		if c == "*" {
			t.trustAll = true
		}
		t.trusted[c] = true
	}
	return t
}

// traceState is what a request carries for tracing.
type traceState struct {
	span    trace.Span
	ctx     context.Context // the request's context with span in it
	baggage string          // the trusted caller's baggage, validated, to forward
	trusted bool
}

// trusts says whether r's trace headers continue its caller's trace.
func (h *Handler) trusts(r *http.Request, st *state) bool {
	t := h.tracer
	if t.proxies && h.strip.proxies.Trusts(r) {
		return true
	}
	return st.known && (t.trustAll || t.trusted[st.caller])
}

// startSpan starts the request's server span, once: after identification,
// or, for a request refused before, when it is observed. It returns the
// context for the rest of the request.
func (h *Handler) startSpan(r *http.Request, st *state) context.Context {
	if h.tracer == nil {
		return r.Context()
	}
	if st.trace.span != nil {
		return st.trace.ctx
	}
	carrier := propagation.HeaderCarrier(r.Header)
	if len(r.Header.Get(hdrTracestate)) > maxTraceStateBytes {
		// Too long to be honest: the parent is taken without it.
		r.Header.Del(hdrTracestate)
	}
	remote := trace.SpanContextFromContext(h.tracer.traceCtx.Extract(context.Background(), carrier))
	opts := make([]trace.SpanStartOption, 0, 4)
	opts = append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(st.start))
	parent := r.Context()
	st.trace.trusted = h.trusts(r, st)
	switch {
	case st.trace.trusted && remote.IsValid():
		parent = trace.ContextWithRemoteSpanContext(parent, remote)
		st.trace.baggage = validBaggage(r.Header.Values(hdrBaggage))
	case remote.IsValid():
		// A new trace, linked to what the caller sent: its ids only, never
		// its tracestate, and its sampled flag decides nothing.
		opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{
			SpanContext: remote.WithTraceState(trace.TraceState{}),
			Attributes:  []attribute.KeyValue{attribute.Bool("scgate.untrusted_parent", true)},
		}))
	default:
		opts = append(opts, trace.WithNewRoot())
		if st.trace.trusted {
			st.trace.baggage = validBaggage(r.Header.Values(hdrBaggage))
		}
	}
	ctx, span := h.tracer.t.Start(parent, spanName(r.Method, st.route), opts...)
	st.trace.span, st.trace.ctx = span, ctx
	return ctx
}

func spanName(method, route string) string { return methodLabel(method) + " " + route }

// validBaggage returns the caller's baggage as one header value when it is
// well formed and within the W3C limits, else "".
func validBaggage(values []string) string {
	if len(values) != 1 || len(values[0]) > maxBaggageBytes {
		return ""
	}
	b, err := baggage.Parse(values[0])
	if err != nil {
		return ""
	}
	return b.String()
}

// endSpan sets the request's bounded attributes on its span and ends it.
func (h *Handler) endSpan(r *http.Request, st *state, caller string, status int) {
	span := st.trace.span
	if span == nil {
		return
	}
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 16)
		attrs = append(attrs,
			attribute.String("scgate.caller", caller),
			attribute.String("http.request.method", methodLabel(r.Method)),
			attribute.String("http.route", st.route),
			attribute.Int("http.response.status_code", status),
			attribute.String("scgate.request_id", st.id),
		)
		if st.rule.Set != "" {
			attrs = append(attrs, attribute.String("scgate.rule_set", st.rule.Set))
		}
		if st.version != nil {
			attrs = append(attrs, attribute.String("scgate.key", st.version.Key),
				attribute.String("scgate.key_prefix", st.version.Secret.Prefix()))
		}
		if st.upstreamStatus != 0 {
			attrs = append(attrs, attribute.Int("scgate.upstream_status", st.upstreamStatus))
		}
		if st.code != "" {
			attrs = append(attrs, attribute.String("scgate.error", st.code))
		}
		if st.cache != "" {
			attrs = append(attrs, attribute.String("scgate.cache", st.cache))
		}
		if st.panel != nil {
			attrs = append(attrs, attribute.String("scgate.panel", st.panel.name))
		}
		if st.station.Scoped && st.station.Result != "" {
			attrs = append(attrs, attribute.String("scgate.station_result", st.station.Result))
			if st.station.Station != 0 {
				attrs = append(attrs, attribute.Int("scgate.station", st.station.Station))
			}
		}
		span.SetAttributes(attrs...)
		if status >= 500 {
			span.SetStatus(codes.Error, st.code)
		}
	}
	span.End()
}

// traceID is the request's trace id for the access log and the exemplar,
// and whether the trace is sampled (exported).
func (st *state) traceID() (string, bool) {
	if st.trace.span == nil {
		return "", false
	}
	sc := st.trace.span.SpanContext()
	if !sc.IsValid() {
		return "", false
	}
	return sc.TraceID().String(), sc.IsSampled()
}

// spanEvent adds an event to the request's span, when it records.
func (st *state) spanEvent(name string, attrs ...attribute.KeyValue) {
	if st == nil || st.trace.span == nil || !st.trace.span.IsRecording() {
		return
	}
	st.trace.span.AddEvent(name, trace.WithAttributes(attrs...))
}

// outboundTrace replaces the caller's trace headers on the request to the
// broadcaster: only a trusted caller's baggage passes; traceparent and
// tracestate are set per attempt by tracedTransport.
func (h *Handler) outboundTrace(out http.Header, st *state) {
	if h.tracer == nil {
		return
	}
	for k := range out {
		if sameName(k, hdrTraceparent) || sameName(k, hdrTracestate) || sameName(k, hdrBaggage) {
			delete(out, k)
		}
	}
	if st.trace.baggage != "" {
		out[hdrBaggage] = []string{st.trace.baggage}
	}
}

// tracedTransport gives each call to the broadcaster a client span, with
// the connection's progress as events, and sends its context as the
// request's traceparent.
type tracedTransport struct {
	base   http.RoundTripper
	tracer *tracer
	host   string
}

func (t tracedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(stateKey{}).(*state)
	route := "other"
	if st != nil {
		route = st.route
	}
	ctx, span := t.tracer.t.Start(req.Context(), "upstream "+spanName(req.Method, route),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", methodLabel(req.Method)),
			attribute.String("http.route", route),
			attribute.String("server.address", t.host),
		))
	if span.IsRecording() {
		ctx = httptrace.WithClientTrace(ctx, clientTrace(span))
	}
	// The request is scgate's own outbound copy (ReverseProxy's, or
	// failover's clone), and no one reads its headers concurrently yet.
	if req.Header == nil {
		req.Header = make(http.Header, 2)
	}
	delete(req.Header, hdrTraceparent)
	delete(req.Header, hdrTracestate)
	t.tracer.traceCtx.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		span.SetStatus(codes.Error, "no answer")
		span.SetAttributes(attribute.String("error.type", errorType(req, err)))
		span.End()
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		// Kept as it is: the later stages tell an empty answer by it.
		span.End()
		return resp, nil
	}
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span}
	return resp, nil
}

// errorType is a bounded word for a failed call.
func errorType(req *http.Request, err error) string {
	switch {
	case req.Context().Err() != nil:
		return "canceled"
	case retryable(req, err):
		return "dial"
	}
	return "transport"
}

// spanBody ends the client span when the answer's body is closed, so the
// span covers the whole answer.
type spanBody struct {
	io.ReadCloser
	span trace.Span
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	b.span.End() // ending twice is a no-op
	return err
}

// clientTrace records a call's connection steps as events of span.
func clientTrace(span trace.Span) *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			span.AddEvent("got_conn", trace.WithAttributes(attribute.Bool("reused", i.Reused)))
		},
		ConnectStart: func(string, string) { span.AddEvent("dial_start") },
		ConnectDone: func(_, _ string, err error) {
			span.AddEvent("dial_done", trace.WithAttributes(attribute.Bool("ok", err == nil)))
		},
		TLSHandshakeStart: func() { span.AddEvent("tls_start") },
		TLSHandshakeDone: func(s tls.ConnectionState, err error) {
			span.AddEvent("tls_done", trace.WithAttributes(attribute.Bool("ok", err == nil),
				attribute.String("tls.protocol.version", tls.VersionName(s.Version))))
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { span.AddEvent("wrote_request") },
		GotFirstResponseByte: func() { span.AddEvent("first_byte") },
	}
}
