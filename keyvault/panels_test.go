package keyvault_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/scgate/scgate/keyvault"
)

const panelVault = `
[callers]
"both" = { north = "north-key", south = "south-key" }
"north-only" = "north-key"

[callers."table-one"]
south = "south-key"

[[keys.north-key]]
upstream = "north"
secret = "Nnnnnnn1.aaaaaaaaaaaaaaaaaaaaaaaaaaaa"

[[keys.south-key]]
upstream = "south"
secret = "Sssssss1.aaaaaaaaaaaaaaaaaaaaaaaaaaaa"

[[keys.south-key]]
secret = "Sssssss2.aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
`

// TestPanelKeys checks that each key belongs to the panel it names and a
// caller's panel table gives a key per panel and nothing else.
func TestPanelKeys(t *testing.T) {
	v, _, err := keyvault.Parse(filepath.Join(t.TempDir(), "keys.toml"), []byte(panelVault),
		keyvault.LoadOptions{Panels: []string{"north", "south"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		caller, panel, key string
		known              bool
	}{
		{"both", "north", "north-key", true},
		{"both", "south", "south-key", true},
		{"north-only", "north", "north-key", true},
		{"north-only", "south", "", true},
		{"table-one", "south", "south-key", true},
		{"table-one", "north", "", true},
		{"both", "east", "", true},
		{"stranger", "north", "", false},
	}
	for _, tc := range tests {
		k, known := v.KeyFor(tc.caller, tc.panel)
		got := ""
		if k != nil {
			got = k.Name
			if k.Panel != tc.panel {
				t.Errorf("%s on %s: key %s belongs to %s", tc.caller, tc.panel, k.Name, k.Panel)
			}
		}
		if got != tc.key || known != tc.known {
			t.Errorf("KeyFor(%q, %q) = %q, %v; want %q, %v", tc.caller, tc.panel, got, known, tc.key, tc.known)
		}
	}
	if p, ok := v.OnlyPanel("table-one"); !ok || p != "south" {
		t.Errorf("OnlyPanel(table-one) = %q, %v", p, ok)
	}
	if _, ok := v.OnlyPanel("both"); ok {
		t.Error("a caller with two panels has an only panel")
	}
	if got := strings.Join(v.PanelsOf("both"), ","); got != "north,south" {
		t.Errorf("PanelsOf(both) = %s", got)
	}
	if k, _ := v.KeyOf("both"); k != nil {
		t.Errorf("KeyOf of a two-panel caller = %s, want nil", k.Name)
	}
}

// TestPanelVaultErrors checks the refusals that concern panels, each with
// its line.
func TestPanelVaultErrors(t *testing.T) {
	key := func(name, panel, secret string) string {
		s := "\n[[keys." + name + "]]\n"
		if panel != "" {
			s += "upstream = \"" + panel + "\"\n"
		}
		return s + "secret = \"" + secret + "\"\n"
	}
	tests := []struct {
		name, vault, want string
		line              int
	}{
		{"unknown panel", "[callers]\nsvc = \"k\"\n" + key("k", "west", "Kkkkkkk1.aaaaaaaaaaaaaaaaaaaaaaaa"),
			`upstream "west" is not a configured panel (configured: north, south)`, 5},
		{"no panel with two configured", "[callers]\nsvc = \"k\"\n" + key("k", "", "Kkkkkkk1.aaaaaaaaaaaaaaaaaaaaaaaa"),
			`key "k" does not name its panel: add upstream = "NAME"`, 4},
		{"versions disagree", "[callers]\nsvc = \"k\"\n" + key("k", "north", "Kkkkkkk1.aaaaaaaaaaaaaaaaaaaaaaaa") + key("k", "south", "Kkkkkkk2.aaaaaaaaaaaaaaaaaaaaaaaa"),
			`upstream "south" differs from "north" on line 5`, 9},
		{"caller table names the wrong panel for the key", "[callers]\nsvc = { south = \"k\" }\n" + key("k", "north", "Kkkkkkk1.aaaaaaaaaaaaaaaaaaaaaaaa"),
			`key "k" belongs to panel "north", not "south"`, 2},
		{"caller table names an unknown panel", "[callers]\nsvc = { west = \"k\" }\n" + key("k", "north", "Kkkkkkk1.aaaaaaaaaaaaaaaaaaaaaaaa"),
			`"west" is not a configured panel`, 2},
		{"upstream not a string", "[callers]\nsvc = \"k\"\n" + "\n[[keys.k]]\nupstream = 3\nsecret = \"Kkkkkkk1.aaaaaaaaaaaaaaaaaaaaaaaa\"\n",
			`upstream must be a panel name string, not an integer`, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys.toml")
			_, _, err := keyvault.Parse(path, []byte(tc.vault), keyvault.LoadOptions{Panels: []string{"north", "south"}})
			if err == nil {
				t.Fatal("vault accepted")
			}
			want := path + ":" + itoa(tc.line) + ": "
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant %q at %q", err, tc.want, want)
			}
		})
	}
}

// TestSinglePanelNeedsNoName checks that a vault without upstream fields
// loads unchanged for one panel, and that naming the one panel is allowed.
func TestSinglePanelNeedsNoName(t *testing.T) {
	vault := "[callers]\nsvc = \"k\"\n\n[[keys.k]]\nsecret = \"Kkkkkkk1.aaaaaaaaaaaaaaaaaaaaaaaa\"\n"
	v, _, err := keyvault.Parse(filepath.Join(t.TempDir(), "keys.toml"), []byte(vault), keyvault.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := v.KeyOf("svc"); k == nil || k.Panel != keyvault.DefaultPanel {
		t.Fatalf("key %+v, want panel %s", k, keyvault.DefaultPanel)
	}
	v, _, err = keyvault.Parse(filepath.Join(t.TempDir(), "keys.toml"), []byte(vault), keyvault.LoadOptions{Panels: []string{"only"}})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := v.KeyFor("svc", "only"); k == nil {
		t.Fatal("the key of a one-panel gateway is not on its panel")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
