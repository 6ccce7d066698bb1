package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The stand-in upstream wants exactly one copy of the key.
func TestUpstreamWantsExactlyOneKey(t *testing.T) {
	up := newUpstream(benchKey)
	srv := httptest.NewServer(up)
	defer srv.Close()
	c := &client{}
	ctx := t.Context()
	for _, ch := range directChecks {
		code, body, err := c.do(ctx, srv.URL, ch.method, "/api/v2/playlists/?server=1", ch.header, ch.body)
		if err != nil || code != ch.want {
			t.Fatalf("%s: %d %v", ch.what, code, err)
		}
		if ch.wantBody && (len(body) < 900 || len(body) > 1200) {
			t.Fatalf("the playlists body is %d bytes, want about 1 KB", len(body))
		}
	}
	if s := up.stats(); s.OK != 1 || s.Denied != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// The same-job checks pass the bare proxy and catch a proxy that adds its key
// beside the caller's instead of replacing it.
func TestSameJobChecks(t *testing.T) {
	up := httptest.NewServer(newUpstream(benchKey))
	defer up.Close()
	c := &client{}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	addr := freeAddr(t)
	done := make(chan error, 1)
	bctx, stopBare := context.WithCancel(ctx)
	go func() { done <- runBare(bctx, []string{"-listen", addr, "-upstream", up.URL, "-key", benchKey}) }()
	defer func() { stopBare(); <-done }()
	bare := &target{Name: "bare", URL: "http://" + addr, proc: &proc{}}
	waitFor(t, func() bool { return dialOnce(ctx, addr) == nil })
	if err := c.checkTarget(ctx, bare, up.URL); err != nil {
		t.Fatalf("bare: %v", err)
	}

	u, _ := url.Parse(up.URL)
	appender := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Header.Add("Sc-Api-Key", benchKey) // wrong: keeps the caller's copy
	}})
	defer appender.Close()
	bad := &target{Name: "appender", URL: appender.URL, proc: &proc{}}
	if err := c.checkTarget(ctx, bad, up.URL); err == nil {
		t.Fatal("a proxy that keeps the caller's key passed the checks")
	}
	if err := c.checkTarget(ctx, &target{Name: "direct", URL: up.URL}, up.URL); err != nil {
		t.Fatalf("direct: %v", err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

var _ http.Handler = (*upstream)(nil)

// With -profile the bare proxy writes a CPU profile that the accounting
// reads once it stops, and its -admin page serves the heap the memory
// samples read.
func TestBareProfileAndHeapPage(t *testing.T) {
	up := httptest.NewServer(newUpstream(benchKey))
	defer up.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	addr, admin := freeAddr(t), freeAddr(t)
	path := filepath.Join(t.TempDir(), "sidecar-bare.pprof")
	done := make(chan error, 1)
	bctx, stopBare := context.WithCancel(ctx)
	go func() {
		done <- runBare(bctx, []string{"-listen", addr, "-admin", admin, "-cpuprofile", path, "-upstream", up.URL, "-key", benchKey})
	}()
	stopped := false
	defer func() {
		if !stopped {
			stopBare()
			<-done
		}
	}()
	waitFor(t, func() bool { return dialOnce(ctx, admin) == nil })
	s := sampler{pgid: os.Getpid(), metrics: "http://" + admin + "/metrics", hc: &http.Client{Timeout: 5 * time.Second}}
	if _, _, heap := s.read(ctx); heap <= 0 {
		t.Fatalf("heap %d from the bare proxy's page", heap)
	}
	stopBare()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stopped = true
	a, err := account(path)
	if err != nil {
		t.Fatalf("the profile written at shutdown: %v", err)
	}
	if a.Shares == nil {
		t.Fatal("no accounting")
	}
}
