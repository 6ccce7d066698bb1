package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy"
)

// TestAttackQueryStringSilentlyAltered: a query string ReverseProxy would
// re-encode (dropping parameters) is refused with 400 naming the problem;
// before, a DELETE with 10,001 parameters reached the upstream bare.
func TestAttackQueryStringSilentlyAltered(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	cases := []struct{ name, query, want string }{
		{"over the parameter limit", strings.Repeat("t=&", 10000) + "t=", "more than 10000 parameters"},
		{"a semicolon", "track=1;track=2", "';'"},
		{"a bad escape", "track=%zz", "%"},
		{"a truncated escape", "track=%4", "%"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := a.up.mark()
			resp, body := rawDo(t, a.addr, "DELETE /api/v2/playlists/3/tracks/?"+c.query+" HTTP/1.1\r\nHost: "+a.addr+"\r\nX-Test-Caller: admin\r\n\r\n")
			checkGatewayError(t, resp, body, proxy.CodeBadRequest, http.StatusBadRequest)
			if !strings.Contains(body, "query string") || !strings.Contains(body, c.want) {
				t.Errorf("body %q does not name the problem (%s)", body, c.want)
			}
			if reqs, _ := a.up.since(m); len(reqs) != 0 {
				t.Fatalf("the upstream received %s %s", reqs[0].Method, reqs[0].Path)
			}
		})
	}
	t.Run("a faithful query passes unchanged", func(t *testing.T) {
		m := a.up.mark()
		q := "track=1&track=2&name=a%20b&empty=&flag&z=%2F+x"
		resp, _ := rawDo(t, a.addr, "GET /api/v2/history/?"+q+" HTTP/1.1\r\nHost: "+a.addr+"\r\nX-Test-Caller: admin\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if _, raw := a.up.since(m); !strings.Contains(raw, "GET /api/v2/history/?"+q+" HTTP/1.1\r\n") {
			t.Fatalf("the upstream's request line differs: %q", strings.SplitN(raw, "\r\n", 2)[0])
		}
	})
}

// TestHeadKeepsTheUpstreamContentLength: a HEAD answer on a JSON route
// keeps the upstream's Content-Length (it was replaced by 0).
func TestHeadKeepsTheUpstreamContentLength(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	a.up.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1234")
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(strings.Repeat(" ", 1234)))
		}
	})
	for _, path := range []string{"/api/v2/history/", "/api/v2/playlists/"} {
		req, _ := http.NewRequest(http.MethodHead, "http://"+a.addr+path, nil)
		req.Header.Set("X-Test-Caller", "admin")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength != 1234 {
			t.Errorf("HEAD %s: %d, Content-Length %d; want 200 and 1234", path, resp.StatusCode, resp.ContentLength)
		}
	}
}

// TestAttackScgateHeadersInInformationalAnswersAndTrailers: Scgate-* from
// the upstream, in any spelling, never reaches the caller in a 1xx answer
// or in trailers (announced or not), so a caller can still tell scgate's
// own answers from the broadcaster's.
func TestAttackScgateHeadersInInformationalAnswersAndTrailers(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	a.up.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Scgate-Error"] = []string{"forbidden"}
		h["scgate-caller"] = []string{"admin"}
		h.Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		clear(h)
		h.Set("Content-Type", "text/plain")
		h.Set("Trailer", "Scgate-Error, X-Checksum")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"ok":true}`)
		h.Set("Scgate-Error", "forbidden")
		h.Set("X-Checksum", "abc")
		h.Set(http.TrailerPrefix+"Scgate-Request", "smuggled")
		h.Set(http.TrailerPrefix+"scgate_x", "smuggled")
	})
	conn, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /api/v2/playlists/ HTTP/1.1\r\nHost: "+a.addr+"\r\nX-Test-Caller: admin\r\nTE: trailers\r\n\r\n")
	br := bufio.NewReader(conn)
	early, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if early.StatusCode != http.StatusEarlyHints {
		t.Fatalf("first answer %d, want the 103", early.StatusCode)
	}
	for k := range early.Header {
		if hasPrefixFold(k, "Scgate-") {
			t.Errorf("the 103 carried %s", k)
		}
	}
	if early.Header.Get("Link") == "" {
		t.Error("the 103's Link was lost")
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Scgate-Error") != "" {
		t.Fatalf("%d, Scgate-Error %q", resp.StatusCode, resp.Header.Get("Scgate-Error"))
	}
	for k := range resp.Trailer {
		if hasPrefixFold(k, "Scgate-") {
			t.Errorf("trailer %s reached the caller", k)
		}
	}
	if strings.Contains(strings.ToLower(resp.Header.Get("Trailer")), "scgate") {
		t.Errorf("Trailer announces %q", resp.Header.Get("Trailer"))
	}
	if resp.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("the other trailer was lost: %v", resp.Trailer)
	}
}

// TestLinkAndContentLocationBecomeRelative: the upstream's origin is
// rewritten out of Link targets and Content-Location as out of Location;
// other origins are left alone.
func TestLinkAndContentLocationBecomeRelative(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	up := a.upstream.URL
	a.up.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Location", up+"/api/v2/history/?page=1")
		w.Header().Add("Link", "<"+up+"/api/v2/history/?page=2>; rel=\"next\", <https://docs.example/api>; rel=\"help\"; title=\"<"+up+"/x>\"")
		w.Header().Add("Link", "<"+strings.Replace(up, "http://", "HTTP://", 1)+"/api/v2/history/?page=0>; rel=prev")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	})
	resp, _ := rawDo(t, a.addr, "GET /api/v2/history/ HTTP/1.1\r\nHost: "+a.addr+"\r\nX-Test-Caller: admin\r\n\r\n")
	if got := resp.Header.Get("Content-Location"); got != "/api/v2/history/?page=1" {
		t.Errorf("Content-Location %q", got)
	}
	links := resp.Header.Values("Link")
	want := []string{
		"</api/v2/history/?page=2>; rel=\"next\", <https://docs.example/api>; rel=\"help\"; title=\"<" + up + "/x>\"",
		"</api/v2/history/?page=0>; rel=prev",
	}
	if len(links) != 2 || links[0] != want[0] || links[1] != want[1] {
		t.Errorf("Link %q\nwant %q", links, want)
	}
}
