package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminEndpoints(t *testing.T) {
	m := New()
	var notReady error = errors.New("starting")
	srv := httptest.NewServer(m.AdminHandler(func() error { return notReady }))
	defer srv.Close()

	if code, _ := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d", code)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Fatalf("/readyz before ready: %d %q", code, body)
	}
	notReady = nil
	if code, _ := get(t, srv.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz when ready: %d", code)
	}
	if code, _ := get(t, srv.URL+"/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown path: %d", code)
	}
}

func TestMetricsExposition(t *testing.T) {
	m := New()
	expires := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	m.SetKeySource(func() []KeyState {
		return []KeyState{
			{Key: "admin", Prefix: "g0hsQEz6", Expires: expires, Active: true},
			{Key: "admin", Prefix: "Zz9yXx8w"},
		}
	})
	m.Request("svc", "GET", "/api/v2/history/", 200, time.Millisecond)
	srv := httptest.NewServer(m.AdminHandler(func() error { return nil }))
	defer srv.Close()
	_, body := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`scgate_key_active{key="admin",prefix="g0hsQEz6"} 1`,
		`scgate_key_active{key="admin",prefix="Zz9yXx8w"} 0`,
		`scgate_key_expiry_timestamp_seconds{key="admin",prefix="g0hsQEz6"} 1.8013536e+09`,
		`scgate_vault_reloads_total{result="error"} 0`,
		`scgate_requests_total{caller="svc",method="GET",route="/api/v2/history/",status="200"} 1`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `scgate_key_expiry_timestamp_seconds{key="admin",prefix="Zz9yXx8w"}`) {
		t.Error("a version without expiry has an expiry sample")
	}
}
