package proxy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/policy"
)

// fuzzGateway is a gateway whose every caller may only GET /api/v2/**, in
// front of a recording upstream, for the fuzz targets that send raw bytes.
func fuzzGateway(f *testing.F) *attackEnv {
	return newAttackEnv(f, envOptions{policy: holderOf(f, policy.Options{
		Sets: map[string][]string{"ro": {"GET /api/v2/**"}}, Default: "ro",
	})}, proxy.ServerOptions{ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, IdleTimeout: time.Second})
}

// completeRequests counts the requests Go's parser reads whole from raw, the
// way the server reads a connection: each body to its end before the next.
func completeRequests(raw []byte) int {
	br := bufio.NewReader(bytes.NewReader(raw))
	n := 0
	for n < 20 {
		req, err := http.ReadRequest(br)
		if err != nil {
			return n
		}
		if _, err := io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20)); err != nil {
			return n
		}
		n++
		if req.Close {
			return n
		}
	}
	return n
}

// sendRaw writes raw to the gateway and reads the answers to the requests in
// it that are complete, then hangs up; the gateway may close first.
func sendRaw(t *testing.T, addr string, raw []byte) []byte {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		return nil // the gateway refused the bytes and closed: nothing to read
	}
	var got bytes.Buffer
	br := bufio.NewReader(io.TeeReader(conn, &got))
	for range completeRequests(raw) {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			break
		}
	}
	return got.Bytes()
}

// checkForwarded asserts the gateway's invariants on whatever reached the
// upstream: only what the policy allows (GET or HEAD under /api/v2), each
// request with exactly one key, the caller's own, and nothing a caller must
// not choose; and no key in what the caller got back.
func checkForwarded(t *testing.T, up *wireUpstream, answers []byte) {
	t.Helper()
	for _, r := range up.requests() {
		if (r.Method != "GET" && r.Method != "HEAD") || (r.Path != "/api/v2" && !strings.HasPrefix(r.Path, "/api/v2/")) {
			t.Fatalf("the policy allows GET /api/v2/** only, but the upstream received %s %q", r.Method, r.Path)
		}
		var keys []string
		for k, vs := range r.Header {
			switch {
			case headerNameIs(k, "SC-API-KEY"):
				keys = append(keys, vs...)
			case hasPrefixFold(k, "Scgate-") || headerNameIs(k, "Forwarded") || hasPrefixFold(k, "X-Forwarded-") ||
				headerNameIs(k, "Upgrade") || headerNameIs(k, "Proxy-Authorization"):
				t.Fatalf("the upstream received %s: %q", k, vs)
			}
		}
		if len(keys) != 1 || (keys[0] != keyAdmin && keys[0] != keyReader) {
			t.Fatalf("the upstream received keys %v", prefixes(keys))
		}
		if len(r.Trailer) > 0 {
			t.Fatalf("the upstream received trailers %v", r.Trailer)
		}
	}
	for _, line := range strings.Split(up.rawBytes(), "\n") {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
		if v := strings.TrimSpace(value); ok && headerNameIs(strings.TrimSpace(name), "SC-API-KEY") && v != keyAdmin && v != keyReader {
			t.Fatalf("a key line crossed the wire: %q", line)
		}
	}
	for _, k := range []string{keyAdmin, keyReader, keyExpired} {
		if bytes.Contains(answers, []byte(k[9:])) {
			t.Fatalf("a key came back to the caller: %q", answers)
		}
	}
}

// FuzzRawRequestThroughGateway sends a request line and a caller's identity,
// then whatever bytes the fuzzer makes: more headers, bodies, framing,
// pipelined requests, smuggling attempts. Whatever the gateway makes of
// them, the upstream only ever receives requests the policy allows, each
// with exactly the caller's key.
func FuzzRawRequestThroughGateway(f *testing.F) {
	g := fuzzGateway(f)
	for _, s := range []string{
		"\r\n",
		"SC-API-KEY: " + attackerKey + "\r\n\r\n",
		"sc_api_key: " + attackerKey + "\r\nScgate-Error: x\r\nConnection: close\r\n\r\n",
		"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"Transfer-Encoding: chunked\r\nTrailer: SC-API-KEY\r\n\r\n2\r\nab\r\n0\r\nSC-API-KEY: " + attackerKey + "\r\n\r\n",
		"Content-Length: 0\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"Connection: Upgrade, SC-API-KEY\r\nUpgrade: h2c\r\n\r\n",
		"X-Note: a\nSC-API-KEY: " + attackerKey + "\r\n\r\n",
		"\r\nPOST /api/v2/playlists/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: reader\r\nContent-Length: 2\r\n\r\n{}",
		"\r\nGET /api/v2/%2e%2e/admin HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	const head = "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n"
	f.Fuzz(func(t *testing.T, tail []byte) {
		g.up.reset()
		answers := sendRaw(t, g.addr, append([]byte(head), tail...))
		checkForwarded(t, g.up, answers)
	})
}

// FuzzHeaderThroughGateway gives the fuzzer one header's name and value
// (which may hold line breaks, and so more headers or requests). The same
// invariants hold.
func FuzzHeaderThroughGateway(f *testing.F) {
	g := fuzzGateway(f)
	for _, s := range [][2]string{
		{"SC-API-KEY", attackerKey}, {"sc_api_key", attackerKey}, {"Sc-Api-Key ", attackerKey},
		{"Connection", "SC-API-KEY, X-Request-Id"}, {"X-Forwarded-For", "10.0.0.1"}, {"Scgate-Caller", "admin"},
		{"X-Note", "a\r\nSC-API-KEY: " + attackerKey}, {"X-Note", "a\r\n SC-API-KEY: " + attackerKey},
		{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}, {"X-Test-Caller", "reader"}, {"X-Request-Id", "../../x"},
	} {
		f.Add(s[0], s[1])
	}
	const head = "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n"
	f.Fuzz(func(t *testing.T, name, value string) {
		g.up.reset()
		answers := sendRaw(t, g.addr, []byte(head+name+": "+value+"\r\n\r\n"))
		checkForwarded(t, g.up, answers)
	})
}

// FuzzUpstreamAnswer has the upstream answer with any status, Location,
// content type and body. The caller gets the status and the body unchanged,
// except that a Location or a top-level next/previous link on the upstream's
// origin now points at the gateway; a JSON body stays valid (or invalid)
// JSON; and nothing of the key comes back.
func FuzzUpstreamAnswer(f *testing.F) {
	type answer struct {
		status   int
		location string
		ctype    string
		body     []byte
	}
	var next atomic.Pointer[answer]
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := next.Load()
		if a.location != "" {
			w.Header()["Location"] = []string{a.location}
		}
		w.Header().Set("Content-Type", a.ctype)
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	})
	e := newEnv(f, envOptions{upstream: up})
	upHost := e.upstream.Listener.Addr().String()
	origin := "http://" + upHost
	// A bare transport, not a Client: a Client parses a 3xx's Location (and
	// fails on one such as "%") before any redirect policy is asked, and
	// this target checks what the gateway sends, not what a client follows.
	client := &http.Transport{}
	f.Cleanup(client.CloseIdleConnections)
	for _, s := range []struct {
		status   int
		location string
		json     bool
		body     string
	}{
		{200, "", true, `{"count":2,"next":"` + origin + `/api/v2/history/?offset=1","previous":null,"results":[1]}`},
		{200, "", true, `{"next":"HTTP://` + upHost + `/x","previous":"//` + upHost + `/y"}`},
		{200, "", true, `{"next":"http:\/\/` + upHost + `\/x","next":"` + origin + `/z"}`},
		{200, "", true, `[{"next":"` + origin + `/x"}]`},
		{200, "", true, `{"next":"` + origin + `/x"` + "\n"},
		{200, "", false, `{"next":"` + origin + `/x"}`},
		{302, origin + "/api/v2/history/", false, ""},
		{301, "//" + upHost + "/a?b=c", false, "moved"},
		{307, "https://elsewhere.example/x", false, ""},
		{404, "", true, `{"detail":"Not found."}`},
	} {
		f.Add(uint16(s.status), s.location, s.json, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status uint16, location string, isJSON bool, body []byte) {
		a := &answer{status: 200 + int(status)%400, location: location, ctype: "text/plain", body: body}
		if strings.ContainsAny(location, "\r\n") {
			a.location = "" // Go's server would not send it as one header
		}
		if isJSON {
			a.ctype = "application/json"
		}
		next.Store(a)
		req, _ := http.NewRequest("GET", e.gateway.URL+"/api/v2/history/", nil)
		req.Header.Set("X-Test-Caller", "admin")
		resp, err := client.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !validFieldValue(a.location) {
			// The gateway's transport refuses such an answer: the caller
			// gets a clean 502, not a broken header.
			if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Scgate-Error") != proxy.CodeUpstreamUnavailable {
				t.Fatalf("Location %q: status %d (Scgate-Error %q), want 502", a.location, resp.StatusCode, resp.Header.Get("Scgate-Error"))
			}
			return
		}
		if resp.StatusCode != a.status || resp.Header.Get("Scgate-Error") != "" {
			t.Fatalf("status %d (Scgate-Error %q), the upstream said %d", resp.StatusCode, resp.Header.Get("Scgate-Error"), a.status)
		}
		if loc := resp.Header.Get("Location"); onUpstream(loc, upHost) {
			t.Fatalf("Location %q came back as %q: still on the upstream", a.location, loc)
		}
		if bytes.Contains(got, []byte(keyAdmin[9:])) {
			t.Fatal("the key came back in the body")
		}
		if !isJSON || a.status == http.StatusNoContent || a.status == http.StatusNotModified {
			if a.status != http.StatusNoContent && a.status != http.StatusNotModified && !bytes.Equal(got, body) {
				t.Fatalf("a non-JSON body changed: %q -> %q", body, got)
			}
			return
		}
		if json.Valid(got) != json.Valid(body) {
			t.Fatalf("JSON validity changed: %q -> %q", body, got)
		}
		var page map[string]json.RawMessage
		if json.Unmarshal(got, &page) != nil {
			return
		}
		for _, k := range []string{"next", "previous"} {
			var link string
			if json.Unmarshal(page[k], &link) == nil && onUpstream(link, upHost) {
				t.Fatalf("%s link %q still on the upstream: %q", k, link, got)
			}
		}
	})
}

// validFieldValue is RFC 9110's field-value: no control characters but tab.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// onUpstream reports whether link is an absolute URL (as a client would
// follow it) on the upstream's host:port.
func onUpstream(link, upHost string) bool {
	u, err := url.Parse(link)
	if err != nil || u.Host == "" {
		return false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443"}[strings.ToLower(u.Scheme)]
		if port == "" {
			port = "80"
		}
	}
	return strings.EqualFold(net.JoinHostPort(u.Hostname(), port), upHost)
}
