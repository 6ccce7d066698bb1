package proxy_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

func TestCallerWithoutKeyGetsDataWithItsOwnKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, c := range []struct{ caller, key string }{{"admin", keyAdmin}, {"reader", keyReader}} {
		resp, body := e.do("GET", "/api/v2/playlists/?server=1", c.caller, nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", c.caller, resp.StatusCode, body)
		}
		got := e.lastUpstream()
		if !slices.Equal(got.KeyPrefixes, []string{keyvault.Prefix(c.key)}) {
			t.Fatalf("%s: the stand-in saw %v, want only %s", c.caller, got.KeyPrefixes, keyvault.Prefix(c.key))
		}
		if got.RawQuery != "server=1" || got.Path != "/api/v2/playlists/" {
			t.Fatalf("forwarded %s?%s", got.Path, got.RawQuery)
		}
		if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Request-Id") != got.Header.Get("X-Request-Id") {
			t.Fatalf("X-Request-Id: caller saw %q, upstream %q", resp.Header.Get("X-Request-Id"), got.Header.Get("X-Request-Id"))
		}
		if resp.Header.Get("Scgate-Error") != "" {
			t.Fatal("a broadcaster answer carries Scgate-Error")
		}
	}
}

func TestResponsePassesThroughByteForByte(t *testing.T) {
	body := `{"weird":  [1,2 , 3],"next":null}` + "\n"
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, body)
	})
	e := newEnv(t, envOptions{upstream: up})
	resp, got := e.do("PATCH", "/api/v2/playlists/3/?a=1&a=2&b=%20x", "admin", strings.NewReader("x"), nil)
	if resp.StatusCode != http.StatusTeapot || got != body {
		t.Fatalf("got %d %q, want 418 %q", resp.StatusCode, got, body)
	}
	if resp.Header.Get("X-Upstream") != "yes" || !slices.Equal(resp.Header.Values("Set-Cookie"), []string{"a=1", "b=2"}) {
		t.Fatalf("headers not passed through: %v", resp.Header)
	}
}

func TestCallerSuppliedKeyNeverReachesUpstream(t *testing.T) {
	e := newEnv(t, envOptions{})
	want := []string{keyvault.Prefix(keyReader)}
	cases := map[string]http.Header{
		"canonical":             {"Sc-Api-Key": {keyAdmin}},
		"several copies":        {"Sc-Api-Key": {keyAdmin, keyAdmin, "x"}},
		"non-canonical map key": {"SC-API-KEY": {keyAdmin}, "sc-api-key": {keyAdmin}},
		"connection strip":      {"Connection": {"SC-API-KEY"}, "Sc-Api-Key": {keyAdmin}},
		"scgate headers":        {"Scgate-Error": {"forbidden"}, "Scgate-Caller": {"admin"}},
		"forwarded":             {"Forwarded": {"for=1.2.3.4"}, "X-Forwarded-For": {"1.2.3.4"}},
	}
	for name, hdr := range cases {
		t.Run(name, func(t *testing.T) {
			resp, body := e.do("GET", "/api/v2/playlists/", "reader", nil, hdr)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := e.lastUpstream()
			if !slices.Equal(got.KeyPrefixes, want) {
				t.Fatalf("the stand-in saw keys %v, want only the reader's %v", got.KeyPrefixes, want)
			}
			for k := range got.Header {
				if strings.HasPrefix(strings.ToLower(k), "scgate-") || strings.EqualFold(k, "Forwarded") ||
					strings.HasPrefix(strings.ToLower(k), "x-forwarded-") {
					t.Fatalf("%s reached the upstream", k)
				}
			}
		})
	}
}

// A raw request on the wire: several casings in one request, which no Go
// client would send.
func TestRawDuplicateKeyHeadersAreStripped(t *testing.T) {
	e := newEnv(t, envOptions{})
	raw := "GET /api/v2/playlists/ HTTP/1.1\r\nHost: x\r\nX-Test-Caller: reader\r\n" +
		"sc-api-key: " + keyAdmin + "\r\nSC-API-KEY: " + keyAdmin + "\r\nSc-Api-Key: zz\r\n" +
		"Connection: close, SC-API-KEY\r\n\r\n"
	resp := rawRequest(t, e.gateway.Listener.Addr().String(), raw)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := e.lastUpstream().KeyPrefixes; !slices.Equal(got, []string{keyvault.Prefix(keyReader)}) {
		t.Fatalf("the stand-in saw %v", got)
	}
}

func rawRequest(t *testing.T, addr, raw string) *http.Response {
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
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// checkGatewayError asserts the §5 contract of a scgate error response.
func checkGatewayError(t *testing.T, resp *http.Response, body, code string, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if resp.Header.Get("Scgate-Error") != code || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers Scgate-Error=%q Content-Type=%q", resp.Header.Get("Scgate-Error"), resp.Header.Get("Content-Type"))
	}
	var b map[string]string
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("body is not JSON: %q", body)
	}
	if len(b) != 3 || b["error"] != code || b["message"] == "" || b["request_id"] != resp.Header.Get("X-Request-Id") || b["request_id"] == "" {
		t.Fatalf("body %q does not follow {error,message,request_id}", body)
	}
	for _, k := range []string{keyAdmin, keyReader, keyExpired} {
		if strings.Contains(body, k) || strings.Contains(body, keyvault.Prefix(k)+".") {
			t.Fatalf("a key leaked into an error body: %s", body)
		}
	}
}

func TestGatewayErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	cases := []struct {
		name, caller, code string
		status             int
	}{
		{"no identity", "", proxy.CodeUnauthenticated, http.StatusUnauthorized},
		{"caller not in vault", "stranger", proxy.CodeForbidden, http.StatusForbidden},
		{"only expired versions", "archiver", proxy.CodeNoValidKey, http.StatusServiceUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.standin.Requests())
			resp, body := e.do("GET", "/api/v2/playlists/", c.caller, nil, nil)
			checkGatewayError(t, resp, body, c.code, c.status)
			if len(e.standin.Requests()) != before {
				t.Fatal("the refused request reached the upstream")
			}
		})
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.upstream.Close()
	resp, body := e.do("GET", "/api/v2/history/", "admin", nil, nil)
	checkGatewayError(t, resp, body, proxy.CodeUpstreamUnavailable, http.StatusBadGateway)
	if strings.Contains(body, e.upstream.Listener.Addr().String()) {
		t.Fatal("the upstream address leaked into the error body")
	}
}

func TestSlowUpstreamIs504AndCallerCancelReachesUpstream(t *testing.T) {
	release := make(chan struct{})
	cancelled := make(chan struct{}, 1)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			cancelled <- struct{}{}
		}
	})
	e := newEnv(t, envOptions{upstream: up, transport: proxy.TransportOptions{ResponseHeaderTimeout: 200 * time.Millisecond}})
	defer close(release)
	resp, body := e.do("GET", "/api/v2/history/", "admin", nil, nil)
	checkGatewayError(t, resp, body, proxy.CodeUpstreamTimeout, http.StatusGatewayTimeout)
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled after the timeout")
	}
}

func TestBodyOverLimitIs413(t *testing.T) {
	e := newEnv(t, envOptions{maxBody: 1024})
	before := len(e.standin.Requests())
	resp, body := e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader(strings.Repeat("x", 2048)), nil)
	checkGatewayError(t, resp, body, proxy.CodePayloadTooLarge, http.StatusRequestEntityTooLarge)
	if len(e.standin.Requests()) != before {
		t.Fatal("an oversized body reached the upstream")
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	lim, err := ratelimit.New(ratelimit.Options{Limits: ratelimit.Limits{Caller: ratelimit.CallerLimits{Bucket: ratelimit.Bucket{Rate: 0.5, Burst: 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{limiter: lim})
	for i := range 2 {
		if resp, body := e.do("GET", "/api/v2/history/", "admin", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := e.do("GET", "/api/v2/history/", "admin", nil, nil)
	checkGatewayError(t, resp, body, proxy.CodeRateLimited, http.StatusTooManyRequests)
	if ra := resp.Header.Get("Retry-After"); ra != "2" {
		t.Fatalf("Retry-After = %q, want 2 (one token at 0.5/s)", ra)
	}
	if resp.Header.Get("RateLimit-Policy") != `"caller";q=2;w=4` || resp.Header.Get("RateLimit") != `"caller";r=0;t=2` {
		t.Fatalf("RateLimit-Policy %q, RateLimit %q", resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
	}
	// The other caller has its own bucket.
	if resp, _ := e.do("GET", "/api/v2/history/", "reader", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("reader limited by admin's traffic: %d", resp.StatusCode)
	}
}

func TestPaginationLinksPointAtTheGateway(t *testing.T) {
	e := newEnv(t, envOptions{})
	next := "/api/v2/history/?limit=50&server=1"
	pages, items := 0, 0
	for next != "" {
		resp, body := e.do("GET", strings.TrimPrefix(next, e.gateway.URL), "reader", nil, http.Header{"Accept-Encoding": {"gzip"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if strings.Contains(body, e.upstream.Listener.Addr().String()+"/api") {
			t.Fatalf("the upstream origin leaked in a pagination link: %s", body[:200])
		}
		var page struct {
			Count    int               `json:"count"`
			Next     *string           `json:"next"`
			Previous *string           `json:"previous"`
			Results  []json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		if pages > 0 && (page.Previous == nil || !strings.HasPrefix(*page.Previous, e.gateway.URL+"/api/v2/history/")) {
			t.Fatalf("previous = %v", page.Previous)
		}
		pages++
		items += len(page.Results)
		next = ""
		if page.Next != nil {
			if !strings.HasPrefix(*page.Next, e.gateway.URL+"/api/v2/history/") {
				t.Fatalf("next = %q, want it on the gateway %s", *page.Next, e.gateway.URL)
			}
			next = *page.Next
		}
		if pages == 1 && page.Count <= 50 {
			t.Fatalf("count %d: the stand-in's history should span several pages", page.Count)
		}
		if next == "" && items != page.Count {
			t.Fatalf("followed %d items over %d pages, count says %d", items, pages, page.Count)
		}
	}
}

func TestLocationOnUpstreamBecomesRelative(t *testing.T) {
	var upURL string
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v2/history":
			http.Redirect(w, r, upURL+"/api/v2/history/?server=1", http.StatusMovedPermanently)
		default:
			http.Redirect(w, r, "https://elsewhere.example/x", http.StatusFound)
		}
	})
	e := newEnv(t, envOptions{upstream: up})
	upURL = e.upstream.URL
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]string{
		"/api/v2/history": "/api/v2/history/?server=1",
		"/api/v2/other/":  "https://elsewhere.example/x",
	} {
		req, _ := http.NewRequest("GET", e.gateway.URL+path, nil)
		req.Header.Set("X-Test-Caller", "admin")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Location"); got != want {
			t.Fatalf("%s: Location %q, want %q", path, got, want)
		}
	}
}

func TestHostAndAbsoluteURICannotChooseTheDestination(t *testing.T) {
	e := newEnv(t, envOptions{})
	// A foreign destination that would notice if anything arrived.
	hit := make(chan string, 4)
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit <- r.URL.String() }))
	defer foreign.Close()
	fa := foreign.Listener.Addr().String()
	upHost := e.upstream.Listener.Addr().String()
	for name, raw := range map[string]string{
		"foreign Host":      "GET /api/v2/playlists/ HTTP/1.1\r\nHost: " + fa + "\r\nX-Test-Caller: admin\r\nConnection: close\r\n\r\n",
		"absolute-form URI": "GET http://" + fa + "/api/v2/playlists/ HTTP/1.1\r\nHost: " + fa + "\r\nX-Test-Caller: admin\r\nConnection: close\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			resp := rawRequest(t, e.gateway.Listener.Addr().String(), raw)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := e.lastUpstream(); got.Host != upHost {
				t.Fatalf("upstream saw Host %q, want %q", got.Host, upHost)
			}
		})
	}
	before := len(e.standin.Requests())
	for name, raw := range map[string]string{
		"CONNECT":   "CONNECT " + fa + " HTTP/1.1\r\nHost: " + fa + "\r\nX-Test-Caller: admin\r\nConnection: close\r\n\r\n",
		"OPTIONS *": "OPTIONS * HTTP/1.1\r\nHost: x\r\nX-Test-Caller: admin\r\nConnection: close\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			if resp := rawRequest(t, e.gateway.Listener.Addr().String(), raw); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
		})
	}
	if len(e.standin.Requests()) != before {
		t.Fatal("CONNECT or OPTIONS * reached the upstream")
	}
	select {
	case u := <-hit:
		t.Fatalf("the foreign host received %s", u)
	default:
	}
}

func TestRequestIDIsKeptWhenWellFormed(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp, _ := e.do("GET", "/api/v2/history/", "admin", nil, http.Header{"X-Request-Id": {"trace-123"}})
	if resp.Header.Get("X-Request-Id") != "trace-123" || e.lastUpstream().Header.Get("X-Request-Id") != "trace-123" {
		t.Fatal("a well-formed X-Request-Id was not kept")
	}
	resp, _ = e.do("GET", "/api/v2/history/", "admin", nil, http.Header{"X-Request-Id": {"bad id {}"}})
	if id := resp.Header.Get("X-Request-Id"); id == "" || strings.ContainsAny(id, " {}") {
		t.Fatalf("a malformed X-Request-Id was not replaced: %q", id)
	}
}

func TestOptionsAreValidated(t *testing.T) {
	v := fixedVault{parseVault(t, testVault)}
	for _, raw := range []string{"", "ftp://x", "https://", "https://u:p@x", "https://x/api/v2", "https://x?q=1"} {
		u, _ := urlParse(raw)
		if _, err := proxy.New(proxy.Options{Upstream: u, Identity: headerIdentity{}, Vault: v}); err == nil {
			t.Errorf("upstream %q accepted", raw)
		} else if strings.Contains(err.Error(), "p@") {
			t.Errorf("error leaks user info: %v", err)
		}
	}
	u, _ := urlParse("https://radio.example:1030")
	if _, err := proxy.New(proxy.Options{Upstream: u, Vault: v}); err == nil {
		t.Error("no identity resolver accepted")
	}
	if _, err := proxy.New(proxy.Options{Upstream: u, Identity: headerIdentity{}}); err == nil {
		t.Error("no vault accepted")
	}
}

func TestMetricsCountRequests(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.do("GET", "/api/v2/playlists/7/", "admin", nil, nil)
	e.do("GET", "/api/v2/history/", "stranger", nil, nil)
	rec := httptest.NewRecorder()
	e.metrics.AdminHandler(func() error { return nil }).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		`scgate_requests_total{caller="admin",method="GET",route="/api/v2/playlists/{id}/",status="404"} 1`,
		`scgate_requests_total{caller="unknown",method="GET",route="/api/v2/history/",status="403"} 1`,
		`scgate_gateway_errors_total{code="forbidden"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(out, keyAdmin) {
		t.Fatal("a key leaked into /metrics")
	}
}
