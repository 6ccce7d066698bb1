package proxy_test

// Attack tests: black-box requests against a running gateway on a
// real socket, served by proxy.Listen with its real server limits, in front
// of an upstream that records every request it parsed and every byte it
// read. Each case names the status the attacker gets and what must not reach
// the upstream. docs/testing.md ("What we test") lists them with the older tests that
// already covered an attack.

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
)

// attackerKey is a key an attacker would like the broadcaster to receive.
const attackerKey = "Attack01.ATTACKattackATTACKattackATTACK"

// seenRequest is one request as the upstream parsed it.
type seenRequest struct {
	Method, Path string
	Header       http.Header
	Trailer      http.Header
	Body         []byte
	BodyErr      error // reading the body failed (it was cut)
}

// wireUpstream answers every request with a small JSON body and records
// what it received, parsed and raw.
type wireUpstream struct {
	mu   sync.Mutex
	reqs []seenRequest
	raw  bytes.Buffer
	// answer, when set, writes the response instead (after the request was
	// recorded).
	answer func(w http.ResponseWriter, r *http.Request)
}

func (u *wireUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	u.mu.Lock()
	u.reqs = append(u.reqs, seenRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(),
		Trailer: r.Trailer.Clone(), Body: body, BodyErr: err})
	answer := u.answer
	u.mu.Unlock()
	if answer != nil {
		answer(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// setAnswer makes f write the upstream's answers (nil: the default one).
func (u *wireUpstream) setAnswer(f func(w http.ResponseWriter, r *http.Request)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.answer = f
}

// reset forgets what was recorded (fuzzing would otherwise pile it up).
func (u *wireUpstream) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reqs, u.raw = nil, bytes.Buffer{}
}

func (u *wireUpstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.reqs...)
}

func (u *wireUpstream) rawBytes() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.raw.String()
}

// teeListener copies every byte read from accepted connections into the
// upstream's raw record.
type teeListener struct {
	net.Listener
	u *wireUpstream
}

func (l teeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &teeConn{Conn: c, u: l.u}, nil
}

type teeConn struct {
	net.Conn
	u *wireUpstream
}

func (c *teeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.u.mu.Lock()
		c.u.raw.Write(b[:n])
		c.u.mu.Unlock()
	}
	return n, err
}

// attackEnv is a gateway served by proxy.Listen (read-header, read and
// header-size limits as in production) in front of a wireUpstream.
type attackEnv struct {
	*env
	up   *wireUpstream
	addr string // the proxy.Listen gateway
}

func newAttackEnv(t testing.TB, o envOptions, so proxy.ServerOptions) *attackEnv {
	t.Helper()
	up := &wireUpstream{}
	if o.upstream == nil {
		o.upstream = up
	}
	e := newEnv(t, o)
	// Record the upstream's raw bytes: restart it behind a tee on the same
	// address, so the gateway's upstream URL stays valid.
	addr := e.upstream.Listener.Addr().String()
	e.upstream.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("re-listening on the upstream's address: %v", err)
	}
	e.upstream = &httptest.Server{Listener: teeListener{ln, up}, Config: &http.Server{Handler: o.upstream}}
	e.upstream.Start()
	t.Cleanup(e.upstream.Close)

	so.Name, so.Addr = "gateway", "127.0.0.1:0"
	srv, err := proxy.Listen(e.gateway.Config.Handler, so)
	if err != nil {
		t.Fatal(err)
	}
	serveUntilCleanup(t, srv)
	return &attackEnv{env: e, up: up, addr: srv.Addr().String()}
}

// exchange is what came back on one connection.
type exchange struct {
	resps  []*http.Response
	bodies []string
	err    error // how reading ended, if not with a clean EOF
}

// rawExchange writes raw bytes on a new connection and reads up to n
// responses, or fewer if the gateway closes the connection first. (It does
// not half-close: Go's server takes that for a caller who went away.)
func rawExchange(t *testing.T, addr, raw string, n int) exchange {
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
	var x exchange
	br := bufio.NewReader(conn)
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				x.err = err
			}
			return x
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		x.resps = append(x.resps, resp)
		x.bodies = append(x.bodies, string(b))
		if err != nil {
			x.err = err
			return x
		}
	}
	return x
}

func (x exchange) statuses() []int {
	var s []int
	for _, r := range x.resps {
		s = append(s, r.StatusCode)
	}
	return s
}

// mark is where the upstream's records stood before an attack.
type mark struct{ reqs, raw int }

func (u *wireUpstream) mark() mark {
	u.mu.Lock()
	defer u.mu.Unlock()
	return mark{len(u.reqs), u.raw.Len()}
}

// since returns the requests and raw bytes received after m.
func (u *wireUpstream) since(m mark) ([]seenRequest, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.reqs[m.reqs:]...), u.raw.String()[m.raw:]
}

// checkUpstreamClean asserts that every request the upstream parsed after m
// carried exactly the caller's key, once, under the canonical name, and no
// header a caller must not choose; that no header line on the wire names a
// key other than want; and that the markers never crossed the wire at all.
func checkUpstreamClean(t *testing.T, up *wireUpstream, m mark, want string, markers ...string) {
	t.Helper()
	reqs, raw := up.since(m)
	for i, r := range reqs {
		var keys []string
		for k, vs := range r.Header {
			switch {
			case headerNameIs(k, "SC-API-KEY"):
				if k != "Sc-Api-Key" {
					t.Errorf("request %d: key header spelt %q", i, k)
				}
				keys = append(keys, vs...)
			case hasPrefixFold(k, "Scgate-") || headerNameIs(k, "Forwarded") || hasPrefixFold(k, "X-Forwarded-") ||
				headerNameIs(k, "Upgrade") || headerNameIs(k, "Trailer") || headerNameIs(k, "Proxy-Authorization") ||
				headerNameIs(k, "Keep-Alive"):
				t.Errorf("request %d (%s %s): the upstream received %s: %q", i, r.Method, r.Path, k, vs)
			}
		}
		if id := r.Header.Values("X-Request-Id"); len(id) != 1 || id[0] == "" {
			t.Errorf("request %d: X-Request-Id %q, want the gateway's one", i, id)
		}
		for k := range r.Trailer {
			t.Errorf("request %d: the upstream received trailer %s", i, k)
		}
		if len(keys) != 1 || keys[0] != want {
			t.Errorf("request %d (%s %s): the upstream received keys %v, want only %s", i, r.Method, r.Path,
				prefixes(keys), keyvault.Prefix(want))
		}
	}
	for _, line := range strings.Split(raw, "\n") {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
		if ok && headerNameIs(strings.TrimSpace(name), "SC-API-KEY") && strings.TrimSpace(value) != want {
			t.Errorf("a key line other than the caller's key crossed the wire: %s: %s…", name, keyvault.Prefix(strings.TrimSpace(value)))
		}
	}
	for _, mk := range markers {
		if strings.Contains(raw, mk) {
			t.Errorf("%q crossed the wire to the upstream", mk)
		}
	}
}

func prefixes(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = keyvault.Prefix(k)
	}
	return out
}

// headerNameIs compares header names as a WSGI or CGI upstream would: case
// folded and with "_" read as "-".
func headerNameIs(k, name string) bool {
	if len(k) != len(name) {
		return false
	}
	for i := 0; i < len(k); i++ {
		a, b := k[i], name[i]
		if a == '_' {
			a = '-'
		}
		if b == '_' {
			b = '-'
		}
		if a|0x20 != b|0x20 {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && headerNameIs(s[:len(prefix)], prefix)
}

const smuggled = "GET /api/v2/smuggled/ HTTP/1.1\r\nHost: gw\r\nSC-API-KEY: " + attackerKey + "\r\n\r\n"

// TestAttackCallerChoosesItsKey: a caller's own SC-API-KEY, in forms that
// TestCallerSuppliedKeyNeverReachesUpstream and
// TestRawDuplicateKeyHeadersAreStripped do not send: in trailers, under the
// names a WSGI or CGI broadcaster reads as the same header, named in
// Connection, or smuggled into another header's value. Every request gets the
// caller's own key and nothing of the attacker's.
func TestAttackCallerChoosesItsKey(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	head := "POST /api/v2/playlists/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: reader\r\n"
	cases := []struct {
		name, raw string
		status    []int
	}{
		{"key in a chunked trailer", head + "Transfer-Encoding: chunked\r\nTrailer: SC-API-KEY\r\n\r\n" +
			"2\r\n{}\r\n0\r\nSC-API-KEY: " + attackerKey + "\r\n\r\n", []int{200}},
		{"key in a trailer spelt in lower case", head + "Transfer-Encoding: chunked\r\n\r\n" +
			"2\r\n{}\r\n0\r\nsc-api-key: " + attackerKey + "\r\nScgate-Caller: admin\r\n\r\n", []int{200}},
		{"underscores (WSGI reads SC_API_KEY as SC-API-KEY)", head + "Content-Length: 0\r\nSC_API_KEY: " + attackerKey + "\r\n\r\n", []int{200}},
		{"mixed underscores", head + "Content-Length: 0\r\nsc-api_key: " + attackerKey + "\r\nScgate_Caller: admin\r\n\r\n", []int{200}},
		{"named in Connection with other hop-by-hop headers", head + "Content-Length: 0\r\nConnection: SC-API-KEY, X-Request-Id, Keep-Alive, Proxy-Authorization\r\n" +
			"SC-API-KEY: " + attackerKey + "\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic " + attackerKey + "\r\nTE: trailers\r\n\r\n", []int{200}},
		{"empty value", head + "Content-Length: 0\r\nSC-API-KEY:\r\n\r\n", []int{200}},
		{"bare LF ends the header line before a key", head + "Content-Length: 0\r\nX-Note: a\nSC-API-KEY: " + attackerKey + "\r\n\r\n", []int{200}},
		// Go replaces the fold with a space (RFC 9112 §5.2): the key text is
		// then part of X-Note's value, never a header line of its own.
		{"obsolete line folding carries a key", head + "Content-Length: 0\r\nX-Note: a\r\n SC-API-KEY: " + attackerKey + "\r\n\r\n", []int{200}},
		{"bare CR inside a value", head + "Content-Length: 0\r\nX-Note: a\rSC-API-KEY: " + attackerKey + "\r\n\r\n", []int{400}},
		{"space before the colon", head + "Content-Length: 0\r\nSC-API-KEY : " + attackerKey + "\r\n\r\n", []int{400}},
		{"NUL in a value", head + "Content-Length: 0\r\nX-Note: a\x00SC-API-KEY: " + attackerKey + "\r\n\r\n", []int{400}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := a.up.mark()
			x := rawExchange(t, a.addr, c.raw, len(c.status))
			if got := x.statuses(); !slices.Equal(got, c.status) {
				t.Fatalf("statuses %v, want %v (%v) %q", got, c.status, x.err, x.bodies)
			}
			reqs, _ := a.up.since(m)
			if c.status[0] == 200 && len(reqs) != 1 {
				t.Fatalf("the upstream received %d requests, want 1", len(reqs))
			}
			if c.status[0] != 200 && len(reqs) != 0 {
				t.Fatal("a refused request reached the upstream")
			}
			checkUpstreamClean(t, a.up, m, keyReader)
		})
	}
}

// TestAttackTrailerOverHTTP2: the same trailer from an HTTP/2 client, over
// TLS, where trailers are a HEADERS frame after the DATA.
func TestAttackTrailerOverHTTP2(t *testing.T) {
	up := &wireUpstream{}
	e := newEnv(t, envOptions{upstream: up})
	gw := httptest.NewUnstartedServer(e.gateway.Config.Handler)
	gw.EnableHTTP2 = true
	gw.StartTLS()
	defer gw.Close()
	body := &trailerBody{r: strings.NewReader(`{"name":"x"}`)}
	req, _ := http.NewRequest("POST", gw.URL+"/api/v2/playlists/", body)
	req.Header.Set("X-Test-Caller", "reader")
	req.Trailer = http.Header{"Sc-Api-Key": nil, "Scgate-Caller": nil}
	body.trailer = req.Trailer
	client := gw.Client()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/2.0" {
		t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
	}
	if len(up.requests()) != 1 {
		t.Fatalf("the upstream received %d requests", len(up.requests()))
	}
	checkUpstreamClean(t, up, mark{}, keyReader)
}

// trailerBody fills in the trailer values when the body is done, as the
// http.Request docs describe.
type trailerBody struct {
	r       io.Reader
	trailer http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.trailer.Set("Sc-Api-Key", attackerKey)
		b.trailer.Set("Scgate-Caller", "admin")
	}
	return n, err
}

// TestAttackProtocolUpgrade: a caller asking for WebSocket or h2c must not
// get a tunnel to the broadcaster, which would carry later traffic past the
// route policy, the limits and the access log. The upgrade headers never
// reach the upstream; the request is served as a plain one, and an upstream
// that switches protocols anyway gets 502.
func TestAttackProtocolUpgrade(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	for name, hdr := range map[string]string{
		"websocket": "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
		"h2c":       "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			m := a.up.mark()
			x := rawExchange(t, a.addr, "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n"+hdr+"\r\n", 1)
			if got := x.statuses(); !slices.Equal(got, []int{200}) {
				t.Fatalf("statuses %v (%v)", got, x.err)
			}
			reqs, _ := a.up.since(m)
			if len(reqs) != 1 {
				t.Fatalf("the upstream received %d requests", len(reqs))
			}
			for _, h := range []string{"Upgrade", "Http2-Settings", "Connection"} {
				if v := reqs[0].Header.Values(h); len(v) > 0 {
					t.Errorf("the upstream received %s: %q", h, v)
				}
			}
			checkUpstreamClean(t, a.up, m, keyAdmin)
		})
	}

	t.Run("upstream switches protocols anyway", func(t *testing.T) {
		a.up.setAnswer(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "websocket")
			w.WriteHeader(http.StatusSwitchingProtocols)
		})
		defer a.up.setAnswer(nil)
		x := rawExchange(t, a.addr, "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n"+
			"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 1)
		if len(x.resps) != 1 || x.resps[0].StatusCode != http.StatusBadGateway || x.resps[0].Header.Get("Scgate-Error") != proxy.CodeUpstreamUnavailable {
			t.Fatalf("statuses %v (%v) %q, want one 502 upstream_unavailable", x.statuses(), x.err, x.bodies)
		}
	})
}

// TestAttackRequestSmuggling: framing that two HTTP parsers could read
// differently. The gateway refuses it (400 from the HTTP server or 400
// bad_request from the gateway, 501 from the HTTP server) and closes the
// connection, or reads it one way and re-frames what it forwards, so the
// request hidden in the body never reaches the broadcaster as a request of
// its own, and never with the attacker's key. TestAmbiguousFramingClosesTheConnection
// has the cases where the hidden request would otherwise carry the vault key.
func TestAttackRequestSmuggling(t *testing.T) {
	a := newAttackEnv(t, envOptions{}, proxy.ServerOptions{})
	post := "POST /api/v2/playlists/ HTTP/1.1\r\nHost: gw\r\nX-Test-Caller: admin\r\n"
	cases := []struct {
		name, raw string
		status    []int // every response on the connection, in order
	}{
		// A single status means the connection must close after it:
		// rawExchange then sees the end before another answer.
		{"CL.TE: Content-Length and chunked", post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"TE.CL: chunked and a longer Content-Length", post + "Transfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"two different Content-Lengths", post + "Content-Length: 0\r\nContent-Length: 60\r\n\r\n" + smuggled, []int{400}},
		{"Content-Length with a sign", post + "Content-Length: +0\r\n\r\n" + smuggled, []int{400}},
		{"Transfer-Encoding chunked twice", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{501}},
		{"Transfer-Encoding identity", post + "Transfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n" + smuggled, []int{501}},
		{"Transfer-Encoding folded onto the next line", post + "Content-Length: 0\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"bare LF in a chunk-size line", post + "Transfer-Encoding: chunked\r\n\r\n0\n\r\n" + smuggled, []int{400}},
		{"chunk extension with a bare LF", post + "Transfer-Encoding: chunked\r\n\r\n2;x\nab\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"chunked on HTTP/1.0", strings.Replace(post, "HTTP/1.1", "HTTP/1.0", 1) + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"bare LF line endings throughout", strings.ReplaceAll(post+"Content-Length: 2\r\n\r\n{}", "\r\n", "\n") + smuggled, []int{200, 401}},
		{"two Host headers", "GET /api/v2/history/ HTTP/1.1\r\nHost: gw\r\nHost: evil.example\r\nX-Test-Caller: admin\r\n\r\n", []int{400}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := a.up.mark()
			n := len(c.status)
			closes := len(c.status) == 1
			if closes {
				n++ // and then the end of the connection
			}
			x := rawExchange(t, a.addr, c.raw, n)
			if got := x.statuses(); !slices.Equal(got, c.status) || x.err != nil {
				t.Fatalf("statuses %v, want %v (%v) %q", got, c.status, x.err, x.bodies)
			}
			checkUpstreamClean(t, a.up, m, keyAdmin, "/api/v2/smuggled/")
		})
	}
}

// serveUntilCleanup runs srv through proxy.Run until the test ends, then
// shuts it down and reports an error from its run.
func serveUntilCleanup(t testing.TB, srv *proxy.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- proxy.Run(ctx, proxy.LifecycleOptions{Gateways: []*proxy.Server{srv}, ShutdownTimeout: 5 * time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
}
