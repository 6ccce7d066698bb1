package tracing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Protocols of Options.Protocol.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

// Defaults for the zero values of Options.
const (
	DefaultServiceName   = "scgate"
	DefaultMaxQueueSize  = 2048
	DefaultBatchSize     = 512
	DefaultBatchTimeout  = 5 * time.Second
	DefaultExportTimeout = 10 * time.Second
	// DefaultHTTPPath is the path of an http endpoint given without one.
	DefaultHTTPPath = "/v1/traces"
)

// Reasons of the dropped-span count (Options.Dropped).
const (
	// DroppedQueueFull: the span ended while the export queue was full
	// (the collector is slower than the traffic, or down).
	DroppedQueueFull = "queue_full"
	// DroppedExportFailed: the collector refused the batch or could not be
	// reached within the export timeout.
	DroppedExportFailed = "export_failed"
)

// Options configures a Provider. Endpoint is required.
type Options struct {
	// Endpoint is the collector's URL: https://host:port (or http:// with
	// Insecure). For ProtocolHTTP a path may follow (default /v1/traces);
	// for ProtocolGRPC it must have none.
	Endpoint string
	// Protocol is ProtocolGRPC (default) or ProtocolHTTP.
	Protocol string
	// Insecure sends spans in clear text; it is required for, and only
	// allowed with, an http:// endpoint.
	Insecure bool
	// TLS verifies the collector (RootCAs) and may present a client
	// certificate; nil means the system pool and no client certificate.
	TLS *tls.Config
	// Headers are sent with every export (an API token, say). They are
	// never logged.
	Headers map[string]string
	// ServiceName is the service.name resource attribute (default scgate).
	ServiceName string
	// Attributes are further resource attributes (deployment.environment,
	// service.instance.id, ...).
	Attributes map[string]string
	// Version is the service.version resource attribute.
	Version string
	// SampleRatio is the share of new traces sampled, 0 to 1. A request
	// whose parent came from a trusted caller follows the parent's choice.
	SampleRatio float64
	// MaxQueueSize bounds the spans waiting for export (default
	// DefaultMaxQueueSize); a span ending while it is full is dropped and
	// counted.
	MaxQueueSize int
	// BatchSize is the most spans sent in one export (default
	// DefaultBatchSize).
	BatchSize int
	// BatchTimeout is the longest a span waits for its batch to fill
	// (default DefaultBatchTimeout).
	BatchTimeout time.Duration
	// ExportTimeout bounds one export, retries included (default
	// DefaultExportTimeout).
	ExportTimeout time.Duration
	// Dropped counts spans that were not exported, by reason
	// (DroppedQueueFull, DroppedExportFailed); nil counts nothing.
	Dropped func(reason string, n int)
	// Logger notes when exports start failing and when they recover; nil
	// discards it.
	Logger *zap.Logger
}

// Provider is scgate's tracer provider with its OTLP exporter.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// New validates o and returns a Provider. It does not connect: the
// exporter connects in the background, so a collector that is down does
// not stop the gateway from starting.
func New(o Options) (*Provider, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	exp, err := newExporter(o)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(context.Background(), resource.WithAttributes(o.resourceAttributes()...))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	g := &gate{limit: int64(o.MaxQueueSize), dropped: o.Dropped}
	counted := &countingExporter{next: exp, gate: g, log: o.Logger}
	g.next = sdktrace.NewBatchSpanProcessor(counted,
		sdktrace.WithMaxQueueSize(o.MaxQueueSize),
		sdktrace.WithMaxExportBatchSize(o.BatchSize),
		sdktrace.WithBatchTimeout(o.BatchTimeout),
		sdktrace.WithExportTimeout(o.ExportTimeout),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
		sdktrace.WithSpanProcessor(g),
		// A request span carries a few attributes and events; these bound a
		// span whatever a code path adds.
		sdktrace.WithSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit:   256,
			AttributeCountLimit:         32,
			EventCountLimit:             32,
			LinkCountLimit:              2,
			AttributePerEventCountLimit: 8,
			AttributePerLinkCountLimit:  4,
		}),
	)
	return &Provider{tp: tp}, nil
}

// TracerProvider is the provider to pass to the proxy.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Shutdown exports what is queued, until ctx ends, and stops the exporter.
func (p *Provider) Shutdown(ctx context.Context) error { return p.tp.Shutdown(ctx) }

func (o *Options) defaults() error {
	if o.Protocol == "" {
		o.Protocol = ProtocolGRPC
	}
	if o.ServiceName == "" {
		o.ServiceName = DefaultServiceName
	}
	if o.MaxQueueSize <= 0 {
		o.MaxQueueSize = DefaultMaxQueueSize
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	o.BatchSize = min(o.BatchSize, o.MaxQueueSize)
	if o.BatchTimeout <= 0 {
		o.BatchTimeout = DefaultBatchTimeout
	}
	if o.ExportTimeout <= 0 {
		o.ExportTimeout = DefaultExportTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.SampleRatio < 0 || o.SampleRatio > 1 {
		return fmt.Errorf("tracing: sample ratio %v: give a number from 0 to 1", o.SampleRatio)
	}
	return CheckEndpoint(o.Endpoint, o.Protocol, o.Insecure)
}

// CheckEndpoint says what is wrong with an endpoint for protocol, or nil.
func CheckEndpoint(endpoint, protocol string, insecure bool) error {
	if protocol != ProtocolGRPC && protocol != ProtocolHTTP {
		return fmt.Errorf("tracing: protocol %q: use grpc or http", protocol)
	}
	u, err := url.Parse(endpoint)
	switch {
	case endpoint == "":
		return errors.New("tracing: an endpoint is required")
	case err != nil:
		return fmt.Errorf("tracing: endpoint: %w", err)
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("tracing: the endpoint must be an https:// (or, with insecure, http://) URL")
	case u.Host == "":
		return errors.New("tracing: the endpoint has no host")
	case u.User != nil:
		return errors.New("tracing: the endpoint must not carry user info; put credentials in the headers file")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("tracing: the endpoint must have no query or fragment")
	case protocol == ProtocolGRPC && u.Path != "" && u.Path != "/":
		return errors.New("tracing: a grpc endpoint has no path; give scheme://host:port")
	case u.Scheme == "http" && !insecure:
		return errors.New("tracing: an http:// endpoint sends spans in clear text: set insecure to say so, or use https://")
	case u.Scheme == "https" && insecure:
		return errors.New("tracing: insecure is only for an http:// endpoint")
	}
	return nil
}

func (o *Options) resourceAttributes() []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, len(o.Attributes)+2)
	for k, v := range o.Attributes {
		attrs = append(attrs, attribute.String(k, v))
	}
	attrs = append(attrs, attribute.String("service.name", o.ServiceName))
	if o.Version != "" {
		attrs = append(attrs, attribute.String("service.version", o.Version))
	}
	return attrs
}

// newExporter builds the OTLP exporter. Every setting is given explicitly,
// so the OTEL_EXPORTER_OTLP_* variables of the environment cannot send the
// spans elsewhere or in clear text.
func newExporter(o Options) (sdktrace.SpanExporter, error) {
	ctx := context.Background()
	headers := o.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	switch o.Protocol {
	case ProtocolHTTP:
		endpoint := o.Endpoint
		if u, _ := url.Parse(endpoint); u.Path == "" || u.Path == "/" {
			// The exporter would post to the path given, even an empty one.
			endpoint = strings.TrimSuffix(endpoint, "/") + DefaultHTTPPath
		}
		opts := []otlptracehttp.Option{
			otlptracehttp.WithEndpointURL(endpoint),
			otlptracehttp.WithHeaders(headers),
			otlptracehttp.WithTimeout(o.ExportTimeout),
			otlptracehttp.WithProxy(nil),
		}
		if o.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		} else {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsConfig(o.TLS)))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		return exp, nil
	default:
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpointURL(o.Endpoint),
			otlptracegrpc.WithHeaders(headers),
			otlptracegrpc.WithTimeout(o.ExportTimeout),
		}
		if o.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(grpcTLS(tlsConfig(o.TLS))))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		return exp, nil
	}
}

func tlsConfig(c *tls.Config) *tls.Config {
	if c == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c = c.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// gate bounds the spans handed to the batch processor and counts those it
// turns away. It counts a span as pending from its end until the exporter
// is handed it, which is never less than what the processor's own queue
// holds, so the processor (sized to the same limit) never drops one
// silently: every loss is counted here or by countingExporter.
type gate struct {
	next    sdktrace.SpanProcessor
	limit   int64
	pending atomic.Int64
	dropped func(reason string, n int)
}

func (g *gate) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) { g.next.OnStart(ctx, s) }

func (g *gate) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	if g.pending.Add(1) > g.limit {
		g.pending.Add(-1)
		g.drop(DroppedQueueFull, 1)
		return
	}
	g.next.OnEnd(s)
}

func (g *gate) Shutdown(ctx context.Context) error   { return g.next.Shutdown(ctx) }
func (g *gate) ForceFlush(ctx context.Context) error { return g.next.ForceFlush(ctx) }

func (g *gate) drop(reason string, n int) {
	if g.dropped != nil && n > 0 {
		g.dropped(reason, n)
	}
}

// countingExporter releases the gate's count of the spans it is handed and
// counts a failed export's spans as dropped. It returns no error: the
// batch processor would hand it to OpenTelemetry's global error handler,
// and the loss is counted and logged here instead.
type countingExporter struct {
	next    sdktrace.SpanExporter
	gate    *gate
	log     *zap.Logger
	failing atomic.Bool
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.gate.pending.Add(-int64(len(spans)))
	err := e.next.ExportSpans(ctx, spans)
	if err != nil {
		e.gate.drop(DroppedExportFailed, len(spans))
		if !e.failing.Swap(true) {
			// Once per failing stretch: the collector may be down for hours.
			e.log.Warn("spans could not be exported to the trace collector; they are dropped and counted in scgate_trace_spans_dropped_total until it answers again",
				zap.Int("spans", len(spans)), zap.Error(err))
		}
		return nil
	}
	if e.failing.Swap(false) {
		e.log.Info("the trace collector accepts spans again")
	}
	return nil
}

func (e *countingExporter) Shutdown(ctx context.Context) error { return e.next.Shutdown(ctx) }
