package keyvault

import (
	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// decode turns the vault file into the map that go-toml's Unmarshal makes.
//
// go-toml checks each key of a table against every key already in it, so a
// [callers] table of 10,000 entries took over 400 ms to decode. A
// vault written the usual way ([callers] once, [[keys.NAME]] entries, one
// plain key = value per line) is built here in one pass over go-toml's own
// parser, with duplicate keys found through a map. Anything else (dotted
// keys, inline tables, arrays, other headers, a duplicate, a syntax error)
// goes to toml.Unmarshal, which then decides and words every error as
// before: this path only ever accepts what Unmarshal accepts, with the same
// result (FuzzDecodeMatchesUnmarshal).
func decode(data []byte) (map[string]any, error) {
	if doc, ok := decodeCommon(data); ok {
		return doc, nil
	}
	var doc map[string]any
	err := toml.Unmarshal(data, &doc)
	return doc, err
}

// decodeCommon is the one-pass path of decode; false means "not the common
// shape", never "invalid".
func decodeCommon(data []byte) (map[string]any, bool) {
	var p unstable.Parser
	p.Reset(data)
	doc := map[string]any{}
	var callers, keys map[string]any
	var cur map[string]any // the table key = value lines go to; nil at the top
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			name, ok := singleKey(e, "callers")
			if !ok || name != "callers" || callers != nil {
				return nil, false
			}
			callers = map[string]any{}
			doc["callers"] = callers
			cur = callers
		case unstable.ArrayTable:
			name, ok := singleKey(e, "keys")
			if !ok {
				return nil, false
			}
			if keys == nil {
				keys = map[string]any{}
				doc["keys"] = keys
			}
			list, _ := keys[name].([]any)
			cur = map[string]any{}
			keys[name] = append(list, cur)
		case unstable.KeyValue:
			if cur == nil {
				return nil, false
			}
			k, ok := singleKey(e, "")
			if !ok {
				return nil, false
			}
			if _, dup := cur[k]; dup {
				return nil, false
			}
			v, ok := scalar(e.Value())
			if !ok {
				return nil, false
			}
			cur[k] = v
		default:
			return nil, false
		}
	}
	if p.Error() != nil {
		return nil, false
	}
	return doc, true
}

// singleKey returns the key of a key = value line (prefix "") or, for a
// header, the part after prefix: [callers] is ("callers") with prefix
// "callers", [[keys.NAME]] is NAME with prefix "keys". A dotted key of any
// other shape is not the common shape.
func singleKey(e *unstable.Node, prefix string) (string, bool) {
	it := e.Key()
	if !it.Next() {
		return "", false
	}
	first := string(it.Node().Data)
	if prefix == "" || prefix == "callers" {
		return first, !it.Next()
	}
	if first != prefix || !it.Next() {
		return "", false
	}
	name := string(it.Node().Data)
	return name, !it.Next()
}

// scalar converts a value node as Unmarshal would. Strings are already
// unescaped by the parser; other scalars (date-times, numbers, booleans) go
// through Unmarshal on their own, so that their Go types are exactly
// Unmarshal's. Arrays and inline tables are not the common shape.
func scalar(v *unstable.Node) (any, bool) {
	switch v.Kind {
	case unstable.String:
		return string(v.Data), true
	case unstable.Bool, unstable.Integer, unstable.Float,
		unstable.DateTime, unstable.LocalDateTime, unstable.LocalDate, unstable.LocalTime:
		var one map[string]any
		if err := toml.Unmarshal(append([]byte("v = "), v.Data...), &one); err != nil {
			return nil, false
		}
		return one["v"], true
	}
	return nil, false
}
