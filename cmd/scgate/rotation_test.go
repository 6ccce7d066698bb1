package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/internal/standin"
)

// TestRevokedKeyEndToEnd runs the real gateway: the broadcaster refuses the
// active version; the caller still gets its answer, /metrics shows the
// standby as active and the refusal counted, and the expiry of the standby,
// 3 days away, is warned about in the log.
func TestRevokedKeyEndToEnd(t *testing.T) {
	si, err := standin.New(standin.Options{Keys: []string{keyGood}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()
	soon := time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	vault := `[callers]
"svc" = "k"
[[keys.k]]
secret = "` + keyGood + `"
expires = ` + soon + `
[[keys.k]]
secret = "` + keyRevoked + `"
not_before = 2020-01-01T00:00:00Z
`
	p := writeSetup(t, up.URL, "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay = \"0s\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[rotation]\nrejection_cooldown = \"1h\"\n", vault)
	core, logs := observer.New(zapcore.InfoLevel)
	g, _ := startGatewayWith(t, p, zap.New(core), nil)

	base := "http://" + g.Addr().String()
	for range 3 {
		if code, body := get(t, http.DefaultClient, base+"/api/v2/playlists/"); code != http.StatusOK {
			t.Fatalf("caller got %d: %s", code, body)
		}
	}
	_, metrics := get(t, http.DefaultClient, "http://"+g.AdminAddr().String()+"/metrics")
	for _, want := range []string{
		`scgate_key_active{key="k",prefix="KeyRevk1"} 0`,
		`scgate_key_active{key="k",prefix="KeyGood1"} 1`,
		`scgate_upstream_key_rejections_total{key="k",panel="default",prefix="KeyRevk1"} 1`,
		`scgate_key_expiry_timestamp_seconds{key="k",prefix="KeyGood1"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	waitUntil(t, "the expiry warning", func() bool {
		return logs.FilterField(zap.String("prefix", "KeyGood1")).FilterMessageSnippet("expires soon").Len() == 1
	})
	if n := logs.FilterMessageSnippet("the broadcaster refused a key version").Len(); n != 1 {
		t.Errorf("%d refusal log lines, want 1", n)
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), "FAKEfake") {
			t.Fatalf("a log line holds a secret: %v", e)
		}
	}
}

// TestForbiddenRouteKeepsTheKeyActive runs the real gateway: a caller
// sending requests to a route the broadcaster forbids to its key gets the
// broadcaster's 403, and /metrics still shows the same active version and no
// rejection; the broadcaster never sees the standby.
func TestForbiddenRouteKeepsTheKeyActive(t *testing.T) {
	si, err := standin.New(standin.Options{
		Keys:      []string{keyGood, keyRevoked},
		Forbidden: []standin.Forbidden{{Key: keyRevoked, Method: "GET", Path: "/api/v2/playlists/1/"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()
	// KeyRevk1 is active (the later not_before), KeyGood1 its standby.
	vault := `[callers]
"svc" = "k"
[[keys.k]]
secret = "` + keyGood + `"
[[keys.k]]
secret = "` + keyRevoked + `"
not_before = 2020-01-01T00:00:00Z
`
	p := writeSetup(t, up.URL, "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_delay = \"0s\"\n[admin]\nlisten = \"127.0.0.1:0\"\n", vault)
	g, _ := startGatewayWith(t, p, zap.NewNop(), nil)
	base := "http://" + g.Addr().String()
	for range 10 {
		if code, body := get(t, http.DefaultClient, base+"/api/v2/playlists/1/"); code != http.StatusForbidden || !strings.Contains(body, "You do not have permission") {
			t.Fatalf("caller got %d: %s", code, body)
		}
	}
	_, metrics := get(t, http.DefaultClient, "http://"+g.AdminAddr().String()+"/metrics")
	for _, want := range []string{
		`scgate_key_active{key="k",prefix="KeyRevk1"} 1`,
		`scgate_key_active{key="k",prefix="KeyGood1"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The series exist at 0 from the start (so that increase() sees a first
	// rejection); none may have counted one.
	if !strings.Contains(metrics, `scgate_upstream_key_rejections_total{key="k",panel="default",prefix="KeyRevk1"} 0`) ||
		regexp.MustCompile(`scgate_upstream_key_rejections_total\{[^}]*\} [1-9]`).MatchString(metrics) {
		t.Error("/metrics counts a rejection")
	}
	for _, r := range si.Requests() {
		if len(r.KeyPrefixes) != 1 || r.KeyPrefixes[0] != "KeyRevk1" {
			t.Fatalf("the broadcaster saw %v", r.KeyPrefixes)
		}
	}
}
