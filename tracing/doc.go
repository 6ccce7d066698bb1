// Package tracing builds the OpenTelemetry tracer provider that exports
// scgate's request spans over OTLP (gRPC or HTTP) to a collector.
//
// The provider is never installed as OpenTelemetry's global: the gateway
// passes it to the proxy through its Options. Export runs in the
// background through a bounded queue: a slow or dead collector never holds
// a request, and every span that cannot be queued or exported is counted
// (Options.Dropped), never waited for.
package tracing
