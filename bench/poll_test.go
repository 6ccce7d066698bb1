package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/cache"
	"github.com/scgate/scgate/proxy/identity"
	"github.com/scgate/scgate/proxy/policy"
)

type staticVault struct{ v *keyvault.Vault }

func (s staticVault) Current() *keyvault.Vault { return s.v }

// The poll scenario at a smaller scale, through real sockets: 20 pollers
// every 100 ms through a gateway caching now playing for 1 s. The bench
// upstream sees at most one request per second of the run (plus the
// edges), and every poller is answered.
func TestPollThroughTheCacheSparesTheUpstream(t *testing.T) {
	u := newUpstream(benchKey)
	up := httptest.NewServer(u)
	defer up.Close()
	v, _, err := keyvault.Parse("keys.toml", []byte(vaultFile(benchKey, 1, 1)), keyvault.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	route, err := policy.ParseRule("GET /api/v2/history/")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Options{Rules: []cache.Rule{{Route: route, TTL: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	upURL, _ := url.Parse(up.URL)
	tr := proxy.NewTransport(proxy.TransportOptions{})
	defer tr.CloseIdleConnections()
	id, err := identity.Static("bench-caller")
	if err != nil {
		t.Fatal(err)
	}
	h, err := proxy.New(proxy.Options{Upstream: upURL, Transport: tr, Identity: id, Vault: staticVault{v}, Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(h)
	defer gw.Close()

	load := pollLoad{URL: gw.URL, Pollers: 20, Interval: 100 * time.Millisecond, Duration: 3 * time.Second}
	before := u.stats()
	pl := load.run(context.Background())
	after := u.stats()
	ok, note := pollVerdict("scgate-cache", load, pl, after.History-before.History)
	if !ok {
		t.Fatalf("%s (%d requests, %d upstream, p50 %v p99 %v)", note, pl.Requests, after.History-before.History, pl.P50, pl.P99)
	}
	if n := after.History - before.History; n < 2 {
		t.Fatalf("the upstream saw %d requests in %v: the cache never refreshed", n, pl.Elapsed)
	}
	// The verdict fails a caching target whose upstream saw more.
	if ok, note := pollVerdict("scgate-cache", load, pl, int64(pl.Elapsed/time.Second)+3); ok || !strings.Contains(note, "over one per second") {
		t.Fatalf("verdict of too many upstream requests: %v %q", ok, note)
	}
	// The same load without the cache reaches the upstream every time.
	direct := load
	direct.URL, direct.Duration = up.URL, time.Second
	direct.Header = http.Header{"Sc-Api-Key": {benchKey}}
	before = u.stats()
	pl = direct.run(context.Background())
	if got := u.stats().History - before.History; pl.Errors != 0 || got < pl.Requests {
		t.Fatalf("direct: %d errors, upstream saw %d of %d", pl.Errors, got, pl.Requests)
	}
}
