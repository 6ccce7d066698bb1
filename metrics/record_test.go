package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestTypedAPIAndPreparedSeries: the typed methods write the series the
// docs/reference.md documents, Prepare creates the counters' series at 0 for every
// caller and key version (so increase() sees the first event), build_info
// carries the build, and a nil *Metrics records nothing without panicking.
func TestTypedAPIAndPreparedSeries(t *testing.T) {
	m := New()
	m.SetBuildInfo("v1.2.3", "abc123", "go1.26.0")
	m.Prepare([]string{"svc"}, []KeyVersion{{Panel: "default", Key: "k", Prefix: "Abcdefgh"}})
	srv := httptest.NewServer(m.AdminHandler(func() error { return nil }))
	defer srv.Close()
	_, before := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`scgate_build_info{goversion="go1.26.0",revision="abc123",version="v1.2.3"} 1`,
		`scgate_rate_limited_total{caller="svc",scope="caller"} 0`,
		`scgate_rate_limited_total{caller="svc",scope="key"} 0`,
		`scgate_upstream_key_rejections_total{key="k",panel="default",prefix="Abcdefgh"} 0`,
		`scgate_vault_reloads_total{result="error"} 0`,
	} {
		if !strings.Contains(before, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	m.Request("svc", "GET", "/api/v2/history/", 429, 5*time.Millisecond)
	m.RateLimited("svc", ScopeKey)
	m.GatewayError("rate_limited")
	m.KeyRejected("default", "k", "Abcdefgh")
	m.VaultReload(false)
	m.CertExpiry("server", time.Unix(2000000000, 0))
	m.RateLimitBackendUp(false)
	_, after := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`scgate_requests_total{caller="svc",method="GET",route="/api/v2/history/",status="429"} 1`,
		`scgate_request_duration_seconds_count{caller="svc",route="/api/v2/history/"} 1`,
		`scgate_rate_limited_total{caller="svc",scope="key"} 1`,
		`scgate_gateway_errors_total{code="rate_limited"} 1`,
		`scgate_upstream_key_rejections_total{key="k",panel="default",prefix="Abcdefgh"} 1`,
		`scgate_vault_reloads_total{result="error"} 1`,
		`scgate_tls_cert_expiry_timestamp_seconds{name="server"} 2e+09`,
		`scgate_ratelimit_backend_up 0`,
	} {
		if !strings.Contains(after, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	var none *Metrics
	none.Request("svc", "GET", "/", 200, 0)
	none.RateLimited("svc", ScopeCaller)
	none.GatewayError("x")
	none.Prepare([]string{"svc"}, nil)
}
