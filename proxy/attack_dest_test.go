package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/identity"
	"github.com/scgate/scgate/proxy/policy"
)

// foreignHost is a listener that must never be contacted: it counts
// whatever reaches it.
func foreignHost(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(s.Close)
	return s, &hits
}

// TestAttackRequestTargetChoosesDestination: request targets that name
// another host, beyond the foreign Host, absolute-form, CONNECT and OPTIONS *
// of TestHostAndAbsoluteURICannotChooseTheDestination. The foreign host never
// hears a thing; the upstream gets only what the policy allows.
func TestAttackRequestTargetChoosesDestination(t *testing.T) {
	foreign, hits := foreignHost(t)
	fa := foreign.Listener.Addr().String()
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	upHost := a.upstream.Listener.Addr().String()
	for _, c := range []struct {
		name, raw string
		status    int
		path      string // what the upstream must see, on 200
	}{
		{"absolute-form https with user info", "GET https://user:pw@" + fa + "/api/v2/history/ HTTP/1.1\r\nHost: " + fa + "\r\nX-Test-Caller: admin\r\n\r\n", 200, "/api/v2/history/"},
		{"scheme-relative target", "GET //" + fa + "/api/v2/history/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n\r\n", 400, ""},
		{"authority-form on GET", "GET " + fa + " HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n\r\n", 400, ""},
		{"CONNECT with absolute-form", "CONNECT http://" + fa + "/ HTTP/1.1\r\nHost: " + fa + "\r\nX-Test-Caller: admin\r\n\r\n", 400, ""},
		{"X-Forwarded-Host and X-Original-URL", "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n" +
			"X-Forwarded-Host: " + fa + "\r\nX-Original-URL: /admin/\r\nX-Rewrite-URL: /admin/\r\n\r\n", 200, "/api/v2/history/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := a.up.mark()
			x := rawExchange(t, a.addr, c.raw, 1)
			if got := x.statuses(); len(got) != 1 || got[0] != c.status {
				t.Fatalf("statuses %v (%v) %q, want %d", got, x.err, x.bodies, c.status)
			}
			reqs, _ := a.up.since(m)
			if c.status == 200 {
				if len(reqs) != 1 || reqs[0].Path != c.path {
					t.Fatalf("the upstream received %v, want one request for %s", reqs, c.path)
				}
				if h := reqs[0].Header.Get("Host"); h != "" && h != upHost {
					t.Fatalf("Host %q", h)
				}
			} else if len(reqs) != 0 {
				t.Fatal("a refused request reached the upstream")
			}
			checkUpstreamClean(t, a.up, m, keyAdmin)
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("the foreign host received %d requests", hits.Load())
	}
}

// TestAttackUpstreamRedirectsElsewhere: a redirect from the broadcaster is
// passed to the caller, never followed by scgate (which would send the key to
// whoever the Location names), and a Location on the broadcaster's own
// origin, however it is spelt, becomes relative so the caller comes back
// through scgate. TestLocationOnUpstreamBecomesRelative has the plain case.
func TestAttackUpstreamRedirectsElsewhere(t *testing.T) {
	foreign, hits := foreignHost(t)
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	up := a.upstream.Listener.Addr().String()
	var location atomic.Value
	a.up.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", location.Load().(string))
		w.WriteHeader(http.StatusFound)
	})
	for _, c := range []struct{ name, location, want string }{
		{"another host", foreign.URL + "/api/v2/history/", foreign.URL + "/api/v2/history/"},
		{"the upstream's origin", "http://" + up + "/api/v2/history/?x=1", "/api/v2/history/?x=1"},
		{"upper-case scheme", "HTTP://" + up + "/api/v2/history/", "/api/v2/history/"},
		{"scheme-relative", "//" + up + "/api/v2/history/", "/api/v2/history/"},
		{"with user info", "http://someone@" + up + "/api/v2/history/", "/api/v2/history/"},
		{"already relative", "/api/v2/history/", "/api/v2/history/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			location.Store(c.location)
			x := rawExchange(t, a.addr, "GET /api/v2/history HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n\r\n", 1)
			if len(x.resps) != 1 || x.resps[0].StatusCode != http.StatusFound {
				t.Fatalf("%s: statuses %v (%v)", c.location, x.statuses(), x.err)
			}
			if got := x.resps[0].Header.Get("Location"); got != c.want {
				t.Errorf("Location %q came back as %q, want %q", c.location, got, c.want)
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("scgate followed a redirect: the foreign host received %d requests", hits.Load())
	}
}

// TestAttackPaginationLinksInOtherSpellings: absolute next/previous links on
// the broadcaster's origin, written the ways JSON and URLs allow, all point at
// the gateway afterwards. TestPaginationLinksPointAtTheGateway follows the
// stand-in's own links.
func TestAttackPaginationLinksInOtherSpellings(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	up := a.upstream.Listener.Addr().String()
	upJSON := strings.ReplaceAll(up, ".", `\u002e`)
	a.up.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, `{"count":3,"next":"http:\/\/`+up+`\/api\/v2\/history\/?offset=50",`+
			`"previous":"HTTP://`+upJSON+`/api/v2/history/?offset=0","results":[{"next":"http://`+up+`/inner"}]}`)
	})
	resp, body := a.do("GET", "/api/v2/history/?offset=25", "admin", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var page struct {
		Next, Previous string
		Results        []map[string]string
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	gw := a.gateway.URL
	if !strings.HasPrefix(page.Next, gw+"/api/v2/history/") || !strings.HasPrefix(page.Previous, gw+"/api/v2/history/") {
		t.Fatalf("next %q, previous %q: want them on %s", page.Next, page.Previous, gw)
	}
	// Only the top-level links are the envelope's; data passes unchanged.
	if page.Results[0]["next"] != "http://"+up+"/inner" {
		t.Fatalf("a result's field was changed: %q", page.Results[0]["next"])
	}
}

// TestAttackUpstreamClaimsToBeTheGateway: a broadcaster answer never carries
// Scgate-* headers, so a caller can always tell scgate's own errors apart.
func TestAttackUpstreamClaimsToBeTheGateway(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	a.up.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Scgate-Error", "forbidden")
		w.Header().Set("scgate_error", "forbidden")
		w.Header()["scgate-caller"] = []string{"admin"}
		w.WriteHeader(http.StatusForbidden)
	})
	resp, _ := a.do("GET", "/api/v2/history/", "admin", nil, nil)
	for k := range resp.Header {
		if hasPrefixFold(k, "Scgate-") {
			t.Errorf("the caller received the broadcaster's %s", k)
		}
	}
}

// TestAttackMorePathEncodings: encodings beyond those of
// TestRoutePolicyAndPathSafety and FuzzGatewayForwardsWhatWasMatched, for a
// caller allowed only GET /api/v2/history/. None reaches the upstream.
func TestAttackMorePathEncodings(t *testing.T) {
	a := newAttackEnv(t, envOptions{policy: holderOf(t, policy.Options{
		Sets: map[string][]string{"history": {"GET /api/v2/history/"}}, Default: "history",
	})}, proxy.ServerOptions{})
	for _, c := range []struct {
		target string
		status int
	}{
		{"/api/v2/history/%c0%ae%c0%ae/admin/", 400}, // overlong UTF-8 dots
		{"/api/v2/history/%u002e%u002e/admin/", 400}, // IIS %u escapes
		{"/api/v2/history/.", 400},
		{"/api/v2/history/%2e", 400},
		{"/api/v2/history/%09/", 400},
		{"/api/v2/history/..%00/", 400},
		{"/api/v2/history/#/../../admin/", 400}, // a request line has no fragment: "#" is part of the path
		{"/API/v2/history/", 403},               // routes are case-sensitive, as the broadcaster's are
		{"/api/v2/history", 403},                // the trailing slash counts
		{"/api/v2/history/;/../admin/", 400},
		{"/api/v2/history/?../../admin/", 200}, // the query is not the path
	} {
		t.Run(c.target, func(t *testing.T) {
			m := a.up.mark()
			x := rawExchange(t, a.addr, "GET "+c.target+" HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n\r\n", 1)
			if got := x.statuses(); len(got) != 1 || got[0] != c.status {
				t.Fatalf("statuses %v (%v) %q, want %d", got, x.err, x.bodies, c.status)
			}
			reqs, _ := a.up.since(m)
			switch {
			case c.status == 200 && (len(reqs) != 1 || reqs[0].Path != "/api/v2/history/"):
				t.Fatalf("the upstream received %v", reqs)
			case c.status != 200 && len(reqs) != 0:
				t.Fatalf("the upstream received %s %s", reqs[0].Method, reqs[0].Path)
			}
		})
	}
}

// TestAttackSpoofedClientAddress: with the cidr resolver and no trusted
// proxy on the caller's path, no header makes the caller come from the
// privileged network: every spoof is 401 and reaches nothing. From a trusted
// proxy, X-Forwarded-For is read right to left, so a caller's own entry to the
// left of the proxy's is never the one believed.
// TestProxyHeadersOnlyFromTrustedPeers covers what the resolvers see.
func TestAttackSpoofedClientAddress(t *testing.T) {
	rules := []identity.CIDRRule{{Prefix: netip.MustParsePrefix("10.20.0.0/16"), Identity: "admin"}}
	for _, tc := range []struct {
		name    string
		trusted string
		hdr     string
		status  int
	}{
		{"X-Forwarded-For from an untrusted peer", "192.0.2.0/24", "X-Forwarded-For: 10.20.0.5\r\n", 401},
		{"Forwarded from an untrusted peer", "192.0.2.0/24", "Forwarded: for=10.20.0.5;proto=https\r\n", 401},
		{"X-Real-IP and True-Client-IP", "192.0.2.0/24", "X-Real-IP: 10.20.0.5\r\nTrue-Client-IP: 10.20.0.5\r\nClient-IP: 10.20.0.5\r\n", 401},
		{"X_Forwarded_For from an untrusted peer", "192.0.2.0/24", "X_Forwarded_For: 10.20.0.5\r\n", 401},
		{"spoofed entry left of the proxy's", "127.0.0.0/8", "X-Forwarded-For: 10.20.0.5, 198.51.100.7\r\n", 401},
		{"two header lines, spoofed first", "127.0.0.0/8", "X-Forwarded-For: 10.20.0.5\r\nX-Forwarded-For: 198.51.100.7\r\n", 401},
		{"the proxy vouches for the client", "127.0.0.0/8", "X-Forwarded-For: 10.20.0.5\r\n", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := mustTrusted(t, tc.trusted)
			res, err := identity.NewCIDR(identity.CIDROptions{Rules: rules, TrustedProxies: tp})
			if err != nil {
				t.Fatal(err)
			}
			a := newAttackEnv(t, envOptions{identity: res, proxies: tp}, proxy.ServerOptions{})
			x := rawExchange(t, a.addr, "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\n"+tc.hdr+"\r\n", 1)
			if got := x.statuses(); len(got) != 1 || got[0] != tc.status {
				t.Fatalf("statuses %v (%v) %q, want %d", got, x.err, x.bodies, tc.status)
			}
			if n := len(a.up.requests()); n != map[bool]int{true: 1, false: 0}[tc.status == 200] {
				t.Fatalf("the upstream received %d requests", n)
			}
			checkUpstreamClean(t, a.up, mark{}, keyAdmin)
		})
	}
}

// TestAttackSpoofedClientCertificateHeader: X-Forwarded-Client-Cert names
// the caller only when a trusted proxy sent it; from anyone else it is 401,
// in any spelling.
func TestAttackSpoofedClientCertificateHeader(t *testing.T) {
	const id = "spiffe://prod.example/ns/radio/sa/sync"
	vault := strings.Replace(testVault, `"admin" = "admin"`, `"`+id+`" = "admin"`, 1)
	for _, tc := range []struct {
		name, trusted, hdr string
		status             int
	}{
		{"from an untrusted peer", "192.0.2.0/24", "X-Forwarded-Client-Cert: URI=" + id + "\r\n", 401},
		{"lower case from an untrusted peer", "192.0.2.0/24", "x-forwarded-client-cert: URI=" + id + "\r\n", 401},
		{"underscores from a trusted peer", "127.0.0.0/8", "X_Forwarded_Client_Cert: URI=" + id + "\r\n", 401},
		{"a second element appended by the caller", "127.0.0.0/8", "X-Forwarded-Client-Cert: URI=spiffe://prod.example/ns/x/sa/nobody," +
			"URI=spiffe://evil.example/ns/radio/sa/sync\r\n", 401},
		{"from the trusted sidecar", "127.0.0.0/8", "X-Forwarded-Client-Cert: By=spiffe://prod.example/ns/radio/sa/scgate;URI=" + id + "\r\n", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := mustTrusted(t, tc.trusted)
			res, err := identity.NewHeader(identity.HeaderOptions{Name: "X-Forwarded-Client-Cert", TrustedProxies: tp,
				TrustDomains: []string{"prod.example"}})
			if err != nil {
				t.Fatal(err)
			}
			a := newAttackEnv(t, envOptions{identity: res, proxies: tp, proxyHeaders: []string{"X-Forwarded-Client-Cert"},
				vault: fixedVault{parseVault(t, vault)}}, proxy.ServerOptions{})
			x := rawExchange(t, a.addr, "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\n"+tc.hdr+"\r\n", 1)
			if got := x.statuses(); len(got) != 1 || got[0] != tc.status {
				t.Fatalf("statuses %v (%v) %q, want %d", got, x.err, x.bodies, tc.status)
			}
			if n := len(a.up.requests()); n != map[bool]int{true: 1, false: 0}[tc.status == 200] {
				t.Fatalf("the upstream received %d requests", n)
			}
			for _, r := range a.up.requests() {
				for k := range r.Header {
					if headerNameIs(k, "X-Forwarded-Client-Cert") {
						t.Errorf("the upstream received %s", k)
					}
				}
			}
			checkUpstreamClean(t, a.up, mark{}, keyAdmin)
		})
	}
}
