package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scgate/scgate/internal/standin"
	"github.com/scgate/scgate/keyvault"
)

const (
	panelKeyNorth = "CliNorth.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
	panelKeySouth = "CliSouth.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
)

// twoPanels starts two stand-in panels, each accepting its own key, and
// writes a config and vault for them; it returns the config's path and the
// stand-ins.
func twoPanels(t *testing.T) (string, map[string]*standin.Server) {
	t.Helper()
	sis, urls := map[string]*standin.Server{}, map[string]string{}
	for name, key := range map[string]string{"north": panelKeyNorth, "south": panelKeySouth} {
		si, err := standin.New(standin.Options{Keys: []string{key}})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(si)
		t.Cleanup(srv.Close)
		sis[name], urls[name] = si, srv.URL
	}
	p := writeConfig(t, `[upstreams.north]
url = "`+urls["north"]+`"
[upstreams.south]
url = "`+urls["south"]+`"
rate = 7.0
[vault]
file = "keys.toml"
[identity]
static = "net"
`)
	vault := `[callers]
"net" = { north = "north-k", south = "south-k" }
"solo" = "north-k"

[[keys.north-k]]
upstream = "north"
secret = "` + panelKeyNorth + `"

[[keys.south-k]]
upstream = "south"
secret = "` + panelKeySouth + `"
`
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "keys.toml"), []byte(vault), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, sis
}

// TestKeysAndVerifyPerPanel: `keys` names each key's panel, and `keys
// verify` asks each key's own panel: each stand-in saw only its own key
// (and the made-up probe key), and accepted it.
func TestKeysAndVerifyPerPanel(t *testing.T) {
	p, sis := twoPanels(t)
	code, out, errOut := run(t, "keys", "--config", p)
	if code != 0 || !strings.Contains(out, "PANEL") || !regexpLine(out, "north", "north-k") || !regexpLine(out, "south", "south-k") {
		t.Fatalf("keys: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, "keys", "verify", "--config", p, "--json")
	if code != 0 {
		t.Fatalf("keys verify: exit %d\n%s%s", code, out, errOut)
	}
	var rows []keyRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Upstream != "accepted" {
			t.Errorf("%s on %s: %s %s", r.Key, r.Panel, r.Upstream, r.Detail)
		}
	}
	own := map[string]string{"north": keyvault.Prefix(panelKeyNorth), "south": keyvault.Prefix(panelKeySouth)}
	for name, si := range sis {
		var seen []string
		for _, rq := range si.Requests() {
			seen = append(seen, rq.KeyPrefixes...)
		}
		if !slices.Contains(seen, own[name]) {
			t.Errorf("panel %s was not asked with its key: %v", name, seen)
		}
		for other, prefix := range own {
			if other != name && slices.Contains(seen, prefix) {
				t.Errorf("panel %s received %s's key", name, other)
			}
		}
	}
}

// TestExplainAndCheckShowThePanel: explain names the panel the request
// goes to (and its rate cap), from the proxy's own decision; check lists
// each caller's key per panel.
func TestExplainAndCheckShowThePanel(t *testing.T) {
	p, _ := twoPanels(t)
	code, out, errOut := run(t, "explain", "--config", p, "--caller", "net", "--path", "/panels/south/api/v2/history/", "--json")
	var e explanation
	if err := json.Unmarshal([]byte(out), &e); code != 0 || err != nil || e.Panel != "south" || e.Key != "south-k" || e.PanelRate != 7 {
		t.Fatalf("explain: exit %d %+v\n%s%s", code, e, out, errOut)
	}
	code, out, _ = run(t, "explain", "--config", p, "--caller", "solo", "--path", "/panels/south/api/v2/history/")
	if code != 1 || !strings.Contains(out, "panel_forbidden") {
		t.Fatalf("explain of an unheld panel: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "explain", "--config", p, "--caller", "net", "--path", "/api/v2/history/")
	if code != 1 || !strings.Contains(out, "unknown_panel") {
		t.Fatalf("explain without a panel: exit %d\n%s", code, out)
	}
	code, out, errOut = run(t, "check", "--config", p)
	if code != 0 || !regexpLine(out, "south", "net", "south-k") || !regexpLine(out, "north", "solo", "north-k") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
}

// regexpLine reports whether some line of out holds the words in order.
func regexpLine(out string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		i := 0
		for _, w := range f {
			if i < len(words) && w == words[i] {
				i++
			}
		}
		if i == len(words) {
			return true
		}
	}
	return false
}

// TestExplainByHost: with panels chosen by Host, explain --host picks the
// panel as the gateway would.
func TestExplainByHost(t *testing.T) {
	p, _ := twoPanels(t)
	cfg, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, "[panels]\nby = \"host\"\nhost_suffix = \"gw.test\"\n"...)
	if err := os.WriteFile(p, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "explain", "--config", p, "--caller", "net", "--host", "South.gw.test:8443", "--path", "/api/v2/history/", "--json")
	var e explanation
	if err := json.Unmarshal([]byte(out), &e); code != 0 || err != nil || e.Panel != "south" || e.Key != "south-k" {
		t.Fatalf("explain --host: exit %d %+v\n%s%s", code, e, out, errOut)
	}
	code, out, _ = run(t, "explain", "--config", p, "--caller", "net", "--path", "/panels/south/api/v2/history/")
	if code != 1 || !strings.Contains(out, "unknown_panel") {
		t.Fatalf("a path prefix in host mode chose a panel: exit %d\n%s", code, out)
	}
}
