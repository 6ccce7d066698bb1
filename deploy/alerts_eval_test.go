package deploy

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
)

// runPromQLTest runs a script on an engine set as a Prometheus server's is
// by default (in particular without the experimental delayed name removal,
// which promqltest's own engine turns on).
func runPromQLTest(t *testing.T, script string) {
	t.Helper()
	engine := promqltest.NewTestEngineWithOpts(t, promql.EngineOpts{
		MaxSamples:               100000,
		Timeout:                  time.Minute,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		EnableAtModifier:         true, // always on in Prometheus 3
		EnableNegativeOffset:     true, // always on in Prometheus 3
		Parser:                   parser.NewParser(parser.Options{}),
	})
	promqltest.RunTest(t, script, engine)
}

// alertCases are promqltest scripts; %s is the alert's expression on one
// line. An eval with no series under it expects no alert.
var alertCases = []struct{ name, alert, script string }{
	{"key expiring in 10 days fires", "ScgateKeyExpiringSoon", `
load 1m
  scgate_key_expiry_timestamp_seconds{namespace="radio", pod="a", key="k", prefix="Old00001"} 864000+0x10
  scgate_key_active{namespace="radio", pod="a", key="k", prefix="Old00001"} 1+0x10

eval instant at 5m %s
  {namespace="radio", key="k"} 863700
`},
	{"staged rotation with a later expiry silences it", "ScgateKeyExpiringSoon", `
load 1m
  scgate_key_expiry_timestamp_seconds{namespace="radio", pod="a", key="k", prefix="Old00001"} 864000+0x10
  scgate_key_active{namespace="radio", pod="a", key="k", prefix="Old00001"} 1+0x10
  scgate_key_expiry_timestamp_seconds{namespace="radio", pod="a", key="k", prefix="New00001"} 8640000+0x10
  scgate_key_active{namespace="radio", pod="a", key="k", prefix="New00001"} 0+0x10

eval instant at 5m %s
`},
	{"a version without expiry silences it", "ScgateKeyExpiringSoon", `
load 1m
  scgate_key_expiry_timestamp_seconds{namespace="radio", pod="a", key="k", prefix="Old00001"} 864000+0x10
  scgate_key_active{namespace="radio", pod="a", key="k", prefix="Old00001"} 0+0x10
  scgate_key_active{namespace="radio", pod="a", key="k", prefix="Forever1"} 1+0x10

eval instant at 5m %s
`},
	{"key expiring in 30 days is quiet", "ScgateKeyExpiringSoon", `
load 1m
  scgate_key_expiry_timestamp_seconds{namespace="radio", pod="a", key="k", prefix="Old00001"} 2592000+0x10
  scgate_key_active{namespace="radio", pod="a", key="k", prefix="Old00001"} 1+0x10

eval instant at 5m %s
`},
	{"vault failing since its last success fires", "ScgateVaultStale", `
load 1m
  scgate_vault_reloads_total{pod="a", result="error"} 0x30 1x200
  scgate_vault_last_success_timestamp_seconds{pod="a"} 100x230

eval instant at 100m %s
  {pod="a"} 1860
`},
	{"vault fixed after the failure is quiet", "ScgateVaultStale", `
load 1m
  scgate_vault_reloads_total{pod="a", result="error"} 0x30 1x200
  scgate_vault_last_success_timestamp_seconds{pod="a"} 100x39 2400x190

eval instant at 100m %s
`},
	{"vault that never failed is quiet", "ScgateVaultStale", `
load 1m
  scgate_vault_reloads_total{pod="a", result="error"} 0x230
  scgate_vault_last_success_timestamp_seconds{pod="a"} 100x230

eval instant at 100m %s
`},
	{"a failed reload fires the reload alert", "ScgateVaultReloadFailing", `
load 1m
  scgate_vault_reloads_total{pod="a", result="error"} 0x30 1x20

eval instant at 35m %s
  {pod="a", result="error"} 1

eval instant at 50m %s
`},
	{"a third of a caller's requests limited fires", "ScgateCallerRateLimited", `
load 1m
  scgate_rate_limited_total{namespace="radio", pod="a", caller="c", scope="caller"} 0+30x20
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="/api/v2/history/", status="200"} 0+60x20
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="/api/v2/history/", status="429"} 0+30x20
  scgate_requests_total{namespace="radio", pod="a", caller="d", method="GET", route="/api/v2/history/", status="200"} 0+60x20

eval instant at 10m %s
  {namespace="radio", caller="c"} 0.3333333333333333
`},
	{"gateway 5xx over 5 percent fires", "ScgateGatewayErrors", `
load 1m
  scgate_gateway_errors_total{namespace="radio", pod="a", code="upstream_unavailable"} 0+10x20
  scgate_gateway_errors_total{namespace="radio", pod="a", code="forbidden"} 0+50x20
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="other", status="200"} 0+90x20
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="other", status="502"} 0+10x20

eval instant at 10m %s
  {namespace="radio"} 0.1
`},
	{"a single key rejection fires", "ScgateUpstreamKeyRejected", `
load 1m
  scgate_upstream_key_rejections_total{namespace="radio", pod="a", key="k", prefix="Old00001"} 0x10 1x10

eval instant at 9m %s

eval instant at 12m %s
  {namespace="radio", key="k", prefix="Old00001"} 1
`},
	{"a scgate that cannot be scraped fires", "ScgateDown", `
load 1m
  up{job="scgate", namespace="radio", pod="a"} 1x10 0x10
  up{job="scgate", namespace="radio", pod="b"} 1x20

eval instant at 15m %s
  up{job="scgate", namespace="radio", pod="a"} 0
`},
	{"no scgate scraped fires", "ScgateAbsent", `
load 1m
  up{job="node", instance="n1"} 1x20

eval instant at 10m %s
  {job="scgate"} 1
`},
	{"a scraped scgate is not absent", "ScgateAbsent", `
load 1m
  up{job="scgate", namespace="radio", pod="a"} 1x20

eval instant at 10m %s
`},
	{"the Redis backend down fires", "ScgateRateLimitBackendDown", `
load 1m
  scgate_ratelimit_backend_up{namespace="radio", pod="a"} 1x5 0x10
  scgate_ratelimit_backend_up{namespace="radio", pod="b"} 1x15

eval instant at 10m %s
  scgate_ratelimit_backend_up{namespace="radio", pod="a"} 0
`},
	{"the broadcaster's own 5xx over 5 percent fires", "ScgateUpstreamErrors", `
load 1m
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="other", status="200"} 0+80x20
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="other", status="500"} 0+10x20
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="other", status="502"} 0+10x20
  scgate_gateway_errors_total{namespace="radio", pod="a", code="upstream_unavailable"} 0+10x20

eval instant at 10m %s
  {namespace="radio"} 0.1
`},
	{"only scgate's own 5xx: the upstream alert is quiet", "ScgateUpstreamErrors", `
load 1m
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="other", status="200"} 0+80x20
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="other", status="503"} 0+20x20
  scgate_gateway_errors_total{namespace="radio", pod="a", code="no_valid_key"} 0+20x20

eval instant at 10m %s
`},
	{"the broadcaster's 5xx without any gateway error series fires", "ScgateUpstreamErrors", `
load 1m
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="other", status="200"} 0+90x20
  scgate_requests_total{namespace="radio", pod="a", caller="c", method="GET", route="other", status="503"} 0+10x20

eval instant at 10m %s
  {namespace="radio"} 0.1
`},
	{"a slow broadcaster fires", "ScgateUpstreamSlow", `
load 1m
  scgate_upstream_duration_seconds_bucket{namespace="radio", pod="a", route="other", le="0.5"} 0+90x20
  scgate_upstream_duration_seconds_bucket{namespace="radio", pod="a", route="other", le="5"} 0+100x20
  scgate_upstream_duration_seconds_bucket{namespace="radio", pod="a", route="other", le="+Inf"} 0+100x20

eval instant at 10m %s
  {namespace="radio"} 4.55
`},
	{"a fast broadcaster is quiet", "ScgateUpstreamSlow", `
load 1m
  scgate_upstream_duration_seconds_bucket{namespace="radio", pod="a", route="other", le="0.5"} 0+100x20
  scgate_upstream_duration_seconds_bucket{namespace="radio", pod="a", route="other", le="5"} 0+100x20
  scgate_upstream_duration_seconds_bucket{namespace="radio", pod="a", route="other", le="+Inf"} 0+100x20

eval instant at 10m %s
`},
}
