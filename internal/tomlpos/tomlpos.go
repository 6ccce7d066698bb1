package tomlpos

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Index maps a decoded value's key path to the line it is written on, so
// that semantic errors found after decoding (a caller naming a missing key,
// say) can point at the right line. An element of an array (of tables) is the
// part Elem(i).
type Index struct {
	lines      map[string]int
	lineStarts []int // byte offset where each line begins
}

const pathSep = "\x00"

func pathOf(parts ...string) string { return strings.Join(parts, pathSep) }

// Elem is the key part naming element i of an array or array of tables.
func Elem(i int) string {
	return "[" + strconv.Itoa(i) + "]"
}

// Line returns the line of the key path, or of its nearest indexed ancestor,
// or 0 when none is known. A nil Index knows nothing.
func (ix *Index) Line(parts ...string) int {
	if ix == nil {
		return 0
	}
	for n := len(parts); n > 0; n-- {
		if l, ok := ix.lines[pathOf(parts[:n]...)]; ok {
			return l
		}
	}
	return 0
}

// Build walks the document with go-toml's unstable parser. It is run
// only on documents the decoder accepted, so it does not report errors; if the
// parser stops early, the paths it did not reach fall back to an ancestor.
func Build(data []byte) *Index {
	ix := &Index{lines: make(map[string]int), lineStarts: []int{0}}
	for i, c := range data {
		if c == '\n' {
			ix.lineStarts = append(ix.lineStarts, i+1)
		}
	}
	w := indexWalker{ix: ix, arrays: make(map[string]int)}
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		w.expression(p.Expression())
	}
	return ix
}

// indexWalker carries the TOML table state across top-level expressions.
type indexWalker struct {
	ix     *Index
	arrays map[string]int // resolved array-of-tables path → elements so far
	table  []string       // resolved path of the current table
}

func (w *indexWalker) expression(e *unstable.Node) {
	switch e.Kind {
	case unstable.Table:
		w.table = w.resolve(keyParts(e))
		w.setAll(w.table, w.ix.nodeLine(e))
	case unstable.ArrayTable:
		parts := keyParts(e)
		parent := w.resolve(parts[:len(parts)-1])
		full := append(parent, parts[len(parts)-1])
		n := w.arrays[pathOf(full...)]
		w.arrays[pathOf(full...)] = n + 1
		w.table = append(full, Elem(n))
		w.setAll(w.table, w.ix.nodeLine(e))
	case unstable.KeyValue:
		w.keyValue(w.table, e)
	}
}

// resolve turns a header's key parts into a decoded path: a part naming an
// array of tables refers to its last element, as TOML specifies.
func (w *indexWalker) resolve(parts []string) []string {
	out := make([]string, 0, 2*len(parts))
	for _, part := range parts {
		out = append(out, part)
		if n, ok := w.arrays[pathOf(out...)]; ok && n > 0 {
			out = append(out, Elem(n-1))
		}
	}
	return out
}

// setAll records line for path and for each ancestor not yet indexed, so
// that a dotted key or a nested header still gives its parents a line.
func (w *indexWalker) setAll(path []string, line int) {
	for n := 1; n <= len(path); n++ {
		p := pathOf(path[:n]...)
		if _, ok := w.ix.lines[p]; !ok || n == len(path) {
			w.ix.lines[p] = line
		}
	}
}

func (w *indexWalker) keyValue(base []string, kv *unstable.Node) {
	path := append(append([]string(nil), base...), keyParts(kv)...)
	line := w.ix.nodeLine(kv)
	w.setAll(path, line)
	w.value(path, kv.Value(), line)
}

// value indexes the elements of arrays and the entries of inline tables.
func (w *indexWalker) value(path []string, v *unstable.Node, line int) {
	switch v.Kind {
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); {
			n := it.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			p := append(append([]string(nil), path...), Elem(i))
			l := w.ix.nodeLineOr(n, line)
			w.ix.lines[pathOf(p...)] = l
			w.value(p, n, l)
			i++
		}
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			if n := it.Node(); n.Kind == unstable.KeyValue {
				w.keyValue(path, n)
			}
		}
	}
}

func keyParts(n *unstable.Node) []string {
	var parts []string
	for it := n.Key(); it.Next(); {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

// nodeLine returns the line a node starts on: its own range when the parser
// recorded one, else its first key's (table headers have no range of their
// own).
func (ix *Index) nodeLine(n *unstable.Node) int {
	return ix.nodeLineOr(n, 0)
}

func (ix *Index) nodeLineOr(n *unstable.Node, fallback int) int {
	if n.Raw.Length > 0 {
		return ix.lineAt(int(n.Raw.Offset))
	}
	switch n.Kind {
	case unstable.KeyValue, unstable.Table, unstable.ArrayTable:
		if it := n.Key(); it.Next() && it.Node().Raw.Length > 0 {
			return ix.lineAt(int(it.Node().Raw.Offset))
		}
	}
	return fallback
}

func (ix *Index) lineAt(offset int) int {
	return sort.Search(len(ix.lineStarts), func(i int) bool { return ix.lineStarts[i] > offset })
}
