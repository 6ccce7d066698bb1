package proxy_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy"
)

// BenchmarkLoopback is one proxied GET through real loopback sockets: a
// keep-alive client, the proxy on its own listener and a stand-in upstream
// answering 1 KB of JSON, all in this process. "bare" is the bench's bare
// proxy (httputil.ReverseProxy on an http.Server); the others are scgate's
// proxy.Listen server and handler with the features of BenchmarkHandler. The
// client and the upstream are the same for all, so the differences in
// allocs/op and ns/op are the proxies' own, net/http's server and
// http.Transport included.
func BenchmarkLoopback(b *testing.B) {
	for _, c := range []struct {
		name string
		f    *features // nil: the bare proxy
	}{
		{"bare", nil},
		{"minimal", &features{}},
		{"full", &features{chain: true, policy: true, limits: true, metrics: true, accessLog: true}},
	} {
		b.Run(c.name, func(b *testing.B) { benchLoopback(b, c.f) })
	}
}

func benchLoopback(b *testing.B, f *features) {
	up := loopbackUpstream(b)
	u, _ := url.Parse("http://" + up)
	var addr string
	if f == nil {
		addr = bareProxy(b, u)
	} else {
		h, err := proxy.New(benchOptions(b, *f, u, proxy.NewTransport(proxy.TransportOptions{})))
		if err != nil {
			b.Fatal(err)
		}
		srv, err := proxy.Listen(h, proxy.ServerOptions{Name: "gateway", Addr: "127.0.0.1:0"})
		if err != nil {
			b.Fatal(err)
		}
		serveUntilCleanup(b, srv)
		addr = srv.Addr().String()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	b.Cleanup(client.CloseIdleConnections)
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v2/playlists/?server=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.ReadFull(resp.Body, buf)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != len(loopbackBody) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}

// loopbackBody is the stand-in upstream's answer.
var loopbackBody = append(append([]byte{'['}, bytes.Repeat([]byte(`{"id":1,"name":"playlist"},`), 40)[:40*27-1]...), ']')

// loopbackUpstream serves loopbackBody to requests with exactly one key and
// returns its address.
func loopbackUpstream(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	length := []string{strconv.Itoa(len(loopbackBody))}
	ct := []string{"application/json"}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header["Sc-Api-Key"]) != 1 {
			http.Error(w, "key", http.StatusForbidden)
			return
		}
		w.Header()["Content-Length"] = length
		w.Header()["Content-Type"] = ct
		_, _ = w.Write(loopbackBody)
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// bareProxy is the bench's bare proxy (bench/bare.go) on a loopback port.
func bareProxy(b *testing.B, u *url.URL) string {
	b.Helper()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Del("Sc-Api-Key")
			pr.Out.Header["Sc-Api-Key"] = []string{keyAdmin}
		},
		Transport:  &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 2 * time.Minute},
		BufferPool: arrayPool{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
