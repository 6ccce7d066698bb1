package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scgate/scgate/internal/standin"
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
