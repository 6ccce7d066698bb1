package proxy_test

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/metrics"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/cache"
	"github.com/scgate/scgate/proxy/identity"
	"github.com/scgate/scgate/proxy/ratelimit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Test keys: fake, in the broadcaster's format.
const (
	keyAdmin   = "TestAdm1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	keyReader  = "TestRdr1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	keyExpired = "TestExp1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
)

const testVault = `
[callers]
"admin" = "admin"
"reader" = "reader"
"archiver" = "expired"

[[keys.admin]]
secret = "` + keyAdmin + `"

[[keys.reader]]
secret = "` + keyReader + `"

[[keys.expired]]
secret = "` + keyExpired + `"
expires = 2020-01-01T00:00:00Z
`

// headerIdentity makes the X-Test-Caller header the identity, so one test
// server can play several callers. Absent header: no identity.
type headerIdentity struct{}

func (headerIdentity) Resolve(r *http.Request) (string, error) {
	if id := r.Header.Get("X-Test-Caller"); id != "" {
		return id, nil
	}
	return "", identity.ErrNoIdentity
}

type fixedVault struct{ v *keyvault.Vault }

func (f fixedVault) Current() *keyvault.Vault { return f.v }

func parseVault(t testing.TB, src string) *keyvault.Vault {
	t.Helper()
	v, _, err := keyvault.Parse("test-vault.toml", []byte(src), keyvault.LoadOptions{})
	if err != nil {
		t.Fatalf("test vault: %v", err)
	}
	return v
}

// env is a gateway in front of an upstream, both on real loopback sockets.
type env struct {
	t        testing.TB
	standin  *standin.Server
	upstream *httptest.Server
	gateway  *httptest.Server
	handler  *proxy.Handler
	metrics  *metrics.Metrics
}

type envOptions struct {
	upstream  http.Handler // default: a stand-in accepting keyAdmin and keyReader
	vault     proxy.VaultSource
	limiter   *ratelimit.Limiter
	policy    proxy.PolicySource
	transport proxy.TransportOptions
	rt        http.RoundTripper // replaces the transport built from transport
	maxBody   int64
	logger    *zap.Logger
	tlsUp     bool // serve the upstream over TLS with HTTP/2

	rejections   *keyvault.Rejections // failover.go; nil: the handler's default
	replayBody   int64                // Options.ReplayBodyBytes
	check        proxy.RejectionCheck // Options.RejectionCheck
	bufferBudget int64                // Options.BufferBudget
	// identity replaces headerIdentity; proxies, proxyHeaders and
	// stripBearer are passed on as they are.
	identity     identity.Resolver
	proxies      *identity.TrustedProxies
	proxyHeaders []string
	stripBearer  bool
	// hosts, loopbackHosts and allowBrowsers are the Host and browser
	// policy (browser.go).
	hosts         []string
	loopbackHosts bool
	allowBrowsers bool
	trace         proxy.TraceOptions // trace.go
	// cache and panel are Options.Cache and Options.Panel.
	cache *cache.Cache
	panel string
	// metrics replaces the env's own (to share it with a cache).
	metrics *metrics.Metrics
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t, metrics: o.metrics}
	if e.metrics == nil {
		e.metrics = metrics.New()
	}
	if o.upstream == nil {
		si, err := standin.New(standin.Options{Keys: []string{keyAdmin, keyReader}})
		if err != nil {
			t.Fatal(err)
		}
		e.standin = si
		o.upstream = si
	}
	if o.tlsUp {
		e.upstream = httptest.NewUnstartedServer(o.upstream)
		e.upstream.EnableHTTP2 = true
		e.upstream.StartTLS()
		pool := x509.NewCertPool()
		pool.AddCert(e.upstream.Certificate())
		o.transport.RootCAs = pool
	} else {
		e.upstream = httptest.NewServer(o.upstream)
	}
	t.Cleanup(e.upstream.Close)
	if o.vault == nil && o.panel != "" {
		v, _, err := keyvault.Parse("test-vault.toml", []byte(testVault), keyvault.LoadOptions{Panels: []string{o.panel}})
		if err != nil {
			t.Fatal(err)
		}
		o.vault = fixedVault{v}
	}
	if o.vault == nil {
		o.vault = fixedVault{parseVault(t, testVault)}
	}
	u, _ := url.Parse(e.upstream.URL)
	transport := proxy.NewTransport(o.transport)
	t.Cleanup(transport.CloseIdleConnections)
	if o.identity == nil {
		o.identity = headerIdentity{}
	}
	var rt http.RoundTripper = transport
	if o.rt != nil {
		rt = o.rt
	}
	opts := proxy.Options{
		Upstream: u, Transport: rt, Identity: o.identity, Vault: o.vault,
		Limiter: o.limiter, Policy: o.policy, Metrics: e.metrics, MaxBodyBytes: o.maxBody, Logger: o.logger,
		Rejections: o.rejections, ReplayBodyBytes: o.replayBody, RejectionCheck: o.check, BufferBudget: o.bufferBudget,
		TrustedProxies: o.proxies, ProxyHeaders: o.proxyHeaders, StripBearer: o.stripBearer,
		Hosts: o.hosts, LoopbackHosts: o.loopbackHosts, AllowBrowsers: o.allowBrowsers,
		Trace: o.trace,
		Cache: o.cache,
	}
	if o.panel != "" {
		opts.Upstream, opts.Transport = nil, nil
		opts.Panels = []proxy.Panel{{Name: o.panel, Upstream: u, Transport: rt}}
	}
	h, err := proxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = h
	e.gateway = httptest.NewUnstartedServer(h)
	// As proxy.Listen does: let the handler refuse OPTIONS * itself.
	e.gateway.Config.DisableGeneralOptionsHandler = true
	e.gateway.Start()
	t.Cleanup(e.gateway.Close)
	return e
}

// do sends a request as caller ("" for none) and returns the response with
// its body read.
func (e *env) do(method, path, caller string, body io.Reader, hdr http.Header) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.gateway.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if caller != "" {
		req.Header.Set("X-Test-Caller", caller)
	}
	resp, err := e.gateway.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, string(b)
}

// lastUpstream is the last request the stand-in received.
func (e *env) lastUpstream() standin.Request {
	e.t.Helper()
	reqs := e.standin.Requests()
	if len(reqs) == 0 {
		e.t.Fatal("the stand-in received nothing")
	}
	return reqs[len(reqs)-1]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func urlParse(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, nil
	}
	return url.Parse(raw)
}
