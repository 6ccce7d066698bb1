package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const explainVault = `[callers]
"sync" = "admin"
"stats" = "readonly"
"archiver" = "old"

[[keys.admin]]
secret = "ExplAdm1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"

[[keys.readonly]]
secret = "ExplRdo1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"

[[keys.old]]
secret = "ExplOld1.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
expires = 2020-01-01T00:00:00Z
`

const explainConfig = `[upstream]
url = "https://radio.example:1030"
[vault]
file = "keys.toml"
[identity]
static = "sync"
[limits]
rate = 20.0
burst = 40
[limits.callers."stats"]
rate = 2.0
burst = 2
mode = "wait"
max_wait = "3s"
[policy.sets]
readonly = ["GET /api/v2/**"]
[policy.callers]
"stats" = "readonly"
[cache.routes]
"GET /api/v2/history/" = "2s"
"GET /api/v2/channels/" = { ttl = "10s", shared = true }
`

func TestExplain(t *testing.T) {
	p := writeConfig(t, explainConfig)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "keys.toml"), []byte(explainVault), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name             string
		args             []string
		code             int
		want, wantAbsent []string
	}{
		{"forwarded, no rule set", []string{"--caller", "sync", "--method", "post", "--path", "/api/v2/playlists/"}, 0,
			[]string{`key "admin"`, "every route", "20 req/s, burst 40", "ExplAdm1", "forwarded"}, []string{"cache "}},
		{"cached per key", []string{"--caller", "stats", "--path", "/api/v2/history/?limit=1&server=1"}, 0,
			[]string{`cache     answered from the cache for up to 2s, per key (entries of key "readonly"), by "GET /api/v2/history/"`}, nil},
		{"cached for every key", []string{"--caller", "sync", "--path", "/api/v2/channels/"}, 0,
			[]string{"up to 10s, shared by every key of the panel"}, nil},
		{"allowed by a rule", []string{"--caller", "stats", "--path", "/api/v2/history/?limit=1"}, 0,
			[]string{`allowed by "GET /api/v2/**" in rule set "readonly"`, "2 req/s, burst 2", "mode wait (max_wait 3s)", "ExplRdo1"}, nil},
		{"route refused", []string{"--caller", "stats", "--method", "POST", "--path", "/api/v2/playlists/"}, 1,
			[]string{`no rule of set "readonly" matches`, "403 forbidden"}, []string{"ExplRdo1"}},
		{"a refused request is never answered from the cache", []string{"--caller", "stranger", "--path", "/api/v2/channels/"}, 1,
			[]string{"403 forbidden"}, []string{"cache "}},
		{"not in the vault", []string{"--caller", "stranger", "--path", "/api/v2/history/"}, 1,
			[]string{"403 forbidden", "no key in the vault"}, nil},
		{"expired key", []string{"--caller", "archiver", "--path", "/api/v2/history/"}, 1,
			[]string{"503 no_valid_key"}, nil},
		{"bad path", []string{"--caller", "sync", "--path", "/api/v2/%2e%2e/admin/"}, 1,
			[]string{"400 bad_request"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"explain", "--config", p}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range c.wantAbsent {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			if strings.Contains(out+errOut, "FAKEfake") {
				t.Fatal("explain printed a secret")
			}
		})
	}

	code, out, _ := run(t, "explain", "--config", p, "--caller", "stats", "--path", "/api/v2/history/", "--json")
	var e explanation
	if code != 0 || json.Unmarshal([]byte(out), &e) != nil {
		t.Fatalf("--json: exit %d, %s", code, out)
	}
	if e.Verdict != "forwarded" || e.KeyPrefix != "ExplRdo1" || e.RuleSet != "readonly" || e.Limits == nil || e.Limits.CallerRate != 2 ||
		e.Cache == nil || e.Cache.TTL != "2s" || e.Cache.Shared {
		t.Fatalf("--json: %+v", e)
	}
	if code, _, _ := run(t, "explain", "--config", p, "--caller", "sync"); code != exitUsage {
		t.Fatalf("missing --path: exit %d", code)
	}
}

// TestExplainStation: explain shows the station stage, from the proxy's
// decision function, for reads (the query) and creates (--body).
func TestExplainStation(t *testing.T) {
	cfg := strings.Replace(explainConfig, "[policy.callers]\n", "city = [\"* /api/v2/**\"]\n[policy.stations]\ncity = [3]\n[policy.callers]\n\"sync\" = \"city\"\n", 1)
	p := writeConfig(t, cfg)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "keys.toml"), []byte(explainVault), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"read of 3", []string{"--path", "/api/v2/history/?server=3"}, 0,
			[]string{"scoped to stations [3]", "?server=<id>", "names station 3: allowed", "forwarded"}},
		{"read of 4", []string{"--path", "/api/v2/history/?server=4"}, 1,
			[]string{"names station 4: forbidden", "403 station_forbidden"}},
		{"read without server", []string{"--path", "/api/v2/history/"}, 1, []string{": missing", "400 station_missing"}},
		{"create on 3", []string{"--method", "POST", "--path", "/api/v2/playlists/", "--body", `{"name": "x", "server": 3}`}, 0,
			[]string{`the body's "server"`, "names station 3: allowed"}},
		{"create, duplicate keys", []string{"--method", "POST", "--path", "/api/v2/playlists/", "--body", `{"server": 3, "server": 4}`}, 1,
			[]string{"400 station_malformed", "more than once"}},
		{"create as a form on 4", []string{"--method", "POST", "--path", "/api/v2/playlists/", "--body", "server=4", "--content-type", "application/x-www-form-urlencoded"}, 1,
			[]string{"names station 4: forbidden"}},
		{"object by id", []string{"--path", "/api/v2/playlists/6/"}, 1, []string{"refused to scoped callers", "403 station_forbidden"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, append([]string{"explain", "--config", p, "--caller", "sync"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	code, out, _ := run(t, "explain", "--config", p, "--caller", "sync", "--path", "/api/v2/grid/?server=4", "--json")
	var e explanation
	if code != 1 || json.Unmarshal([]byte(out), &e) != nil || e.Station == nil || e.Station.Station != 4 || e.Station.Result != "forbidden" {
		t.Fatalf("--json: exit %d, %s", code, out)
	}
}
