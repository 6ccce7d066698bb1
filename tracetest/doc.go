// Package tracetest checks scgate's traces end to end: the built binary, the
// stand-in broadcaster and the OpenTelemetry Collector's own OTLP receiver,
// run in the test with a sink. It is its own module so that the Collector's
// dependencies stay out of scgate's go.mod; run it with
// `cd tracetest && go test ./...` (.ci/run does, after the main tests).
package tracetest
