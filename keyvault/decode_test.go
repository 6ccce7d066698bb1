package keyvault

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

// decodeSeeds are vault-like documents: the common shape, and the shapes
// that must go to toml.Unmarshal instead.
var decodeSeeds = []string{
	"[callers]\n\"a\" = \"k\"\n\n[[keys.k]]\nsecret = \"Abcdefgh.0123456789abcdef0123\"\nexpires = 2027-01-31T00:00:00Z\n",
	"# comment\n[callers] # trailing\n'lit' = 'x'\n\"esc\\u00e9\\t\" = \"\"\"multi\nline\"\"\"\n[[keys.\"a.b\"]]\nsecret_file = 'f'\nnot_before = 2026-01-01 10:00:00+02:00\n[[keys.\"a.b\"]]\nexpires = 2027-01-01\n",
	"[[keys.k]]\nsecret = \"x\"\n[callers]\nc = \"k\"\n",
	"[callers]\na = \"k\"\na = \"j\"\n",            // duplicate key: Unmarshal's error
	"[callers]\na = \"k\"\n[callers]\nb = \"k\"\n", // table defined twice
	"[callers]\na.b = \"k\"\n",                     // dotted key
	"top = 1\n[callers]\n",                         // key outside a table
	"[keys]\n[callers]\n",                          // other header
	"[[keys.k]]\nsecret = [\"x\"]\n",               // array value
	"[[keys.k]]\nsecret = {v = \"x\"}\n",           // inline table
	"[[keys.k]]\nn = 0x1F\nf = 1_000.5\nb = true\nt = 07:30:00\nd = 1979-05-27T07:32:00\n",
	"[[keys.k]]\nexpires = 2027-02-30T00:00:00Z\n", // not a date
	"[callers]\n\"a\" = \"k\"\n[[keys.k]]\nsecret = \"x\"\n[[keys.k]]\nsecret = \"y\"\n[callers]\n",
	"[callers\n",
	"",
	"\n\n# only a comment\n",
	"[[callers]]\na = 1\n",
	"[callers]\n\"\" = \"empty key\"\n",
	"[callers]\n\"a\" = \"\\uD800\"\n",
}

// checkDecode fails when decode disagrees with toml.Unmarshal: the one-pass
// path must accept nothing that Unmarshal refuses and build the same map.
func checkDecode(t *testing.T, data []byte) {
	var want map[string]any
	wantErr := toml.Unmarshal(data, &want)
	got, ok := decodeCommon(data)
	if !ok {
		return // decode hands it to Unmarshal itself
	}
	if wantErr != nil {
		t.Fatalf("the one-pass decoder accepted what Unmarshal refuses (%v):\n%s", wantErr, data)
	}
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded differently:\n got %#v\nwant %#v\nfrom:\n%s", got, want, data)
	}
}

func TestDecodeMatchesUnmarshal(t *testing.T) {
	for i, s := range decodeSeeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkDecode(t, []byte(s)) })
	}
	// The common shape must take the one-pass path, or the 10k-caller
	// reload is slow again.
	if _, ok := decodeCommon([]byte(decodeSeeds[0])); !ok {
		t.Fatal("the usual vault shape did not take the one-pass path")
	}
	if _, ok := decodeCommon([]byte(decodeSeeds[1])); !ok {
		t.Fatal("comments, literal and multi-line strings, quoted names and offsets should take the one-pass path")
	}
}

func FuzzDecodeMatchesUnmarshal(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 || strings.Count(s, "\n") > 200 {
			t.Skip()
		}
		checkDecode(t, []byte(s))
	})
}
