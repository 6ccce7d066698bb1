package proxy_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/policy"
)

// TestExplainAgreesWithServeHTTP: for each request, Handler.Explain (what
// `scgate explain` prints) reaches the verdict ServeHTTP answers: the same
// gateway error code and status, or forwarded with the key version the
// upstream received. An explanation therefore cannot describe a decision the
// gateway would not make.
func TestExplainAgreesWithServeHTTP(t *testing.T) {
	e := newEnv(t, envOptions{policy: holderOf(t, policy.Options{
		Sets:    map[string][]string{"readonly": {"GET /api/v2/**"}},
		Callers: map[string]string{"reader": "readonly"},
	})})
	addr := e.gateway.Listener.Addr().String()
	cases := []struct{ caller, method, target string }{
		{"reader", "GET", "/api/v2/playlists/?server=1"},
		{"reader", "POST", "/api/v2/playlists/"},
		{"reader", "GET", "/admin/"},
		{"admin", "POST", "/api/v2/playlists/"},
		{"reader", "GET", "/api/v2/%2e%2e/admin/"},
		{"admin", "GET", "/api//v2/history/"},
		{"stranger", "GET", "/api/v2/history/"},
		{"archiver", "GET", "/api/v2/history/"},
	}
	for _, c := range cases {
		t.Run(c.caller+" "+c.method+" "+c.target, func(t *testing.T) {
			d := e.handler.Explain(context.Background(), c.caller, c.method, c.target)
			before := len(e.standin.Requests())
			const payload = `{"name":"p","is_random":true,"server":1}`
			resp, body := rawDo(t, addr, c.method+" "+c.target+" HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: "+c.caller+
				"\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(payload))+"\r\nConnection: close\r\n\r\n"+payload)
			got := resp.Header.Get("Scgate-Error")
			if got != d.Code {
				t.Fatalf("ServeHTTP answered %d %q (%s), Explain says %q (%d)", resp.StatusCode, got, body, d.Code, d.Status)
			}
			if d.Code != "" {
				if resp.StatusCode != d.Status {
					t.Fatalf("status %d, Explain says %d", resp.StatusCode, d.Status)
				}
				if d.Version != nil {
					t.Fatal("a refused request was explained with a key version")
				}
				return
			}
			reqs := e.standin.Requests()
			if len(reqs) != before+1 || resp.StatusCode >= http.StatusBadRequest {
				t.Fatalf("forwarded per Explain, but the upstream saw %d requests and the caller got %d", len(reqs)-before, resp.StatusCode)
			}
			if d.Version == nil || d.Key != map[string]string{"reader": "reader", "admin": "admin"}[c.caller] {
				t.Fatalf("explained key %q, version %v", d.Key, d.Version)
			}
		})
	}
	if d := e.handler.Explain(context.Background(), "reader", "POST", "/api/v2/playlists/"); d.Code != proxy.CodeForbidden || d.Route.Set != "readonly" {
		t.Fatalf("the route decision is not explained: %+v", d)
	}
}
