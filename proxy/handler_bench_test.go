package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scgate/scgate/metrics"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/identity"
	"github.com/scgate/scgate/proxy/policy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

// cannedTransport answers every request with the same 1 KB JSON response,
// reusing one *http.Response: the handler benchmarks measure the handler,
// not a transport. It is for one goroutine at a time.
type cannedTransport struct {
	resp   http.Response
	body   cannedBody
	data   []byte
	header http.Header
}

func newCannedTransport() *cannedTransport {
	data := bytes.Repeat([]byte(`{"id":1,"name":"playlist"},`), 38)
	data = append(append([]byte{'['}, data[:len(data)-1]...), ']')
	return &cannedTransport{data: data, header: http.Header{
		"Content-Type":   {"application/json"},
		"Content-Length": {strconv.Itoa(len(data) + 2)},
	}}
}

func (c *cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := 0
	for k, v := range r.Header {
		if strings.EqualFold(k, "Sc-Api-Key") {
			n += len(v)
		}
	}
	if n != 1 {
		panic("the benchmark's request did not carry exactly one key")
	}
	c.body.Reset(c.data)
	h := c.resp.Header
	if h == nil {
		h = make(http.Header, 8)
	}
	clear(h)
	for k, v := range c.header {
		h[k] = v
	}
	c.resp = http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: h,
		Body: &c.body, ContentLength: int64(len(c.data)), Request: r}
	return &c.resp, nil
}

type cannedBody struct{ bytes.Reader }

func (*cannedBody) Close() error { return nil }

// discardWriter is a ResponseWriter that keeps nothing but its header map,
// cleared for every request.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// features of the handler benchmarks, turned on one by one so that the cost
// of each is visible.
type features struct {
	chain, policy, limits, metrics, accessLog bool
}

func benchHandler(b *testing.B, f features) {
	b.Helper()
	u, _ := url.Parse("http://127.0.0.1:1")
	opts := benchOptions(b, f, u, newCannedTransport())
	h, err := proxy.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080/api/v2/playlists/?server=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	r.RemoteAddr = "127.0.0.1:40000"
	r.RequestURI = r.URL.RequestURI()
	r.Header.Set("User-Agent", "bench")
	r.Header.Set("Accept", "*/*")
	w := &discardWriter{h: make(http.Header, 8)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// benchOptions are the handler options of the benchmarks with features f,
// towards upstream u through transport.
func benchOptions(b *testing.B, f features, u *url.URL, transport http.RoundTripper) proxy.Options {
	b.Helper()
	var res identity.Resolver
	res, err := identity.Static("admin")
	if err != nil {
		b.Fatal(err)
	}
	opts := proxy.Options{Upstream: u, Transport: transport, Vault: fixedVault{parseVault(b, testVault)}}
	if f.chain {
		cidr, err := identity.NewCIDR(identity.CIDROptions{Rules: []identity.CIDRRule{{Prefix: netip.MustParsePrefix("10.77.0.0/16"), Identity: "reader"}}})
		if err != nil {
			b.Fatal(err)
		}
		res = identity.Chain{cidr, res}
	}
	opts.Identity = res
	if f.policy {
		p, err := policy.New(policy.Options{Sets: map[string][]string{"bench": {"GET /api/v2/history/", "GET /api/v2/playlists/"}},
			Callers: map[string]string{"admin": "bench"}})
		if err != nil {
			b.Fatal(err)
		}
		var h policy.Holder
		h.Store(p)
		opts.Policy = &h
	}
	if f.limits {
		lim, err := ratelimit.New(ratelimit.Options{Limits: ratelimit.Limits{
			Caller: ratelimit.CallerLimits{Bucket: ratelimit.Bucket{Rate: 1e9, Burst: 1e9}, Concurrency: 100_000},
			Key:    ratelimit.Bucket{Rate: 1e9, Burst: 1e9},
		}})
		if err != nil {
			b.Fatal(err)
		}
		opts.Limiter = lim
	}
	if f.metrics {
		opts.Metrics = metrics.New()
	}
	if f.accessLog {
		enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
		opts.Logger = zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	}
	return opts
}

// BenchmarkStdlibReverseProxy is the floor BenchmarkHandler stands on: the
// bench's bare proxy (ReverseProxy with a Rewrite that sets the key and a
// buffer pool) with the same canned transport, request and writer.
func BenchmarkStdlibReverseProxy(b *testing.B) {
	u, _ := url.Parse("http://127.0.0.1:1")
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Del("Sc-Api-Key")
			pr.Out.Header["Sc-Api-Key"] = []string{keyAdmin}
		},
		Transport:  newCannedTransport(),
		BufferPool: arrayPool{},
	}
	r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080/api/v2/playlists/?server=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("User-Agent", "bench")
	r.Header.Set("Accept", "*/*")
	w := &discardWriter{h: make(http.Header, 8)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		rp.ServeHTTP(w, r)
	}
}

// arrayPool lends copy buffers without allocating, like the gateway's.
type arrayPool struct{}

var copyBuffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

func (arrayPool) Get() []byte  { return copyBuffers.Get().(*[32 << 10]byte)[:] }
func (arrayPool) Put(b []byte) { copyBuffers.Put((*[32 << 10]byte)(b)) }

// BenchmarkHandler is the whole gateway handler for one proxied GET with a
// transport that answers at once: every stage, ReverseProxy included, but no
// network. The sub-benchmarks add the features one at a time.
func BenchmarkHandler(b *testing.B) {
	for _, c := range []struct {
		name string
		f    features
	}{
		{"minimal", features{}},
		{"chain", features{chain: true}},
		{"chain+policy", features{chain: true, policy: true}},
		{"chain+policy+limits", features{chain: true, policy: true, limits: true}},
		{"chain+policy+limits+metrics", features{chain: true, policy: true, limits: true, metrics: true}},
		{"full", features{chain: true, policy: true, limits: true, metrics: true, accessLog: true}},
	} {
		b.Run(c.name, func(b *testing.B) { benchHandler(b, c.f) })
	}
}
