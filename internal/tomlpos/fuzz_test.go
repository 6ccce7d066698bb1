package tomlpos

import (
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// FuzzBuild: Build never panics, on any bytes (it runs on what the decoder
// accepted, but a reload reads whatever is in the file), and every line it
// gives for a decoded key is a line of the document: at least 1 (0 would
// mean "not known", a FILE:0 error) and at most the last line.
func FuzzBuild(f *testing.F) {
	f.Add([]byte("top = 1\n[server]\nlisten = \"x\"\n[[keys.a]]\nsecret = \"s\"\ninline = { a = 1, b = [1,\n 2] }\n"))
	f.Add([]byte("[identity.cidr]\n\"10.0.0.0/8\" = \"a\"\n[a.b.c]\nd.e = 1\n"))
	f.Add([]byte("a = [[1], [2, [3]]]\n[[x]]\n[[x]]\ny = {z = {w = 1}}\n"))
	f.Add([]byte("[a]\n[a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix := Build(data)
		lines := strings.Count(string(data), "\n") + 1
		var doc map[string]any
		if toml.Unmarshal(data, &doc) != nil {
			return
		}
		var walk func(path []string, v any)
		walk = func(path []string, v any) {
			if l := ix.Line(path...); len(path) > 0 && (l < 1 || l > lines) {
				t.Fatalf("%q: line %d of %d", path, l, lines)
			}
			switch x := v.(type) {
			case map[string]any:
				for k, c := range x {
					walk(append(path[:len(path):len(path)], k), c)
				}
			case []any:
				for i, c := range x {
					walk(append(path[:len(path):len(path)], Elem(i)), c)
				}
			}
		}
		walk(nil, doc)
	})
}
