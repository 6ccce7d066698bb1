package statuspage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
	"github.com/scgate/scgate/proxy/ratelimit"
)

var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// The secrets of the test vault: the part after the dot must never appear.
const (
	secretExpiring = "expiring.AAAAsecretpartexpiring0000"
	secretNext     = "nextnext.BBBBsecretpartnext00000000"
	secretExpired  = "expired1.CCCCsecretpartexpired00000"
	secretRejected = "rejected.DDDDsecretpartrejected0000"
	secretStandby  = "standby1.EEEEsecretpartstandby00000"
	secretPending  = "pending1.FFFFsecretpartpending00000"
)

var allSecrets = []string{secretExpiring, secretNext, secretExpired, secretRejected, secretStandby, secretPending}

// stateVault holds one key in each state the page must show: expiring
// (inside expiry_warn_before), expired, rejected (with its standby) and
// pending, and callers whose names try to inject markup.
const stateVault = `
[callers]
"radio-expiring" = "expiring"
"radio-expired" = "gone"
"radio-rejected" = "refused"
"radio-pending" = "later"
"<script>alert('caller')</script>" = "expiring"
"x\" onmouseover=\"alert(1)" = "<img src=x onerror=alert('key')>"

[[keys.expiring]]
secret = "` + secretExpiring + `"
expires = 2026-12-10T00:00:00Z

[[keys.gone]]
secret = "` + secretExpired + `"
expires = 2026-12-01T00:00:00Z

[[keys.refused]]
secret = "` + secretStandby + `"

[[keys.refused]]
secret = "` + secretRejected + `"
not_before = 2026-11-01T00:00:00Z

[[keys.later]]
secret = "` + secretPending + `"
not_before = 2026-12-20T00:00:00Z

[[keys."<img src=x onerror=alert('key')>"]]
secret = "` + secretNext + `"
`

type fixture struct {
	vault   *keyvault.Vault
	rej     *keyvault.Rejections
	limiter *ratelimit.Limiter
	reloads *ReloadLog
	page    *Page
	srv     *httptest.Server
	dials   int
}

func newFixture(t *testing.T, vaultText string) *fixture {
	t.Helper()
	f := &fixture{vault: vaulttest.Parse(t, vaultText), reloads: &ReloadLog{}}
	clock := func() time.Time { return now }
	var err error
	if f.rej, err = keyvault.NewRejections(keyvault.RejectionsOptions{Now: clock, CoolDown: 5 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if k := f.vault.Key("refused"); k != nil {
		f.rej.Reject(k.Versions[1])
	}
	f.limiter, err = ratelimit.New(ratelimit.Options{Now: clock, Limits: ratelimit.Limits{
		Caller: ratelimit.CallerLimits{Bucket: ratelimit.Bucket{Rate: 1, Burst: 5}, Concurrency: 4},
		Key:    ratelimit.Bucket{Rate: 10, Burst: 20},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.reloads.Add(Reload{At: now.Add(-time.Hour), OK: true, Summary: "vault loaded"})
	f.reloads.Add(Reload{At: now, OK: true, Summary: "vault reloaded", Lines: []string{
		"activated: expiring expiring", "callers_added: <script>alert('audit')</script> -> expiring"}})
	backend := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(backend.Close)
	bu, _ := url.Parse(backend.URL)
	f.page, err = New(Options{
		Build: Build{Version: "v9.9.9", Revision: "abc123", GoVersion: "go1.26", Started: now.Add(-26 * time.Hour)},
		Vault: func() *keyvault.Vault { return f.vault }, Rejections: f.rej, Limiter: f.limiter,
		Panels:       func() []PanelTarget { return []PanelTarget{{Name: "upstream", Origin: bu}} },
		Certificates: func() []Certificate { return []Certificate{{Name: "server", NotAfter: now.Add(5 * 24 * time.Hour)}} },
		Reloads:      f.reloads, ExpiryWarnBefore: 14 * 24 * time.Hour, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /status", f.page.HTML())
	mux.Handle("GET /status.json", f.page.JSON())
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestStatusJSONSchema(t *testing.T) {
	f := newFixture(t, stateVault)
	resp, body := get(t, f.srv.URL+"/status.json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The schema scripts rely on: these fields, with these JSON types.
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"generated_at": "string", "build": "object", "uptime_seconds": "number",
		"expiry_warn_before_seconds": "number", "panels": "array", "summary": "object",
		"callers": "object", "reloads": "array", "certificates": "array",
	}
	for k, typ := range want {
		if got := jsonType(raw[k]); got != typ {
			t.Errorf("%s: JSON type %s, want %s", k, got, typ)
		}
	}
	callers := raw["callers"].(map[string]any)
	item := callers["items"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "key", "active", "standby", "versions", "warnings", "limits"} {
		if _, ok := item[k]; !ok {
			t.Errorf("callers.items[0] has no %q: %v", k, item)
		}
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Build.Version != "v9.9.9" || st.UptimeSeconds != 26*3600 || st.ExpiryWarnSeconds != 14*24*3600 {
		t.Errorf("build %+v uptime %d warn %d", st.Build, st.UptimeSeconds, st.ExpiryWarnSeconds)
	}
	if st.Summary.Callers != 6 || st.Summary.Keys != 5 || st.Callers.Matched != 6 || len(st.Callers.Items) != 6 {
		t.Errorf("summary %+v, matched %d, items %d", st.Summary, st.Callers.Matched, len(st.Callers.Items))
	}
	if len(st.Panels) != 1 || !st.Panels[0].Reachable {
		t.Errorf("panels %+v: want the one upstream, reachable", st.Panels)
	}
	if len(st.Reloads) != 2 || st.Reloads[0].Summary != "vault reloaded" {
		t.Errorf("reloads %+v: want newest first", st.Reloads)
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case bool:
		return "bool"
	}
	return fmt.Sprintf("%T", v)
}

func callerByName(t *testing.T, st Status, name string) Caller {
	t.Helper()
	for _, c := range st.Callers.Items {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no caller %q in %+v", name, st.Callers.Items)
	return Caller{}
}

func TestStatusStates(t *testing.T) {
	f := newFixture(t, stateVault)
	st := f.page.Snapshot(context.Background(), Query{Limit: DefaultLimit})
	exp := callerByName(t, st, "radio-expiring")
	if exp.Active != "expiring" || len(exp.Warnings) != 1 || !strings.Contains(exp.Warnings[0], "expires in 2d 12h") || !exp.Versions[0].Warning {
		t.Errorf("expiring: %+v", exp)
	}
	gone := callerByName(t, st, "radio-expired")
	if gone.Active != "" || gone.Versions[0].State != keyvault.StateExpired || !strings.Contains(strings.Join(gone.Warnings, ""), "no_valid_key") {
		t.Errorf("expired: %+v", gone)
	}
	ref := callerByName(t, st, "radio-rejected")
	if ref.Active != "standby1" || ref.Versions[1].State != keyvault.StateRejected || ref.Versions[1].RejectedUntil == nil ||
		!ref.Versions[1].RejectedUntil.Equal(now.Add(5*time.Minute)) {
		t.Errorf("rejected: %+v", ref)
	}
	pend := callerByName(t, st, "radio-pending")
	if pend.Versions[0].State != keyvault.StatePending || pend.Active != "" {
		t.Errorf("pending: %+v", pend)
	}
	if st.Summary.KeysNoValid != 2 || st.Summary.KeysWarning != 1 || st.Summary.VersionsRejected != 1 || len(st.Summary.Attention) != 4 {
		t.Errorf("summary %+v", st.Summary)
	}
}

// Threat: a secret on the page. Every secret of the vault is looked for,
// whole and by the part after its prefix, in the HTML and the JSON.
func TestStatusShowsNoSecret(t *testing.T) {
	f := newFixture(t, stateVault)
	for _, path := range []string{"/status", "/status.json"} {
		_, body := get(t, f.srv.URL+path)
		for _, s := range allSecrets {
			_, rest, _ := strings.Cut(s, ".")
			if strings.Contains(body, rest) {
				t.Errorf("%s shows the secret part of %s…", path, s[:8])
			}
		}
	}
}

// Threat: XSS through caller ids, key names and audit lines. They are
// text in the page, never markup, and the page allows no script at all.
func TestStatusEscapesNames(t *testing.T) {
	f := newFixture(t, stateVault)
	resp, body := get(t, f.srv.URL+"/status")
	for _, bad := range []string{"<script>alert", "<img src=x", `" onmouseover="`} {
		if strings.Contains(body, bad) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#39;caller&#39;)&lt;/script&gt;", "&lt;img src=x onerror=alert(&#39;key&#39;)&gt;",
		"&lt;script&gt;alert(&#39;audit&#39;)&lt;/script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not show %q as text", want)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q: want no script source and no unsafe-inline", csp)
	}
	// The style sheet's hash in the policy matches the style the page
	// carries, or the browser would drop it.
	start, end := strings.Index(body, "<style>")+len("<style>"), strings.Index(body, "</style>")
	if !strings.Contains(csp, "'sha256-"+hashOf(body[start:end])+"'") {
		t.Errorf("the policy does not allow the page's own style")
	}
	if strings.Contains(body, "<script") {
		t.Error("the page carries a script element")
	}
}

func TestStatusHTMLContent(t *testing.T) {
	f := newFixture(t, stateVault)
	_, body := get(t, f.srv.URL+"/status")
	for _, want := range []string{
		`<meta http-equiv="refresh" content="30">`, "v9.9.9", "Up 1d 2h", "reachable",
		"radio-expiring", "expiring expires in 2d 12h", "set aside until 2026-12-07 12:05:00 UTC",
		"pending", "expired", "5/5 tokens", "in flight: 0/4", "vault reloaded", "activated: expiring expiring",
		"<svg class=\"timeline\"", `role="img"`, "<th scope=\"col\">Caller</th>", `<label for="q">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
}

func TestStatusLimiterState(t *testing.T) {
	f := newFixture(t, stateVault)
	ctx := context.Background()
	for range 3 {
		if d, err := f.limiter.Decide(ctx, "radio-expiring", "expiring"); err != nil || !d.Allowed {
			t.Fatalf("decide: %+v %v", d, err)
		}
	}
	if err := f.limiter.Pause(ctx, "expiring", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	st := f.page.Snapshot(ctx, Query{Q: "radio-expiring", Limit: 10})
	l := callerByName(t, st, "radio-expiring").Limits
	if l.CallerTokens == nil || *l.CallerTokens != 2 || l.CallerBurst != 5 || l.KeyTokens == nil || *l.KeyTokens != 17 ||
		l.PausedUntil == nil || !l.PausedUntil.Equal(now.Add(30*time.Second)) || l.Concurrency != 4 {
		t.Errorf("limits %+v", l)
	}
	_, body := get(t, f.srv.URL+"/status?q=radio-expiring")
	if !strings.Contains(body, "2/5 tokens") || !strings.Contains(body, "paused by the panel (429) until 2026-12-07 12:00:30 UTC") {
		t.Error("the page does not show the spent tokens and the pause")
	}
}

func TestStatusSearchAndPaging(t *testing.T) {
	f := newFixture(t, stateVault)
	st := f.page.Snapshot(context.Background(), Query{Q: "RADIO", Offset: 1, Limit: 2})
	if st.Callers.Matched != 4 || len(st.Callers.Items) != 2 || st.Callers.Items[0].Name != "radio-expiring" {
		t.Errorf("page %+v", st.Callers)
	}
	// A search matches the key name too.
	st = f.page.Snapshot(context.Background(), Query{Q: "refused", Limit: 10})
	if st.Callers.Matched != 1 || st.Callers.Items[0].Name != "radio-rejected" {
		t.Errorf("search by key: %+v", st.Callers)
	}
	_, body := get(t, f.srv.URL+"/status?q=radio&limit=2")
	if !strings.Contains(body, `href="/status?limit=2&amp;offset=2&amp;q=radio"`) {
		t.Error("no link to the next page")
	}
}

func TestReloadLogKeepsTheLast20(t *testing.T) {
	var l ReloadLog
	for i := range 30 {
		l.Add(Reload{Summary: fmt.Sprint(i), Lines: make([]string, 60)})
	}
	got := l.Recent()
	if len(got) != MaxReloads || got[0].Summary != "29" || got[19].Summary != "10" || len(got[0].Lines) != 50 || got[0].More != 10 {
		t.Errorf("got %d reloads, first %q, lines %d, more %d", len(got), got[0].Summary, len(got[0].Lines), got[0].More)
	}
}

// A caller holding keys on several panels has one entry per panel, each
// with that panel's key; a search by panel name finds it.
func TestStatusCallerOnSeveralPanels(t *testing.T) {
	f := newFixture(t, stateVault)
	v, _, err := keyvault.Parse("keys.toml", []byte(`
[callers]
"network" = { north = "n-key", south = "s-key" }
"local" = "n-key"

[[keys.n-key]]
upstream = "north"
secret = "northkey.GGGGsecretpartnorth0000000"

[[keys.s-key]]
upstream = "south"
secret = "southkey.HHHHsecretpartsouth0000000"
`), keyvault.LoadOptions{Panels: []string{"north", "south"}})
	if err != nil {
		t.Fatal(err)
	}
	f.vault = v
	st := f.page.Snapshot(context.Background(), Query{Q: "network", Limit: DefaultLimit})
	if st.Callers.Matched != 2 || len(st.Callers.Items) != 2 {
		t.Fatalf("network: %+v", st.Callers)
	}
	for i, want := range []struct{ panel, key, active string }{{"north", "n-key", "northkey"}, {"south", "s-key", "southkey"}} {
		c := st.Callers.Items[i]
		if c.Panel != want.panel || c.Key != want.key || c.Active != want.active {
			t.Errorf("entry %d: %+v, want panel %s key %s active %s", i, c, want.panel, want.key, want.active)
		}
	}
	st = f.page.Snapshot(context.Background(), Query{Q: "south", Limit: DefaultLimit})
	if st.Callers.Matched != 1 || st.Callers.Items[0].Name != "network" {
		t.Errorf("search by panel: %+v", st.Callers)
	}
	resp, body := get(t, f.srv.URL+"/status")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<td>south</td>") {
		t.Errorf("HTML page: %s, south panel shown: %v", resp.Status, strings.Contains(body, "<td>south</td>"))
	}
}
