package proxy

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
)

// BenchmarkHeaderRewrite is stage 1 and the outbound rewrite: the inbound
// strip, then what Rewrite does to the request sent upstream (strip again,
// set the key and the request id).
func BenchmarkHeaderRewrite(b *testing.B) {
	u, _ := url.Parse("http://127.0.0.1:1")
	v, _, err := keyvault.Parse("bench.toml", []byte("[callers]\n\"a\" = \"k\"\n[[keys.k]]\nsecret = \"BenchKey.FAKEfakeFAKEfakeFAKEfake\"\n"), keyvault.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ver, err := v.Select("a", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	h := &Handler{strip: newStripper(nil, nil, false)}
	st := &state{id: "0123456789abcdef0123456789abcdef", version: ver, route: "/api/v2/playlists/",
		panel: &panel{name: keyvault.DefaultPanel, upstream: u, upstreamHost: hostPort(u)}}
	in, _ := http.NewRequestWithContext(context.WithValue(context.Background(), stateKey{}, st), "GET", "http://gw/api/v2/playlists/?server=1", nil)
	in.Header = http.Header{"User-Agent": {"bench"}, "Accept": {"*/*"}, "Sc-Api-Key": {"caller's own"}}
	out := in.Clone(in.Context())
	hdr := make(http.Header, 8)
	callerKey := []string{"caller's own"}
	b.ReportAllocs()
	for b.Loop() {
		clear(hdr)
		for k, v := range in.Header {
			hdr[k] = v
		}
		h.strip.inbound(in)
		in.Header["Sc-Api-Key"] = callerKey
		out.Header = hdr
		h.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	}
}

// BenchmarkRouteOf is the metric label of a path.
func BenchmarkRouteOf(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if routeOf("/api/v2/playlists/12/tracks/3/") == routeOther {
			b.Fatal("unknown route")
		}
	}
}
