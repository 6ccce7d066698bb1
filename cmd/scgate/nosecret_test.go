package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/identity"
)

// Distinctive fake keys for TestNoSecretAnywhere. Each must show up only in
// the SC-API-KEY header the upstream receives.
const (
	leakActive  = "NoLeakA1.zQ7vActiveSecretPartXk29Lp"    // listed, active, refused by the broadcaster
	leakStandby = "NoLeakB2.zQ7vStandbySecretPartXk29Lp"   // the standby the gateway fails over to
	leakExpired = "NoLeakE3.zQ7vExpiredSecretPartXk29Lp"   // only version of a lapsed key
	leakLimited = "NoLeakL4.zQ7vLimitedSecretPartXk29Lp"   // key of a rate-limited caller
	leakOpaque  = "opaque-read-only-secret-7f3e9a1c55d04b" // not key-shaped: its prefix is a hash
	leakRotated = "NoLeakN5.zQ7vRotatedSecretPartXk29Lp"   // svc's new version, added by a reload
	leakBroken  = "NoLeakX6.zQ7vBrokenSecretPartXk29Lp"    // in a vault refused for a CR/LF
)

var allLeaks = []string{leakActive, leakStandby, leakExpired, leakLimited, leakOpaque, leakRotated, leakBroken}

// leakedIn reports which secrets s holds, whole or by their private part.
func leakedIn(s string) []string {
	var found []string
	for _, k := range allLeaks {
		private := k
		if i := strings.IndexByte(k, '.'); i >= 0 {
			private = k[i+1:]
		}
		if strings.Contains(s, k) || strings.Contains(s, private) {
			found = append(found, keyvault.Prefix(k))
		}
	}
	return found
}

func noSecretVault(rotated bool) string {
	v := `[callers]
"svc" = "svc"
"lapsed" = "lapsed"
"limited" = "limited"
"ro" = "ro"

[[keys.svc]]
secret = "` + leakStandby + `"
not_before = 2020-01-01T00:00:00Z

[[keys.svc]]
secret = "` + leakActive + `"
not_before = 2021-01-01T00:00:00Z

[[keys.lapsed]]
secret = "` + leakExpired + `"
expires = 2022-01-01T00:00:00Z

[[keys.limited]]
secret = "` + leakLimited + `"
expires = 2036-01-01T00:00:00Z

[[keys.ro]]
secret_file = "ro.key"
`
	if rotated {
		v += "\n[[keys.svc]]\nsecret = \"" + leakRotated + "\"\nnot_before = 2023-01-01T00:00:00Z\n"
	}
	return v
}

// keyCheckingUpstream is the stand-in behind a check of every request: a
// vault secret may appear in the SC-API-KEY header only, once. /api/v2/slow/
// waits for the gateway to give up; /api/v2/cut/ dies in mid-body.
type keyCheckingUpstream struct {
	si *standin.Server
	mu sync.Mutex
	// misplaced lists where a secret was found other than SC-API-KEY.
	misplaced []string
	sent      map[string]int // secret prefix -> requests that carried it
}

func (u *keyCheckingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	var elsewhere strings.Builder
	fmt.Fprintf(&elsewhere, "%s %s\n", r.Method, r.URL.RequestURI())
	var keys []string
	for k, vs := range r.Header {
		if strings.EqualFold(k, "SC-API-KEY") {
			keys = append(keys, vs...)
			continue
		}
		fmt.Fprintf(&elsewhere, "%s: %s\n", k, strings.Join(vs, ", "))
	}
	elsewhere.Write(body)
	u.mu.Lock()
	if l := leakedIn(elsewhere.String()); len(l) > 0 {
		u.misplaced = append(u.misplaced, fmt.Sprintf("%s %s: %v outside SC-API-KEY", r.Method, r.URL.Path, l))
	}
	if len(keys) > 1 {
		u.misplaced = append(u.misplaced, fmt.Sprintf("%s %s: %d SC-API-KEY values", r.Method, r.URL.Path, len(keys)))
	}
	for _, k := range keys {
		u.sent[keyvault.Prefix(k)]++
	}
	u.mu.Unlock()
	switch r.URL.Path {
	case "/api/v2/slow/":
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	case "/api/v2/cut/":
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"partial":`))
		_ = http.NewResponseController(w).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
	default:
		u.si.ServeHTTP(w, r)
	}
}

// lockedBuffer is the log's destination: the gateway writes from many
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// callerFrom makes requests from a loopback source address, which the cidr
// resolver turns into the caller's identity.
func callerFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       15 * time.Second,
	}
}

// panicTransport fails the way a bug on the request path would: a runtime
// panic while it holds the outbound request, key and all.
type panicTransport struct{}

func (panicTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(req.Header["SC-API-KEY"]) == 0 { // set under that exact name by the gateway
		return nil, errors.New("no key on the outbound request")
	}
	var seen map[string]int
	seen[req.Header.Get("X-Request-Id")]++ // assignment to entry in nil map
	return nil, nil
}

// TestNoSecretAnywhere drives distinctive fake keys through every path: a
// success, a failover after the broadcaster refuses the active version,
// every gateway error code (401, 403 without a key, 403 by route policy, 413,
// 400, 429, 503, 502, 504), an upstream cut in mid-body (ReverseProxy's
// recovered abort), a runtime panic on the request path recovered by the
// server, a caller sending another caller's key, a vault reload with an
// audit line and a refused reload of a vault with a CR/LF secret, debug-level
// logs, /metrics, /healthz, /readyz, and the output of check, keys, keys
// --json, keys verify and check --fail-on-expiry. A secret may appear only in
// the SC-API-KEY header the upstream received.
func TestNoSecretAnywhere(t *testing.T) {
	si, err := standin.New(standin.Options{Keys: []string{leakStandby, leakLimited, leakOpaque, leakRotated}})
	if err != nil {
		t.Fatal(err)
	}
	up := &keyCheckingUpstream{si: si, sent: map[string]int{}}
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()

	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "keys.toml")
	replaceFile(t, filepath.Join(dir, "ro.key"), leakOpaque+"\n")
	replaceFile(t, vaultPath, noSecretVault(false))
	cfgPath := filepath.Join(dir, "config.toml")
	replaceFile(t, cfgPath, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
max_body_bytes = 1024
shutdown_delay = "0s"
[admin]
listen = "127.0.0.1:0"
[upstream]
url = %q
response_header_timeout = "300ms"
[vault]
file = "keys.toml"
poll_interval = "50ms"
[identity.cidr]
"127.0.0.1/32" = "svc"
"127.0.0.2/32" = "nokey"
"127.0.0.3/32" = "lapsed"
"127.0.0.4/32" = "limited"
"127.0.0.5/32" = "ro"
[limits.callers."limited"]
rate = 0.001
burst = 1
[policy.sets]
ro = ["GET /api/v2/**"]
[policy.callers]
"ro" = "ro"
[log]
level = "debug"
`, upSrv.URL))

	// The gateway as cmdRun builds it, logging JSON at debug level.
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	// No access-log batching: every line is in logs as soon as it is written.
	logger, stopLogs, err := gateway.NewLogger(cfg.Log, logs, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopLogs)
	g, err := gateway.Build(cfg, gateway.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, nil) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	defer func() { _ = stop() }()
	waitUntil(t, "readiness", func() bool { return g.Ready() == nil })
	base := "http://" + g.Addr().String()
	admin := "http://" + g.AdminAddr().String()

	var seen strings.Builder // everything a caller or operator got to see
	call := func(ip, method, path string, body io.Reader, hdr http.Header, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := callerFrom(ip).Do(req)
		if err != nil && want == 0 {
			return // the upstream cut the answer: the caller sees the connection end
		}
		if err != nil {
			t.Fatalf("%s %s from %s: %v", method, path, ip, err)
		}
		dump, derr := httputil.DumpResponse(resp, true)
		resp.Body.Close()
		seen.Write(dump)
		if want == 0 { // or in mid-body: an error, never a complete answer
			if derr == nil {
				t.Fatalf("%s %s: a cut answer read as complete", method, path)
			}
			return
		}
		if resp.StatusCode != want {
			t.Fatalf("%s %s from %s: %d, want %d\n%s", method, path, ip, resp.StatusCode, want, dump)
		}
	}
	playlist := `{"name":"nosecret","is_random":true,"server":1}`
	call("127.0.0.1", "GET", "/api/v2/playlists/?server=1", nil, nil, 200) // refused with the active version, retried with the standby
	call("127.0.0.1", "POST", "/api/v2/playlists/", strings.NewReader(playlist), http.Header{"Content-Type": {"application/json"}}, 201)
	call("127.0.0.1", "GET", "/api/v2/channels/?server=1", nil, http.Header{"Sc-Api-Key": {leakLimited}}, 200)
	call("127.0.0.6", "GET", "/api/v2/history/", nil, nil, 401)
	call("127.0.0.2", "GET", "/api/v2/history/", nil, nil, 403)
	call("127.0.0.5", "POST", "/api/v2/playlists/", strings.NewReader(playlist), nil, 403)
	call("127.0.0.5", "GET", "/api/v2/playlists/?server=1", nil, nil, 200)
	call("127.0.0.3", "GET", "/api/v2/history/", nil, nil, 503)
	call("127.0.0.4", "GET", "/api/v2/history/", nil, nil, 200)
	call("127.0.0.4", "GET", "/api/v2/history/", nil, nil, 429)
	call("127.0.0.1", "POST", "/api/v2/playlists/", strings.NewReader(strings.Repeat("x", 2048)), nil, 413)
	call("127.0.0.1", "GET", "/api/v2/%2e%2e/admin/", nil, nil, 400)
	call("127.0.0.1", "GET", "/api/v2/slow/", nil, nil, 504)
	call("127.0.0.1", "GET", "/api/v2/cut/", nil, nil, 0)

	// A runtime panic on the request path, recovered by the HTTP server: a
	// second handler on the same vault, metrics and logger whose transport
	// panics while it holds the keyed request.
	upURL, _ := url.Parse(upSrv.URL)
	resolver, err := identity.NewCIDR(cfg.Identity.CIDROptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	ph, err := proxy.New(proxy.Options{Upstream: upURL, Transport: panicTransport{}, Identity: resolver, Vault: staticVault{g.Vault()},
		Metrics: g.Metrics(), Logger: logger.Named("access")})
	if err != nil {
		t.Fatal(err)
	}
	psrv, err := proxy.Listen(ph, proxy.ServerOptions{Name: "gateway", Addr: "127.0.0.1:0", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(context.Background())
	pdone := make(chan error, 1)
	go func() { pdone <- proxy.Run(pctx, proxy.LifecycleOptions{Gateways: []*proxy.Server{psrv}}) }()
	if resp, err := callerFrom("127.0.0.1").Get("http://" + psrv.Addr().String() + "/api/v2/history/"); err == nil {
		b, _ := httputil.DumpResponse(resp, true)
		t.Fatalf("the panicking handler answered:\n%s", b)
	}
	pcancel()
	if err := <-pdone; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the panic to be logged", func() bool { return strings.Contains(logs.String(), "assignment to entry in nil map") })

	// A reload that adds a version (audit line).
	replaceFile(t, vaultPath, noSecretVault(true))
	waitUntil(t, "the rotation", func() bool { return strings.Contains(logs.String(), keyvault.Prefix(leakRotated)) })
	call("127.0.0.1", "GET", "/api/v2/playlists/?server=1", nil, nil, 200) // now with the new version

	// Operators' views.
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		code, body := get(t, http.DefaultClient, admin+path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
		seen.WriteString(body)
	}
	cli := func(wantCode int, args ...string) {
		t.Helper()
		code, out, errOut := run(t, append(args, "--config", cfgPath)...)
		seen.WriteString(out + errOut)
		if code != wantCode {
			t.Errorf("%v: exit %d, want %d: %s%s", args, code, wantCode, out, errOut)
		}
	}
	cli(0, "check")
	cli(1, "check", "--fail-on-expiry", "262800h") // the limited key lapses in 2036, within 30 years
	cli(0, "keys")
	cli(0, "keys", "--json")
	cli(0, "keys", "verify") // the refused version is a standby now
	cli(0, "keys", "verify", "--json")

	// A vault refused for a secret with a CR/LF in it: the last good vault
	// keeps serving, and neither the log nor check quotes the secret.
	replaceFile(t, vaultPath, noSecretVault(true)+"\n[[keys.broken]]\nsecret = \""+leakBroken+"\\r\\nX-Injected: 1\"\n")
	waitUntil(t, "the refused reload", func() bool { return strings.Contains(logs.String(), "keeping the last good vault") })
	call("127.0.0.1", "GET", "/api/v2/playlists/?server=1", nil, nil, 200)
	cli(1, "check")
	cli(1, "keys")

	// 502: the broadcaster is gone.
	upSrv.Close()
	call("127.0.0.1", "GET", "/api/v2/history/", nil, nil, 502)

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	logText := logs.String()
	for name, text := range map[string]string{"the log": logText, "what callers and operators saw": seen.String()} {
		if l := leakedIn(text); len(l) > 0 {
			t.Errorf("%s holds the secrets of %v", name, l)
		}
	}
	for _, want := range []string{`"level":"debug"`, "panic serving", "the broadcaster refused a key version", "vault reloaded",
		"vault reload failed", "unauthenticated", "forbidden", "upstream_timeout", "upstream_unavailable", "payload_too_large",
		"rate_limited", "no_valid_key", "bad_request", `"status":499`} {
		if !strings.Contains(logText, want) {
			t.Errorf("the log lacks %q: a path this test means to cover did not run", want)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, m := range up.misplaced {
		t.Error(m)
	}
	for _, k := range []string{leakActive, leakStandby, leakLimited, leakOpaque, leakRotated} {
		if up.sent[keyvault.Prefix(k)] == 0 {
			t.Errorf("the upstream never received %s: the path that sends it did not run", keyvault.Prefix(k))
		}
	}
	if up.sent[keyvault.Prefix(leakBroken)] != 0 {
		t.Error("the upstream received the secret of a vault that was refused")
	}
	if n := countLines(logText); n < 20 {
		t.Errorf("only %d log lines: the logger did not capture the run", n)
	}
}

func countLines(s string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
	}
	return n
}

func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestAttackKeysVerifyDoesNotFollowRedirects: keys verify sends every key
// version to the broadcaster; a broadcaster (or something in its place) that
// redirects must not get them forwarded elsewhere. The redirect is reported
// as an answer, and the other host hears nothing.
func TestAttackKeysVerifyDoesNotFollowRedirects(t *testing.T) {
	var hits int
	var mu sync.Mutex
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	}))
	defer foreign.Close()
	// A made-up key gets 403, as from the broadcaster, so verify goes on to
	// send the real one, which is redirected.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("SC-API-KEY") != leakStandby {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		http.Redirect(w, r, foreign.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer up.Close()
	p := writeSetup(t, up.URL, "", "[callers]\n\"svc\" = \"k\"\n[[keys.k]]\nsecret = \""+leakStandby+"\"\n")
	code, out, errOut := run(t, "keys", "verify", "--config", p)
	if code != exitInvalid || !strings.Contains(out+errOut, "answered 307") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatalf("keys verify followed the redirect: the other host received %d requests", hits)
	}
	if l := leakedIn(out + errOut); len(l) > 0 {
		t.Fatalf("keys verify printed %v", l)
	}
}

// staticVault serves one vault snapshot.
type staticVault struct{ v *keyvault.Vault }

func (s staticVault) Current() *keyvault.Vault { return s.v }
