package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/policy"
)

// echoTrace answers TRACE the standard way: the request as received, its
// headers (the key among them) included, as the body.
func echoTrace(w http.ResponseWriter, r *http.Request) {
	if r.Method != "TRACE" && r.Method != "TRACK" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
		return
	}
	w.Header().Set("Content-Type", "message/http")
	fmt.Fprintf(w, "%s %s %s\r\n", r.Method, r.RequestURI, r.Proto)
	_ = r.Header.Write(w)
}

// TestAttackTraceEchoesTheKey: a method other than the seven scgate
// forwards gets 405 method_not_allowed with an Allow header and never
// reaches the upstream, whether the caller has no rule set or a rule set
// written with "*" as the method. Against a TRACE-echoing upstream, today's
// gateway handed the vault key back to the caller.
func TestAttackTraceEchoesTheKey(t *testing.T) {
	pol := holderOf(t, policy.Options{
		Sets:    map[string][]string{"star": {"* /api/v2/**"}},
		Callers: map[string]string{"reader": "star"},
	})
	a := newAttackEnv(t, envOptions{policy: pol}, proxy.ServerOptions{})
	a.up.setAnswer(echoTrace)
	for _, caller := range []string{"admin", "reader"} { // no rule set; "*" rule
		for _, method := range []string{"TRACE", "TRACK", "DEBUG", "PROPFIND", "MKCOL", "FOO-BAR", "get", "Get", "PURGE"} {
			t.Run(caller+"/"+method, func(t *testing.T) {
				m := a.up.mark()
				resp, body := rawDo(t, a.addr, method+" /api/v2/history/ HTTP/1.1\r\nHost: "+a.addr+"\r\nX-Test-Caller: "+caller+"\r\n\r\n")
				checkGatewayError(t, resp, body, proxy.CodeMethodNotAllowed, http.StatusMethodNotAllowed)
				if got := resp.Header.Get("Allow"); got != policy.Methods {
					t.Errorf("Allow %q, want %q", got, policy.Methods)
				}
				if strings.Contains(body, keyAdmin) || strings.Contains(body, keyReader) {
					t.Fatal("the key came back to the caller")
				}
				if reqs, _ := a.up.since(m); len(reqs) != 0 {
					t.Fatalf("the upstream received %d request(s), the first %s", len(reqs), reqs[0].Method)
				}
			})
		}
	}
	// The seven methods still pass, under "*" too.
	for _, method := range strings.Split(policy.Methods, ", ") {
		resp, _ := rawDo(t, a.addr, method+" /api/v2/history/ HTTP/1.1\r\nHost: "+a.addr+"\r\nX-Test-Caller: reader\r\nContent-Length: 0\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want 200", method, resp.StatusCode)
		}
	}
}

// TestStarRuleCoversOnlyForwardedMethods: the policy on its own never lets
// "*" mean TRACE (scgate explain asks it directly).
func TestStarRuleCoversOnlyForwardedMethods(t *testing.T) {
	p, err := policy.New(policy.Options{Sets: map[string][]string{"s": {"* /**"}}, Default: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"TRACE", "CONNECT", "get", "PROPFIND"} {
		if p.Allow("x", m, "/api/v2/").Allowed {
			t.Errorf("* allowed %s", m)
		}
	}
	if !p.Allow("x", "DELETE", "/api/v2/").Allowed {
		t.Error("* refused DELETE")
	}
}

// TestAttackMethodOverrideHeaders: headers that make some frameworks serve
// another method or path than the one the route policy judged never reach
// the upstream, in any spelling a WSGI server reads as the same name.
func TestAttackMethodOverrideHeaders(t *testing.T) {
	pol := holderOf(t, policy.Options{
		Sets:    map[string][]string{"ro": {"GET /api/v2/**"}},
		Callers: map[string]string{"reader": "ro"},
	})
	a := newAttackEnv(t, envOptions{policy: pol}, proxy.ServerOptions{})
	for _, name := range []string{
		"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-URL", "X-Rewrite-URL",
		"x-http-method-override", "X_HTTP_METHOD_OVERRIDE", "X_Original_URL",
	} {
		t.Run(name, func(t *testing.T) {
			m := a.up.mark()
			resp, _ := rawDo(t, a.addr, "GET /api/v2/playlists/3/ HTTP/1.1\r\nHost: "+a.addr+"\r\nX-Test-Caller: reader\r\n"+
				name+": DELETE-OVERRIDE-MARKER\r\n\r\n")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			reqs, raw := a.up.since(m)
			if len(reqs) != 1 || reqs[0].Method != "GET" {
				t.Fatalf("upstream got %v", reqs)
			}
			if strings.Contains(raw, "DELETE-OVERRIDE-MARKER") {
				t.Fatalf("%s crossed the wire", name)
			}
		})
	}
}
