package proxy_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/scgate/scgate/proxy"
)

// TestAttackDNSRebinding: on a loopback listener, a request that reaches the
// right address under a foreign name (a rebinding page's Host) gets 421 and
// never reaches the upstream; the listener's own address and localhost at
// its port are answered.
func TestAttackDNSRebinding(t *testing.T) {
	a := newAttackEnv(t, envOptions{loopbackHosts: true}, proxy.ServerOptions{})
	_, port, _ := net.SplitHostPort(a.addr)
	for _, c := range []struct {
		host string
		want int
	}{
		{a.addr, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST:" + port, http.StatusOK},
		{"attacker.example:" + port, http.StatusMisdirectedRequest},
		{"attacker.example", http.StatusMisdirectedRequest},
		{"127.0.0.1", http.StatusMisdirectedRequest}, // port 80, not the listener's
		{"localhost:1" + port, http.StatusMisdirectedRequest},
		{"127.0.0.2:" + port, http.StatusMisdirectedRequest},
		{"", http.StatusMisdirectedRequest},
	} {
		t.Run(c.host, func(t *testing.T) {
			m := a.up.mark()
			resp, body := rawDo(t, a.addr, "GET /api/v2/history/ HTTP/1.1\r\nHost: "+c.host+"\r\nX-Test-Caller: admin\r\n\r\n")
			if c.want == http.StatusOK {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				return
			}
			checkGatewayError(t, resp, body, proxy.CodeMisdirected, c.want)
			if reqs, _ := a.up.since(m); len(reqs) != 0 {
				t.Fatal("the misdirected request reached the upstream")
			}
		})
	}
}

// TestAttackCrossSiteBrowserRequest: a cross-site form POST (with or
// without the rebinding Host), or any request a browser marks as coming
// from another site, gets 403 cross_site_request unless browsers are
// allowed; with server.hosts set, only those hosts are answered.
func TestAttackCrossSiteBrowserRequest(t *testing.T) {
	form := func(host, extra string) string {
		return "POST /api/v2/playlists/ HTTP/1.1\r\nHost: " + host + "\r\nX-Test-Caller: admin\r\n" +
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\n" + extra + "\r\nname=x"
	}
	t.Run("default", func(t *testing.T) {
		a := newAttackEnv(t, envOptions{hosts: []string{"scgate.internal:8443", "gw.example"}}, proxy.ServerOptions{})
		cases := []struct {
			name, raw string
			status    int
			code      string
		}{
			{"foreign Host", form("attacker.example", ""), http.StatusMisdirectedRequest, proxy.CodeMisdirected},
			{"Sec-Fetch-Site cross-site", form("gw.example", "Sec-Fetch-Site: cross-site\r\n"), http.StatusForbidden, proxy.CodeCrossSite},
			{"Sec-Fetch-Site same-site", form("gw.example", "Sec-Fetch-Site: same-site\r\n"), http.StatusForbidden, proxy.CodeCrossSite},
			{"foreign Origin", form("gw.example", "Origin: https://attacker.example\r\n"), http.StatusForbidden, proxy.CodeCrossSite},
			{"null Origin", form("gw.example", "Origin: null\r\n"), http.StatusForbidden, proxy.CodeCrossSite},
			{"Origin on another port", form("gw.example", "Origin: http://gw.example:8080\r\n"), http.StatusForbidden, proxy.CodeCrossSite},
			{"two Origins", form("gw.example", "Origin: http://gw.example\r\nOrigin: https://attacker.example\r\n"), http.StatusForbidden, proxy.CodeCrossSite},
			{"own Origin", form("gw.example", "Origin: http://gw.example\r\nSec-Fetch-Site: same-origin\r\n"), http.StatusOK, ""},
			{"other host's Origin", form("gw.example:80", "Origin: https://scgate.internal:8443\r\n"), http.StatusOK, ""},
			{"no browser signals", form("scgate.internal:8443", ""), http.StatusOK, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				m := a.up.mark()
				resp, body := rawDo(t, a.addr, c.raw)
				if c.code == "" {
					if resp.StatusCode != c.status {
						t.Fatalf("status %d: %s", resp.StatusCode, body)
					}
					return
				}
				checkGatewayError(t, resp, body, c.code, c.status)
				if reqs, _ := a.up.since(m); len(reqs) != 0 {
					t.Fatal("the refused request reached the upstream")
				}
			})
		}
	})
	t.Run("allow_browsers", func(t *testing.T) {
		a := newAttackEnv(t, envOptions{loopbackHosts: true, allowBrowsers: true}, proxy.ServerOptions{})
		resp, body := rawDo(t, a.addr, form(a.addr, "Sec-Fetch-Site: cross-site\r\nOrigin: https://app.example\r\n"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		// The Host is still checked: rebinding stays refused.
		resp, body = rawDo(t, a.addr, form("attacker.example", ""))
		checkGatewayError(t, resp, body, proxy.CodeMisdirected, http.StatusMisdirectedRequest)
	})
	t.Run("no hosts, not loopback: Origin must match the Host", func(t *testing.T) {
		a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
		resp, body := rawDo(t, a.addr, form("anything.example", "Origin: http://anything.example\r\n"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		resp, body = rawDo(t, a.addr, form("anything.example", "Origin: http://attacker.example\r\n"))
		checkGatewayError(t, resp, body, proxy.CodeCrossSite, http.StatusForbidden)
		if !strings.Contains(body, "allow_browsers") {
			t.Errorf("the message does not name the setting: %s", body)
		}
	})
}

func TestHostsAreValidated(t *testing.T) {
	for _, h := range []string{"", "http://x", "x/y", "x:0", "x:99999", "a b", "user@x"} {
		if err := proxy.ValidHost(h); err == nil {
			t.Errorf("ValidHost(%q) accepted it", h)
		}
	}
	for _, h := range []string{"x", "x.example:8443", "127.0.0.1:8080", "[::1]:8080", "localhost"} {
		if err := proxy.ValidHost(h); err != nil {
			t.Errorf("ValidHost(%q): %v", h, err)
		}
	}
}
