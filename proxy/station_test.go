package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/metrics"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/policy"
)

// stationReplay is the replay buffer's limit in the station tests: the
// largest body a scoped caller may send.
const stationReplay = 1024

// stationEnv is a gateway in front of the stand-in in which "admin" is
// scoped to station 3 (with every route of the API allowed, so that only
// the station stage refuses) and "reader" is not scoped.
func stationEnv(t *testing.T) (*env, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	e := newEnv(t, envOptions{
		policy: holderOf(t, policy.Options{
			Sets:     map[string][]string{"station3": {"* /api/v2/**"}},
			Stations: map[string][]int{"station3": {3}},
			Callers:  map[string]string{"admin": "station3"},
		}),
		replayBody: stationReplay,
		logger:     zap.New(core),
	})
	return e, logs
}

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

func formHeader() http.Header {
	return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
}

// TestStationScopedCallerReadsAndWritesItsStation: a caller scoped to
// station 3 reads its history, channels, playlists and schedule, and creates
// a playlist on it, through the stand-in.
func TestStationScopedCallerReadsAndWritesItsStation(t *testing.T) {
	e, logs := stationEnv(t)
	for _, path := range []string{
		"/api/v2/history/?server=3&limit=1", "/api/v2/channels/?server=3", "/api/v2/playlists/?server=3",
		"/api/v2/grid/?server=3", "/api/v2/history/?limit=2&%73erver=3",
	} {
		resp, body := e.do("GET", path, "admin", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		if strings.Contains(body, `"server":4`) || strings.Contains(body, `"server":1`) {
			t.Errorf("GET %s answered another station's objects: %s", path, body)
		}
	}
	for _, target := range []string{"/api/v2/playlists/", "/api/v2/playlists/?server=3"} {
		resp, body := e.do("POST", target, "admin", strings.NewReader(`{"name": "City late", "is_random": true, "server": 3}`), jsonHeader())
		var p struct{ Server int }
		if resp.StatusCode != 201 || json.Unmarshal([]byte(body), &p) != nil || p.Server != 3 {
			t.Fatalf("POST %s: %d %s", target, resp.StatusCode, body)
		}
	}
	// A chunked body within the limit is read, checked and sent whole.
	resp, body := e.do("POST", "/api/v2/playlists/", "admin",
		io.MultiReader(strings.NewReader(`{"name": "Chunked", "server": 3}`)), jsonHeader())
	if resp.StatusCode != 201 || e.lastUpstream().Header.Get("Content-Length") == "" {
		t.Fatalf("chunked POST: %d %s", resp.StatusCode, body)
	}
	// A form naming station 3 passes the gateway; the stand-in, like the
	// broadcaster's JSON-only views, answers 415 itself.
	before := len(e.standin.Requests())
	resp, _ = e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader("name=x&server=3"), formHeader())
	if resp.Header.Get("Scgate-Error") != "" || len(e.standin.Requests()) != before+1 {
		t.Fatalf("a form naming station 3 did not reach the stand-in: %d", resp.StatusCode)
	}
	if got := testutil.ToFloat64(e.metrics.StationChecks.WithLabelValues(proxy.StationAllowed)); got != 9 {
		t.Errorf("station checks allowed = %v, want 9", got)
	}
	found := false
	for _, l := range logs.FilterMessage("request").All() {
		if l.ContextMap()["station_check"] == proxy.StationAllowed && l.ContextMap()["station"] == int64(3) {
			found = true
		}
	}
	if !found {
		t.Error("no access log line carries station_check=allowed station=3")
	}
}

// TestStationFourIsRefusedEveryWay: every way of touching station 4 (or of
// naming a station ambiguously) is refused before the upstream, with the
// documented code. The stand-in records what reached it: nothing did.
func TestStationFourIsRefusedEveryWay(t *testing.T) {
	e, _ := stationEnv(t)
	jh := jsonHeader()
	form := formHeader()
	big := `{"name": "` + strings.Repeat("x", stationReplay) + `", "server": 3}`
	cases := []struct {
		name, method, target, body string
		hdr                        http.Header
		chunked                    bool
		code                       string
	}{
		// Reads: the query.
		{"query names 4", "GET", "/api/v2/history/?server=4", "", nil, false, proxy.CodeStationForbidden},
		{"no server", "GET", "/api/v2/history/", "", nil, false, proxy.CodeStationMissing},
		{"no server, other params", "GET", "/api/v2/channels/?limit=5&offset=0", "", nil, false, proxy.CodeStationMissing},
		{"repeated 3 then 4", "GET", "/api/v2/history/?server=3&server=4", "", nil, false, proxy.CodeStationMalformed},
		{"repeated 4 then 3", "GET", "/api/v2/history/?server=4&server=3", "", nil, false, proxy.CodeStationMalformed},
		{"repeated 3 twice", "GET", "/api/v2/history/?server=3&server=3", "", nil, false, proxy.CodeStationMalformed},
		{"encoded name", "GET", "/api/v2/history/?%73erver=4", "", nil, false, proxy.CodeStationForbidden},
		{"encoded value", "GET", "/api/v2/history/?server=%34", "", nil, false, proxy.CodeStationForbidden},
		{"encoded name repeated", "GET", "/api/v2/history/?server=3&%73%65rver=4", "", nil, false, proxy.CodeStationMalformed},
		{"capital name", "GET", "/api/v2/history/?server=3&Server=4", "", nil, false, proxy.CodeStationMalformed},
		{"name with a space", "GET", "/api/v2/history/?server=3&server+=4", "", nil, false, proxy.CodeStationMalformed},
		{"leading zero", "GET", "/api/v2/history/?server=04", "", nil, false, proxy.CodeStationMalformed},
		{"plus sign", "GET", "/api/v2/history/?server=%2B3", "", nil, false, proxy.CodeStationMalformed},
		{"fraction", "GET", "/api/v2/history/?server=3.0", "", nil, false, proxy.CodeStationMalformed},
		{"negative", "GET", "/api/v2/history/?server=-3", "", nil, false, proxy.CodeStationMalformed},
		{"space after", "GET", "/api/v2/history/?server=3+", "", nil, false, proxy.CodeStationMalformed},
		{"fullwidth digit", "GET", "/api/v2/history/?server=%EF%BC%93", "", nil, false, proxy.CodeStationMalformed},
		{"empty value", "GET", "/api/v2/history/?server=", "", nil, false, proxy.CodeStationMalformed},
		{"no value", "GET", "/api/v2/history/?server", "", nil, false, proxy.CodeStationMalformed},
		{"huge", "GET", "/api/v2/history/?server=99999999999999999999", "", nil, false, proxy.CodeStationMalformed},
		{"read with a body", "GET", "/api/v2/history/?server=3", `{"server": 4}`, jh, false, proxy.CodeStationMalformed},
		{"HEAD names 4", "HEAD", "/api/v2/playlists/?server=4", "", nil, false, proxy.CodeStationForbidden},
		// Routes that address an object by id, and routes without a station.
		{"playlist of 4 by id", "GET", "/api/v2/playlists/6/", "", nil, false, proxy.CodeStationForbidden},
		{"playlist by id with server=3", "GET", "/api/v2/playlists/6/?server=3", "", nil, false, proxy.CodeStationForbidden},
		{"playlist action", "POST", "/api/v2/playlists/6/copy/?server=3", `{"server": 3}`, jh, false, proxy.CodeStationForbidden},
		{"tracks", "DELETE", "/api/v2/playlists/6/tracks/1/?server=3", "", nil, false, proxy.CodeStationForbidden},
		{"login", "POST", "/api/v2/api-token-auth/", `{"username": "u", "password": "p"}`, jh, false, proxy.CodeStationForbidden},
		{"delete a list", "DELETE", "/api/v2/playlists/?server=3", "", nil, false, proxy.CodeStationForbidden},
		{"post to history", "POST", "/api/v2/history/?server=3", `{"server": 3}`, jh, false, proxy.CodeStationForbidden},
		{"undocumented route", "GET", "/api/v2/djs/?server=3", "", nil, false, proxy.CodeStationForbidden},
		// Creates: the body.
		{"body names 4", "POST", "/api/v2/playlists/", `{"name": "x", "server": 4}`, jh, false, proxy.CodeStationForbidden},
		{"body without server", "POST", "/api/v2/playlists/", `{"name": "x"}`, jh, false, proxy.CodeStationMissing},
		{"empty body", "POST", "/api/v2/playlists/", ``, jh, false, proxy.CodeStationMissing},
		{"no body, query 3", "POST", "/api/v2/playlists/?server=3", ``, nil, false, proxy.CodeStationMissing},
		{"duplicate key 3 then 4", "POST", "/api/v2/playlists/", `{"server": 3, "name": "x", "server": 4}`, jh, false, proxy.CodeStationMalformed},
		{"duplicate key 4 then 3", "POST", "/api/v2/playlists/", `{"server": 4, "server": 3}`, jh, false, proxy.CodeStationMalformed},
		{"escaped duplicate key", "POST", "/api/v2/playlists/", `{"server": 3, "\u0073erver": 4}`, jh, false, proxy.CodeStationMalformed},
		{"escaped key names 4", "POST", "/api/v2/playlists/", `{"\u0073erver": 4}`, jh, false, proxy.CodeStationForbidden},
		{"string 4", "POST", "/api/v2/playlists/", `{"name": "x", "server": "4"}`, jh, false, proxy.CodeStationMalformed},
		{"string 3", "POST", "/api/v2/playlists/", `{"name": "x", "server": "3"}`, jh, false, proxy.CodeStationMalformed},
		{"4.0", "POST", "/api/v2/playlists/", `{"name": "x", "server": 4.0}`, jh, false, proxy.CodeStationMalformed},
		{"3.0", "POST", "/api/v2/playlists/", `{"name": "x", "server": 3.0}`, jh, false, proxy.CodeStationMalformed},
		{"exponent", "POST", "/api/v2/playlists/", `{"name": "x", "server": 3e0}`, jh, false, proxy.CodeStationMalformed},
		{"null", "POST", "/api/v2/playlists/", `{"name": "x", "server": null}`, jh, false, proxy.CodeStationMalformed},
		{"array", "POST", "/api/v2/playlists/", `{"name": "x", "server": [3, 4]}`, jh, false, proxy.CodeStationMalformed},
		{"nested object value", "POST", "/api/v2/playlists/", `{"name": "x", "server": {"id": 4}}`, jh, false, proxy.CodeStationMalformed},
		{"nested server field", "POST", "/api/v2/playlists/", `{"server": 3, "extra": {"server": 4}}`, jh, false, proxy.CodeStationMalformed},
		{"nested in an array", "POST", "/api/v2/grid/", `{"server": 3, "items": [{"server": 4}]}`, jh, false, proxy.CodeStationMalformed},
		{"near spelling", "POST", "/api/v2/playlists/", `{"server": 3, "Server": 4}`, jh, false, proxy.CodeStationMalformed},
		{"two JSON values", "POST", "/api/v2/playlists/", `{"server": 3} {"server": 4}`, jh, false, proxy.CodeStationMalformed},
		{"trailing garbage", "POST", "/api/v2/playlists/", `{"server": 3}x`, jh, false, proxy.CodeStationMalformed},
		{"not an object", "POST", "/api/v2/playlists/", `[{"server": 3}]`, jh, false, proxy.CodeStationMalformed},
		{"invalid JSON", "POST", "/api/v2/playlists/", `{"server": 3,}`, jh, false, proxy.CodeStationMalformed},
		{"invalid UTF-8", "POST", "/api/v2/playlists/", "{\"name\": \"\xff\", \"server\": 3}", jh, false, proxy.CodeStationMalformed},
		{"byte order mark", "POST", "/api/v2/playlists/", "\ufeff{\"server\": 3}", jh, false, proxy.CodeStationMalformed},
		// Form and JSON against the query.
		{"query 3, body 4", "POST", "/api/v2/playlists/?server=3", `{"name": "x", "server": 4}`, jh, false, proxy.CodeStationForbidden},
		{"query 4, body 3", "POST", "/api/v2/playlists/?server=4", `{"name": "x", "server": 3}`, jh, false, proxy.CodeStationForbidden},
		{"query repeated, body 3", "POST", "/api/v2/playlists/?server=3&server=4", `{"server": 3}`, jh, false, proxy.CodeStationMalformed},
		{"form names 4", "POST", "/api/v2/playlists/", "name=x&server=4", form, false, proxy.CodeStationForbidden},
		{"form repeated", "POST", "/api/v2/playlists/", "server=3&server=4", form, false, proxy.CodeStationMalformed},
		{"form encoded name", "POST", "/api/v2/playlists/", "%73erver=4", form, false, proxy.CodeStationForbidden},
		{"form 3, query 4", "POST", "/api/v2/playlists/?server=4", "server=3", form, false, proxy.CodeStationForbidden},
		{"form with JSON in it", "POST", "/api/v2/playlists/", `{"server": 3}`, form, false, proxy.CodeStationMissing},
		// Content-type games.
		{"text/plain", "POST", "/api/v2/playlists/", `{"server": 3}`, http.Header{"Content-Type": {"text/plain"}}, false, proxy.CodeStationMalformed},
		{"no content type", "POST", "/api/v2/playlists/", `{"server": 3}`, http.Header{}, false, proxy.CodeStationMalformed},
		{"two content types", "POST", "/api/v2/playlists/", `{"server": 3}`, http.Header{"Content-Type": {"application/json", "application/x-www-form-urlencoded"}}, false, proxy.CodeStationMalformed},
		{"utf-16 charset", "POST", "/api/v2/playlists/", `{"server": 3}`, http.Header{"Content-Type": {"application/json; charset=utf-16"}}, false, proxy.CodeStationMalformed},
		{"multipart", "POST", "/api/v2/playlists/", "--b\r\nContent-Disposition: form-data; name=\"server\"\r\n\r\n4\r\n--b--\r\n", http.Header{"Content-Type": {"multipart/form-data; boundary=b"}}, false, proxy.CodeStationMalformed},
		{"json suffix type", "POST", "/api/v2/playlists/", `{"server": 3}`, http.Header{"Content-Type": {"application/vnd.api+json"}}, false, proxy.CodeStationMalformed},
		{"content encoding", "POST", "/api/v2/playlists/", `{"server": 3}`, http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, false, proxy.CodeStationMalformed},
		// Bodies over the limit.
		{"over the limit", "POST", "/api/v2/playlists/", big, jh, false, proxy.CodePayloadTooLarge},
		{"chunked over the limit", "POST", "/api/v2/playlists/", big, jh, true, proxy.CodePayloadTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.standin.Reset()
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
				if c.chunked {
					body = io.MultiReader(body)
				}
			}
			resp, got := e.do(c.method, c.target, "admin", body, c.hdr)
			if resp.Header.Get("Scgate-Error") != c.code {
				t.Fatalf("%s %s: %d %s (Scgate-Error %q), want code %s", c.method, c.target, resp.StatusCode, got, resp.Header.Get("Scgate-Error"), c.code)
			}
			if reqs := e.standin.Requests(); len(reqs) != 0 {
				t.Fatalf("the stand-in received %+v", reqs)
			}
			if c.method != "HEAD" && !strings.Contains(got, `"message":"`) {
				t.Errorf("no standard error body: %s", got)
			}
		})
	}
	if got := testutil.ToFloat64(e.metrics.StationChecks.WithLabelValues(proxy.StationAllowed)); got != 0 {
		t.Errorf("station checks allowed = %v, want 0", got)
	}
	if got := testutil.ToFloat64(e.metrics.StationChecks.WithLabelValues(proxy.StationForbidden)); got == 0 {
		t.Error("no forbidden station check counted")
	}
	// Many station IDs, one series per result: the ID is never a label.
	for id := 100; id < 120; id++ {
		e.do("GET", "/api/v2/history/?server="+strconv.Itoa(id), "admin", nil, nil)
	}
	if got := testutil.CollectAndCount(e.metrics.StationChecks); got != len(metrics.StationResults) {
		t.Errorf("%d station check series, want %d", got, len(metrics.StationResults))
	}
}

// TestStationUnscopedCallerUnchanged: a caller whose rule set names no
// stations is not checked: it reads station 4 and every station at once.
func TestStationUnscopedCallerUnchanged(t *testing.T) {
	e, _ := stationEnv(t)
	for _, path := range []string{"/api/v2/history/?server=4", "/api/v2/history/", "/api/v2/playlists/6/"} {
		if resp, body := e.do("GET", path, "reader", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("reader GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	if got := testutil.CollectAndCount(e.metrics.StationChecks); got != len(metrics.StationResults) {
		t.Errorf("%d station check series, want the %d results", got, len(metrics.StationResults))
	}
	for _, r := range metrics.StationResults {
		if v := testutil.ToFloat64(e.metrics.StationChecks.WithLabelValues(r)); v != 0 {
			t.Errorf("an unscoped caller counted a station check %s", r)
		}
	}
}

// TestStationExplain: Explain reports the station stage from the same
// function, query and body.
func TestStationExplain(t *testing.T) {
	e, _ := stationEnv(t)
	ctx := context.Background()
	d := e.handler.Explain(ctx, "admin", "GET", "/api/v2/history/?server=3")
	if d.Code != "" || d.Station.Result != proxy.StationAllowed || d.Station.Station != 3 || d.Station.Rule != "query" {
		t.Fatalf("read of 3: %+v", d)
	}
	d = e.handler.Explain(ctx, "admin", "GET", "/api/v2/history/?server=4")
	if d.Code != proxy.CodeStationForbidden || d.Status != 403 || d.Station.Result != proxy.StationForbidden || d.Station.Station != 4 {
		t.Fatalf("read of 4: %+v", d)
	}
	d = e.handler.ExplainBody(ctx, "admin", "POST", "/api/v2/playlists/", "application/json", []byte(`{"server": 3, "server": 4}`))
	if d.Code != proxy.CodeStationMalformed || d.Station.Rule != "body" {
		t.Fatalf("duplicate keys: %+v", d)
	}
	d = e.handler.ExplainBody(ctx, "admin", "POST", "/api/v2/playlists/", "application/json", []byte(`{"name": "x", "server": 3}`))
	if d.Code != "" || d.Station.Station != 3 || d.Version == nil {
		t.Fatalf("create on 3: %+v", d)
	}
	d = e.handler.Explain(ctx, "admin", "GET", "/api/v2/playlists/5/")
	if d.Code != proxy.CodeStationForbidden || d.Station.Rule != "refused" {
		t.Fatalf("object by id: %+v", d)
	}
	if d = e.handler.Explain(ctx, "reader", "GET", "/api/v2/history/"); d.Code != "" || d.Station.Scoped {
		t.Fatalf("unscoped: %+v", d)
	}
}

// TestStationBodyBudget: a scoped caller's body is held only within the
// buffer budget; when it is spent the request is refused (503
// station_unchecked), never forwarded unchecked.
func TestStationBodyBudget(t *testing.T) {
	e := newEnv(t, envOptions{
		policy: holderOf(t, policy.Options{
			Sets:     map[string][]string{"station3": {"* /api/v2/**"}},
			Stations: map[string][]int{"station3": {3}},
			Callers:  map[string]string{"admin": "station3"},
		}),
		replayBody:   stationReplay,
		bufferBudget: 64,
	})
	body := `{"name": "` + strings.Repeat("x", 100) + `", "server": 3}`
	resp, got := e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader(body), jsonHeader())
	if resp.StatusCode != 503 || resp.Header.Get("Scgate-Error") != proxy.CodeStationUnchecked {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
	if reqs := e.standin.Requests(); len(reqs) != 0 {
		t.Fatalf("the stand-in received %+v", reqs)
	}
	// A body within the budget passes, and the budget is given back: the
	// same small request passes again and again.
	for range 3 {
		if resp, got := e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader(`{"name":"a","server":3}`), jsonHeader()); resp.StatusCode != 201 {
			t.Fatalf("small body: %d %s", resp.StatusCode, got)
		}
	}
}

// TestStationReplaysOff: with replays off the body is still read and
// checked (within DefaultReplayBodyBytes), and forwarded from the buffer.
func TestStationReplaysOff(t *testing.T) {
	e := newEnv(t, envOptions{
		policy: holderOf(t, policy.Options{
			Sets:     map[string][]string{"station3": {"* /api/v2/**"}},
			Stations: map[string][]int{"station3": {3}},
			Callers:  map[string]string{"admin": "station3"},
		}),
		replayBody: -1,
	})
	if resp, got := e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader(`{"name":"a","server":3}`), jsonHeader()); resp.StatusCode != 201 {
		t.Fatalf("create on 3: %d %s", resp.StatusCode, got)
	}
	if resp, got := e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader(`{"name":"a","server":4}`), jsonHeader()); resp.Header.Get("Scgate-Error") != proxy.CodeStationForbidden {
		t.Fatalf("create on 4: %d %s", resp.StatusCode, got)
	}
	big := `{"server": 3, "name": "` + strings.Repeat("x", proxy.DefaultReplayBodyBytes) + `"}`
	if resp, got := e.do("POST", "/api/v2/playlists/", "admin", strings.NewReader(big), jsonHeader()); resp.StatusCode != 413 {
		t.Fatalf("over the default limit: %d %s", resp.StatusCode, got)
	}
}
