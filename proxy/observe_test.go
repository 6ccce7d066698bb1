package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/keyvault"
)

func TestOneAccessLogLinePerRequestWithoutSecrets(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	e := newEnv(t, envOptions{logger: zap.New(core)})
	e.do("GET", "/api/v2/playlists/?server=1", "admin", nil, http.Header{"X-Request-Id": {"req-1"}})
	e.do("GET", "/api/v2/playlists/", "stranger", nil, http.Header{"X-Request-Id": {"req-2"}})
	e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader(`{"name":"x","is_random":true,"server":1}`),
		http.Header{"X-Request-Id": {"req-3"}, "Sc-Api-Key": {keyReader}})

	lines := logs.FilterMessage("request").All()
	if len(lines) != 3 {
		t.Fatalf("%d access-log lines for 3 requests", len(lines))
	}
	first := lines[0].ContextMap()
	for k, want := range map[string]any{
		"request_id": "req-1", "caller": "admin", "method": "GET", "route": "/api/v2/playlists/",
		"status": int64(200), "upstream_status": int64(200), "key": "admin", "key_prefix": keyvault.Prefix(keyAdmin),
	} {
		if first[k] != want {
			t.Errorf("field %s = %v (%T), want %v", k, first[k], first[k], want)
		}
	}
	if _, ok := first["duration"]; !ok {
		t.Error("no duration field")
	}
	second := lines[1].ContextMap()
	if second["status"] != int64(403) || second["error"] != "forbidden" {
		t.Errorf("refused request logged as %v", second)
	}
	for _, entry := range logs.All() {
		text := fmt.Sprint(entry.Message, entry.ContextMap())
		for _, k := range []string{keyAdmin, keyReader} {
			if strings.Contains(text, k) || strings.Contains(text, k[9:]) {
				t.Fatalf("a secret reached the log: %s", text)
			}
		}
	}
}

func TestHTTP2ToTheUpstreamWhenOffered(t *testing.T) {
	protos := make(chan string, 1)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.Proto
		_, _ = w.Write([]byte("ok"))
	})
	e := newEnv(t, envOptions{upstream: up, tlsUp: true})
	resp, body := e.do("GET", "/api/v2/history/", "admin", nil, nil)
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if p := <-protos; p != "HTTP/2.0" {
		t.Fatalf("upstream saw %s, want HTTP/2.0", p)
	}
}
