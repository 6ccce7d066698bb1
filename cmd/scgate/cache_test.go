package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/proxy/ratelimit/redistest"
)

// The gateway built from [cache] answers repeated status reads from the
// cache, through real sockets against the stand-in, and exports the
// scgate_cache_* series.
func TestCacheFromConfigEndToEnd(t *testing.T) {
	si, err := standin.New(standin.Options{Keys: []string{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()
	g, _ := startGateway(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity]
static = "svc"
[cache.routes]
"GET /api/v2/history/" = "1m"
`, up.URL))
	url := "http://" + g.Addr().String() + "/api/v2/history/?limit=1&offset=0&server=1"
	for i := range 3 {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cs := resp.Header.Get("Cache-Status")
		if resp.StatusCode != 200 || (i == 0) != (cs == "scgate; fwd=miss; stored") {
			t.Fatalf("request %d: %d, Cache-Status %q", i, resp.StatusCode, cs)
		}
	}
	if n := len(si.Requests()); n != 1 {
		t.Fatalf("the stand-in saw %d requests, want 1", n)
	}
	_, body := get(t, http.DefaultClient, "http://"+g.AdminAddr().String()+"/metrics")
	for _, want := range []string{`scgate_cache_lookups_total{result="hit"} 2`, `scgate_cache_lookups_total{result="miss"} 1`, "scgate_cache_bytes "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// Two gateways of a fleet, built from config with store = "redis" on the
// limiter's Redis (a real redis-server): the second answers from the entry
// the first stored, and the stand-in sees one request.
func TestCacheRedisStoreSharedByAFleet(t *testing.T) {
	srv := redistest.Start(t)
	si, err := standin.New(standin.Options{Keys: []string{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(si)
	defer up.Close()
	cfg := fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
[vault]
file = "keys.toml"
[identity]
static = "svc"
[limits]
backend = "redis"
[limits.redis]
address = %q
timeout = "2s"
fallback_share = 0.5
key_prefix = "fleet-a:"
[cache]
store = "redis"
[cache.routes]
"GET /api/v2/history/" = "1m"
`, up.URL, srv.Addr)
	a, _ := startGateway(t, cfg)
	b, _ := startGateway(t, cfg)
	path := "/api/v2/history/?limit=1&offset=0&server=1"
	for i, g := range []string{a.Addr().String(), b.Addr().String()} {
		resp, err := http.Get("http://" + g + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if cs := resp.Header.Get("Cache-Status"); resp.StatusCode != 200 || (i == 1) != strings.HasPrefix(cs, "scgate; hit") {
			t.Fatalf("gateway %d: %d, Cache-Status %q", i, resp.StatusCode, cs)
		}
	}
	if n := len(si.Requests()); n != 1 {
		t.Fatalf("the stand-in saw %d requests, want 1", n)
	}
}
