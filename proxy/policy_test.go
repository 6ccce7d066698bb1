package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/policy"
)

func holderOf(t testing.TB, o policy.Options) *policy.Holder {
	t.Helper()
	p, err := policy.New(o)
	if err != nil {
		t.Fatal(err)
	}
	var h policy.Holder
	h.Store(p)
	return &h
}

// rawDo sends raw bytes as a request and returns the response and its body.
func rawDo(t testing.TB, addr, raw string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutePolicyAndPathSafety(t *testing.T) {
	e := newEnv(t, envOptions{policy: holderOf(t, policy.Options{
		Sets:    map[string][]string{"readonly": {"GET /api/v2/**"}},
		Callers: map[string]string{"reader": "readonly"},
	})})
	addr := e.gateway.Listener.Addr().String()
	cases := []struct {
		name, caller, method, target string
		status                       int
		code                         string
		upstreamPath                 string // what the stand-in must see, when allowed
	}{
		{"read allowed", "reader", "GET", "/api/v2/playlists/?server=1", 200, "", "/api/v2/playlists/"},
		{"escaped letters decode to the same route", "reader", "GET", "/api/v2/%70laylists/", 200, "", "/api/v2/playlists/"},
		{"write forbidden", "reader", "POST", "/api/v2/playlists/", 403, proxy.CodeForbidden, ""},
		{"delete forbidden", "reader", "DELETE", "/api/v2/playlists/1/", 403, proxy.CodeForbidden, ""},
		{"outside the API forbidden", "reader", "GET", "/admin/", 403, proxy.CodeForbidden, ""},
		{"no rule set: everything", "admin", "POST", "/api/v2/playlists/", 201, "", "/api/v2/playlists/"},
		{"dot-dot", "reader", "GET", "/api/v2/../admin/", 400, proxy.CodeBadRequest, ""},
		{"encoded dot-dot", "reader", "GET", "/api/v2/%2e%2e/admin/", 400, proxy.CodeBadRequest, ""},
		{"mixed encoded dot-dot", "reader", "GET", "/api/v2/.%2E/admin/", 400, proxy.CodeBadRequest, ""},
		{"dot-dot with parameter", "reader", "GET", "/api/v2/..;/admin/", 400, proxy.CodeBadRequest, ""},
		{"encoded slash", "reader", "GET", "/api/v2/history%2F..%2F..%2Fadmin/", 400, proxy.CodeBadRequest, ""},
		{"double encoding", "reader", "GET", "/api/v2/%252e%252e/admin/", 400, proxy.CodeBadRequest, ""},
		{"backslash", "reader", "GET", `/api/v2\..\admin/`, 400, proxy.CodeBadRequest, ""},
		{"encoded backslash", "reader", "GET", "/api/v2/%5c..%5cadmin/", 400, proxy.CodeBadRequest, ""},
		{"empty segment", "reader", "GET", "/api//v2/history/", 400, proxy.CodeBadRequest, ""},
		{"single dot", "reader", "GET", "/api/v2/./history/", 400, proxy.CodeBadRequest, ""},
		{"NUL", "reader", "GET", "/api/v2/history/%00/", 400, proxy.CodeBadRequest, ""},
		{"invalid UTF-8", "reader", "GET", "/api/v2/%ff%fe/", 400, proxy.CodeBadRequest, ""},
		{"malformed for an unrestricted caller too", "admin", "GET", "/api/v2/%2e%2e/", 400, proxy.CodeBadRequest, ""},
		{"absolute-form target", "reader", "GET", "http://elsewhere.example/api/v2/%2e%2e/admin/", 400, proxy.CodeBadRequest, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.standin.Requests())
			const payload = `{"name":"p","is_random":true,"server":1}`
			raw := c.method + " " + c.target + " HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: " + c.caller +
				"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(payload)) +
				"\r\nConnection: close\r\n\r\n" + payload
			resp, body := rawDo(t, addr, raw)
			if c.code != "" {
				checkGatewayError(t, resp, body, c.code, c.status)
				if len(e.standin.Requests()) != before {
					t.Fatal("the refused request reached the upstream")
				}
				if c.code == proxy.CodeForbidden && !strings.Contains(body, `\"readonly\"`) {
					t.Fatalf("403 does not name the rule set: %s", body)
				}
				return
			}
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if got := e.lastUpstream().Path; got != c.upstreamPath {
				t.Fatalf("the stand-in saw %q, want %q", got, c.upstreamPath)
			}
		})
	}
}

func TestPolicyReloadAppliesToTheNextRequest(t *testing.T) {
	h := holderOf(t, policy.Options{})
	e := newEnv(t, envOptions{policy: h})
	if resp, _ := e.do("POST", "/api/v2/playlists/", "reader", strings.NewReader(`{"name":"x","is_random":true,"server":1}`), nil); resp.StatusCode != http.StatusCreated {
		t.Fatalf("before the reload: %d", resp.StatusCode)
	}
	p, _ := policy.New(policy.Options{Sets: map[string][]string{"ro": {"GET /api/v2/**"}}, Default: "ro"})
	h.Store(p)
	resp, body := e.do("POST", "/api/v2/playlists/", "reader", strings.NewReader(`{}`), nil)
	checkGatewayError(t, resp, body, proxy.CodeForbidden, http.StatusForbidden)
}

// FuzzGatewayForwardsWhatWasMatched drives the real gateway with raw request
// targets. Whenever the upstream receives a request, its path is exactly what
// policy.Normalize made of the target as the HTTP server parsed it (the path
// the rules were matched against); whenever Normalize refuses it, nothing
// reaches the upstream.
func FuzzGatewayForwardsWhatWasMatched(f *testing.F) {
	var mu sync.Mutex
	var seen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
	}))
	defer up.Close()
	e := newEnv(f, envOptions{upstream: up.Config.Handler, policy: holderOf(f, policy.Options{
		Sets: map[string][]string{"ro": {"GET /api/v2/**"}}, Default: "ro",
	})})
	addr := e.gateway.Listener.Addr().String()
	for _, s := range []string{
		"/api/v2/history/", "/api/v2/%68istory/", "/api/v2/%2e%2e/x", "/api/v2/..%2f", "/api/v2/%c3%a9/", "/api/v2//x",
		`/api/v2/a\b`, "/api/v2/%252e/", "/api/v2/a;b/", "/api/v2/%3Fx/", "/api/v2/..;/x", "/api/v3/../v2/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if target == "" || strings.ContainsAny(target, " \r\n\t") || target[0] != '/' {
			return // not a request line the HTTP parser would take apart the same way
		}
		mu.Lock()
		seen = seen[:0]
		mu.Unlock()
		resp, body := rawDo(t, addr, "GET "+target+" HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: reader\r\nConnection: close\r\n\r\n")
		var want string
		u, err := url.ParseRequestURI(target) // what net/http does with the request line
		if err == nil {
			want, err = policy.Normalize(u.EscapedPath())
		}
		mu.Lock()
		got := append([]string(nil), seen...)
		mu.Unlock()
		switch {
		case err != nil && len(got) > 0:
			t.Fatalf("Normalize refused %q (%v), but the upstream received %q", target, err, got)
		case err != nil:
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%q: status %d, want 400: %s", target, resp.StatusCode, body)
			}
		case len(got) == 1 && got[0] != want:
			t.Fatalf("%q: matched as %q, but the upstream received %q", target, want, got[0])
		case len(got) > 1:
			t.Fatalf("%q reached the upstream %d times", target, len(got))
		case len(got) == 0 && resp.Header.Get("Scgate-Error") == "" && resp.StatusCode != http.StatusBadRequest:
			t.Fatalf("%q: accepted but not forwarded: %d %s", target, resp.StatusCode, body)
		}
	})
}
