package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/metrics"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/cache"
	"github.com/scgate/scgate/proxy/policy"
)

// Panel keys: fake, one per caller and panel, so that a key seen anywhere
// says where it came from.
var panelKeys = map[string]string{
	"north-a": "NorthAa1.FAKEfakeFAKEfakeFAKEfakeFAKEfake",
	"north-b": "NorthBb1.FAKEfakeFAKEfakeFAKEfakeFAKEfake",
	"south-b": "SouthBb1.FAKEfakeFAKEfakeFAKEfakeFAKEfake",
	"south-c": "SouthCc1.FAKEfakeFAKEfakeFAKEfakeFAKEfake",
	"east-c":  "EastCcc1.FAKEfakeFAKEfakeFAKEfakeFAKEfake",
}

var panelNames = []string{"east", "north", "south"}

// holds is which caller holds which key on which panel.
var holds = map[string]map[string]string{
	"a": {"north": "north-a"},
	"b": {"north": "north-b", "south": "south-b"},
	"c": {"south": "south-c", "east": "east-c"},
	"d": {"south": "south-b"}, // a table with one panel: needs no prefix
}

const panelVault = `
[callers]
"a" = "north-a"
"b" = { north = "north-b", south = "south-b" }
"c" = { south = "south-c", east = "east-c" }

[callers."d"]
south = "south-b"

[[keys.north-a]]
upstream = "north"
secret = "NorthAa1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"

[[keys.north-b]]
upstream = "north"
secret = "NorthBb1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"

[[keys.south-b]]
upstream = "south"
secret = "SouthBb1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"

[[keys.south-c]]
upstream = "south"
secret = "SouthCc1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"

[[keys.east-c]]
upstream = "east"
secret = "EastCcc1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
`

// panelEnv is a gateway in front of three stand-in panels, each on its own
// loopback socket and accepting only its own keys.
type panelEnv struct {
	t        *testing.T
	standins map[string]*standin.Server
	origins  map[string]*httptest.Server
	gateway  *httptest.Server
	handler  *proxy.Handler
	metrics  *metrics.Metrics
}

type panelEnvOptions struct {
	routing  proxy.PanelRouting
	upstream map[string]http.Handler // replaces a panel's stand-in
	rate     float64                 // every panel's rate cap
	vault    string
	public   *url.URL       // Options.PublicURL
	cache    *cache.Cache   // Options.Cache
	policy   *policy.Holder // Options.Policy
}

func newPanelEnv(t *testing.T, o panelEnvOptions) *panelEnv {
	t.Helper()
	e := &panelEnv{t: t, standins: map[string]*standin.Server{}, origins: map[string]*httptest.Server{}, metrics: metrics.New()}
	var panels []proxy.Panel
	for _, name := range panelNames {
		var own []string
		for k, v := range panelKeys {
			if strings.HasPrefix(k, name+"-") {
				own = append(own, v)
			}
		}
		h := o.upstream[name]
		if h == nil {
			si, err := standin.New(standin.Options{Keys: own})
			if err != nil {
				t.Fatal(err)
			}
			e.standins[name], h = si, si
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		e.origins[name] = srv
		u, _ := url.Parse(srv.URL)
		tr := proxy.NewTransport(proxy.TransportOptions{})
		t.Cleanup(tr.CloseIdleConnections)
		panels = append(panels, proxy.Panel{Name: name, Upstream: u, Transport: tr, Rate: o.rate, Burst: 1})
	}
	src := o.vault
	if src == "" {
		src = panelVault
	}
	v, _, err := keyvault.Parse("panels.toml", []byte(src), keyvault.LoadOptions{Panels: panelNames})
	if err != nil {
		t.Fatal(err)
	}
	opts := proxy.Options{
		Panels: panels, PanelRouting: o.routing, Identity: headerIdentity{}, Vault: fixedVault{v}, Metrics: e.metrics,
		PublicURL: o.public, Cache: o.cache,
	}
	if o.policy != nil {
		opts.Policy = o.policy
	}
	h, err := proxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = h
	e.gateway = httptest.NewServer(h)
	t.Cleanup(e.gateway.Close)
	return e
}

// send sends a GET of path as caller, with an optional Host.
func (e *panelEnv) send(caller, host, path string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", e.gateway.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("X-Test-Caller", caller)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// received is every key prefix each panel's stand-in saw, and how many
// requests it saw.
func (e *panelEnv) received() (map[string][]string, int) {
	seen, n := map[string][]string{}, 0
	for name, si := range e.standins {
		for _, rq := range si.Requests() {
			n++
			seen[name] = append(seen[name], rq.KeyPrefixes...)
		}
	}
	return seen, n
}

func (e *panelEnv) reset() {
	for _, si := range e.standins {
		si.Reset()
	}
}

// checkNoStrayKey fails when a panel received a key that is not its own.
func (e *panelEnv) checkNoStrayKey() {
	e.t.Helper()
	seen, _ := e.received()
	for panel, prefixes := range seen {
		for _, p := range prefixes {
			own := false
			for name, secret := range panelKeys {
				if keyvault.Prefix(secret) == p && strings.HasPrefix(name, panel+"-") {
					own = true
				}
			}
			if !own {
				e.t.Errorf("panel %s received key prefix %s, which is not one of its keys", panel, p)
			}
		}
	}
}

// TestEveryCallerAgainstEveryPanel drives each caller against each panel,
// by path prefix and without, and proves that a key reaches its own panel's
// origin only: a caller's request to a panel it holds a key on carries that
// key to that origin and nowhere else; any other request reaches no origin.
func TestEveryCallerAgainstEveryPanel(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	for _, caller := range []string{"a", "b", "c", "d", "stranger"} {
		for _, panel := range append(slices.Clone(panelNames), "west", "") {
			e.reset()
			path := "/panels/" + panel + "/api/v2/playlists/?server=1"
			if panel == "" {
				path = "/api/v2/playlists/?server=1"
			}
			resp, body := e.send(caller, "", path)
			seen, n := e.received()
			want := panel
			if panel == "" && len(holds[caller]) == 1 {
				for p := range holds[caller] {
					want = p // the caller's only panel
				}
			}
			key, held := holds[caller][want]
			switch {
			case held:
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s → %q: status %d: %s", caller, panel, resp.StatusCode, body)
				}
				if n != 1 || !slices.Equal(seen[want], []string{keyvault.Prefix(panelKeys[key])}) {
					t.Errorf("%s → %q: panels saw %v, want only %s with %s", caller, panel, seen, want, keyvault.Prefix(panelKeys[key]))
				}
			case caller == "stranger":
				checkCode(t, resp, body, proxy.CodeForbidden, http.StatusForbidden)
			case panel == "west" || panel == "":
				checkCode(t, resp, body, proxy.CodeUnknownPanel, http.StatusNotFound)
			default:
				checkCode(t, resp, body, proxy.CodePanelForbidden, http.StatusForbidden)
			}
			if !held && n != 0 {
				t.Errorf("%s → %q: refused, yet the panels saw %v", caller, panel, seen)
			}
			e.checkNoStrayKey()
		}
	}
}

func checkCode(t *testing.T, resp *http.Response, body, code string, status int) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Scgate-Error") != code || !strings.Contains(body, `"error":"`+code+`"`) {
		t.Errorf("%s %s: status %d, Scgate-Error %q, body %s; want %d %s", resp.Request.Method, resp.Request.URL.Path,
			resp.StatusCode, resp.Header.Get("Scgate-Error"), body, status, code)
	}
}

// TestPanelPathTricks: a caller holding a key on north only tries to steer
// it to south through the path. Each trick either stays on north (the key's
// own panel) or is refused before any panel; south never sees a request.
func TestPanelPathTricks(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	for _, tc := range []struct {
		path   string
		status int    // 0: forwarded to north
		code   string // when refused
	}{
		{"/panels/south/../north/api/v2/playlists/", http.StatusBadRequest, proxy.CodeBadRequest},     // dot segments
		{"/panels/north/../south/api/v2/playlists/", http.StatusBadRequest, proxy.CodeBadRequest},     // dot segments after the prefix
		{"/panels/north/%2e%2e/south/api/v2/playlists/", http.StatusBadRequest, proxy.CodeBadRequest}, // encoded dots
		{"/panels/south%2Fapi/v2/playlists/", http.StatusNotFound, proxy.CodeUnknownPanel},            // encoded slash in the name
		{"/panels/north%2F..%2Fsouth/api/v2/playlists/", http.StatusNotFound, proxy.CodeUnknownPanel},
		{"/panels/%73outh/api/v2/playlists/", http.StatusNotFound, proxy.CodeUnknownPanel}, // an escaped letter
		{"/panels/SOUTH/api/v2/playlists/", http.StatusNotFound, proxy.CodeUnknownPanel},   // case
		{"/panels/North/api/v2/playlists/", http.StatusNotFound, proxy.CodeUnknownPanel},   // case of its own panel
		{"/panels//api/v2/playlists/", http.StatusNotFound, proxy.CodeUnknownPanel},        // empty name
		{"/panels/south", http.StatusNotFound, proxy.CodeUnknownPanel},                     // no path after the name
		{"//panels/south/api/v2/playlists/", http.StatusBadRequest, proxy.CodeBadRequest},  // doubled slash
		{"/panels/north/panels/south/api/v2/playlists/", 0, ""},                            // a second prefix is only a path on north
		{"/api/v2/../../panels/south/api/v2/playlists/", http.StatusBadRequest, proxy.CodeBadRequest},
	} {
		e.reset()
		resp, body := e.send("a", "", tc.path)
		seen, _ := e.received()
		if len(seen["south"]) > 0 || len(e.standins["south"].Requests()) > 0 {
			t.Errorf("%s: south received a request", tc.path)
		}
		if tc.status == 0 {
			if resp.Header.Get("Scgate-Error") != "" || len(e.standins["north"].Requests()) != 1 {
				t.Errorf("%s: want it forwarded to north, got %d %s", tc.path, resp.StatusCode, body)
			}
			continue
		}
		checkCode(t, resp, body, tc.code, tc.status)
		if _, n := e.received(); n != 0 {
			t.Errorf("%s: refused, yet a panel received it", tc.path)
		}
	}
	e.checkNoStrayKey()
}

// TestHostCannotChoosePanelInPathMode: in path mode the Host header is not
// read for the panel, whatever it names.
func TestHostCannotChoosePanelInPathMode(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	for _, host := range []string{"south", "south.gw.test", "panels", e.origins["south"].Listener.Addr().String()} {
		e.reset()
		resp, body := e.send("a", host, "/api/v2/playlists/?server=1")
		if resp.StatusCode != http.StatusOK || len(e.standins["north"].Requests()) != 1 || len(e.standins["south"].Requests()) != 0 {
			t.Errorf("Host %q: status %d (%s); want it on north only", host, resp.StatusCode, body)
		}
	}
	e.checkNoStrayKey()
}

// TestPanelByHost chooses the panel by Host: NAME.<suffix>, any case and
// port; a Host outside the suffix names no panel; a deeper name is not a
// panel; and a /panels/ prefix is not read.
func TestPanelByHost(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{routing: proxy.PanelRouting{ByHost: true, HostSuffix: "gw.test"}})
	for _, tc := range []struct {
		caller, host, path string
		panel              string // where it must arrive; "" refused
		code               string
	}{
		{"b", "south.gw.test", "/api/v2/playlists/", "south", ""},
		{"b", "NORTH.GW.TEST:8443", "/api/v2/playlists/", "north", ""},
		{"b", "north.gw.test.", "/api/v2/playlists/", "north", ""},
		{"a", "south.gw.test", "/api/v2/playlists/", "", proxy.CodePanelForbidden},
		{"a", "x.south.gw.test", "/api/v2/playlists/", "", proxy.CodeUnknownPanel},
		{"b", "gw.test", "/api/v2/playlists/", "", proxy.CodeUnknownPanel},
		{"b", "south.gw.test.evil", "/api/v2/playlists/", "", proxy.CodeUnknownPanel},
		{"a", "elsewhere.example", "/api/v2/playlists/", "north", ""},          // its only panel
		{"a", "north.gw.test", "/panels/south/api/v2/playlists/", "north", ""}, // forwarded as a path on north
	} {
		e.reset()
		resp, body := e.send(tc.caller, tc.host, tc.path+"?server=1")
		seen, n := e.received()
		if tc.panel == "" {
			if resp.Header.Get("Scgate-Error") != tc.code || n != 0 {
				t.Errorf("%s at %s: %d %s, panels saw %v; want %s and nothing sent", tc.caller, tc.host, resp.StatusCode, body, seen, tc.code)
			}
			continue
		}
		if n != 1 || len(seen[tc.panel]) != 1 || resp.Header.Get("Scgate-Error") != "" {
			t.Errorf("%s at %s: %d %s, panels saw %v; want it on %s", tc.caller, tc.host, resp.StatusCode, body, seen, tc.panel)
		}
	}
	e.checkNoStrayKey()
}

// TestPanelLinksKeepThePrefix: Location and pagination links on the
// panel's own origin come back with the /panels/NAME prefix; a Location on
// another panel's origin is not turned into a path on this one.
func TestPanelLinksKeepThePrefix(t *testing.T) {
	var southURL, northURL string
	north := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v2/playlists/1/":
			http.Redirect(w, r, northURL+"/api/v2/playlists/2/", http.StatusFound)
		default:
			http.Redirect(w, r, southURL+"/api/v2/playlists/3/", http.StatusFound)
		}
	})
	e := newPanelEnv(t, panelEnvOptions{upstream: map[string]http.Handler{"north": north}})
	northURL, southURL = e.origins["north"].URL, e.origins["south"].URL
	resp, _ := e.send("b", "", "/panels/north/api/v2/playlists/1/")
	if got := resp.Header.Get("Location"); got != "/panels/north/api/v2/playlists/2/" {
		t.Errorf("Location %q, want /panels/north/api/v2/playlists/2/", got)
	}
	resp, _ = e.send("b", "", "/panels/north/api/v2/playlists/9/")
	if got := resp.Header.Get("Location"); got != southURL+"/api/v2/playlists/3/" {
		t.Errorf("a Location on south's origin became %q", got)
	}
	resp, body := e.send("b", "", "/panels/south/api/v2/history/?limit=1&server=1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"next":"`+e.gateway.URL+`/panels/south/api/v2/history/`) {
		t.Errorf("pagination link without the prefix: %d %s", resp.StatusCode, body)
	}
}

// TestPanelRateCap: a panel's rate cap refuses with 429 before the panel,
// and another panel is not affected.
func TestPanelRateCap(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{rate: 0.001})
	if resp, body := e.send("b", "", "/panels/north/api/v2/playlists/?server=1"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: %d %s", resp.StatusCode, body)
	}
	resp, body := e.send("b", "", "/panels/north/api/v2/playlists/?server=1")
	checkCode(t, resp, body, proxy.CodeRateLimited, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" || len(e.standins["north"].Requests()) != 1 {
		t.Errorf("Retry-After %q, north saw %d requests", resp.Header.Get("Retry-After"), len(e.standins["north"].Requests()))
	}
	if resp, body := e.send("b", "", "/panels/south/api/v2/playlists/?server=1"); resp.StatusCode != http.StatusOK {
		t.Errorf("south, under its own cap: %d %s", resp.StatusCode, body)
	}
}

// TestCanaryGoesToTheKeysPanel: a key refused by its panel is confirmed by
// a canary probe to that same panel, with that key; no other panel sees
// the probe or the key.
func TestCanaryGoesToTheKeysPanel(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	e.standins["south"].SetKeys(nil) // south revokes every key
	resp, _ := e.send("b", "", "/panels/south/api/v2/playlists/?server=1")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want the panel's 403", resp.StatusCode)
	}
	canaries := 0
	for _, rq := range e.standins["south"].Requests() {
		if rq.Header.Get("User-Agent") == proxy.CanaryUserAgent {
			canaries++
			if !slices.Equal(rq.KeyPrefixes, []string{keyvault.Prefix(panelKeys["south-b"])}) {
				t.Errorf("the canary carried %v", rq.KeyPrefixes)
			}
		}
	}
	if canaries != 1 {
		t.Errorf("south saw %d canary probes, want 1", canaries)
	}
	for _, name := range []string{"north", "east"} {
		if n := len(e.standins[name].Requests()); n != 0 {
			t.Errorf("%s saw %d requests", name, n)
		}
	}
	if got := testutil.ToFloat64(e.metrics.KeyRejections.WithLabelValues("south", "south-b", keyvault.Prefix(panelKeys["south-b"]))); got != 1 {
		t.Errorf("scgate_upstream_key_rejections_total{panel=\"south\"} = %v, want 1", got)
	}
	e.checkNoStrayKey()
}

// TestExplainChoosesThePanelAsServeHTTP: Explain reports the panel the
// request would go to, from the same decision.
func TestExplainChoosesThePanelAsServeHTTP(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{})
	for _, tc := range []struct{ caller, target, panel, code string }{
		{"b", "/panels/south/api/v2/history/", "south", ""},
		{"a", "/api/v2/history/", "north", ""},
		{"a", "/panels/south/api/v2/history/", "south", proxy.CodePanelForbidden},
		{"b", "/api/v2/history/", "", proxy.CodeUnknownPanel},
	} {
		d := e.handler.Explain(context.Background(), tc.caller, "GET", tc.target)
		if d.Panel != tc.panel || d.Code != tc.code {
			t.Errorf("%s %s: panel %q code %q; want %q %q", tc.caller, tc.target, d.Panel, d.Code, tc.panel, tc.code)
		}
	}
}

// TestPanelByHostLinksKeepTheHost: in host mode the Host names the panel,
// so rewritten pagination links keep it even with a public URL (whose
// scheme they take).
func TestPanelByHostLinksKeepTheHost(t *testing.T) {
	public, _ := url.Parse("https://gateway.example")
	e := newPanelEnv(t, panelEnvOptions{routing: proxy.PanelRouting{ByHost: true, HostSuffix: "gw.test"}, public: public})
	resp, body := e.send("b", "south.gw.test", "/api/v2/history/?limit=1&server=1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"next":"https://south.gw.test/api/v2/history/`) {
		t.Errorf("%d %s; want the next link on https://south.gw.test", resp.StatusCode, body)
	}
}

// TestCacheSharedEntriesArePerPanel: a route cached for every key of a
// panel is one entry per panel: south's answer is never served for north,
// and both prefixed and bare requests of a one-panel caller share south's.
func TestCacheSharedEntriesArePerPanel(t *testing.T) {
	const channels = "/api/v2/channels/"
	c := newCache(t, cache.Options{}, map[string]time.Duration{"GET " + channels: time.Minute}, "GET "+channels)
	e := newPanelEnv(t, panelEnvOptions{cache: c})
	e.send("b", "", "/panels/north"+channels)
	resp, _ := e.send("b", "", "/panels/south"+channels)
	if len(e.standins["south"].Requests()) != 1 || strings.Contains(resp.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("south was answered from north's entry: Cache-Status %q", resp.Header.Get("Cache-Status"))
	}
	resp, _ = e.send("d", "", channels) // d's only panel is south
	if !strings.HasPrefix(resp.Header.Get("Cache-Status"), "scgate; hit") || len(e.standins["south"].Requests()) != 1 {
		t.Fatalf("south's shared entry not used: Cache-Status %q", resp.Header.Get("Cache-Status"))
	}
	if n := len(e.standins["north"].Requests()); n != 1 {
		t.Fatalf("north saw %d requests", n)
	}
	e.checkNoStrayKey()
}

// Threat: a station list naming another panel's radio. Station ids are each
// panel's own, so a station-scoped caller holding keys on several panels is
// refused on every panel rather than allowed station 3 of each; the same
// scope with a key on one panel only is allowed there.
func TestStationScopeNeedsOnePanel(t *testing.T) {
	e := newPanelEnv(t, panelEnvOptions{policy: holderOf(t, policy.Options{
		Sets:     map[string][]string{"station3": {"* /api/v2/**"}},
		Stations: map[string][]int{"station3": {3}},
		Callers:  map[string]string{"b": "station3", "d": "station3"},
	})})
	for _, path := range []string{"/panels/north/api/v2/playlists/?server=3", "/panels/south/api/v2/playlists/?server=3"} {
		resp, body := e.send("b", "", path)
		checkCode(t, resp, body, proxy.CodeStationForbidden, http.StatusForbidden)
		if !strings.Contains(body, "several panels") {
			t.Errorf("%s: the refusal does not say why: %s", path, body)
		}
	}
	if _, n := e.received(); n != 0 {
		t.Fatalf("%d requests of a caller scoped across panels reached a broadcaster", n)
	}
	resp, body := e.send("d", "", "/api/v2/playlists/?server=3")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("caller scoped on its one panel: %s %s", resp.Status, body)
	}
	e.checkNoStrayKey()
}
