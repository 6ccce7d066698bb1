package keyvault

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/agnivade/levenshtein"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/scgate/scgate/internal/tomlpos"
)

// versionFieldList names the fields a [[keys.NAME]] entry may have.
const versionFieldList = "secret, secret_file, not_before, expires, upstream"

func isVersionField(f string) bool {
	switch f {
	case "secret", "secret_file", "not_before", "expires", "upstream":
		return true
	}
	return false
}

// keys validates the [keys] table. It returns every key it saw, valid or not,
// so that callers naming a key with a broken version are not also reported
// as naming a missing key.
func (c *checker) keys(raw any) map[string]*Key {
	keys := make(map[string]*Key)
	if raw == nil {
		return keys
	}
	tbl, ok := raw.(map[string]any)
	if !ok {
		c.fail(c.ix.Line("keys"), "keys must hold [[keys.NAME]] tables, not %s", typeName(raw))
		return keys
	}
	for _, name := range sortedKeys(tbl) {
		line := c.ix.Line("keys", name)
		if !c.validName(line, "key", name) {
			continue
		}
		list, ok := tbl[name].([]any)
		if !ok {
			c.fail(line, "key %q must be written as [[keys.%s]] entries (a list of versions), not as %s",
				name, name, typeName(tbl[name]))
			continue
		}
		k := &Key{Name: name, noValid: newNoValidKeyError(name)}
		keys[name] = k
		if len(list) == 0 {
			c.fail(line, "key %q has no versions: add a [[keys.%s]] entry with a secret or secret_file", name, name)
		}
		for i, el := range list {
			if v := c.version(name, i, el); v != nil {
				k.Versions = append(k.Versions, v)
			}
		}
		c.keyPanel(k, list)
	}
	return keys
}

// validName checks a key or caller name, which ends up in logs and metric
// labels.
func (c *checker) validName(line int, what, name string) bool {
	if name == "" {
		c.fail(line, "a %s name must not be empty", what)
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			c.fail(line, "%s name %q contains a control character", what, name)
			return false
		}
	}
	return true
}

// version validates one [[keys.NAME]] entry.
func (c *checker) version(key string, i int, raw any) *Version {
	path := []string{"keys", key, tomlpos.Elem(i)}
	line := c.ix.Line(path...)
	where := fmt.Sprintf("keys.%s[%d]", key, i)
	m, ok := raw.(map[string]any)
	if !ok {
		c.fail(line, "%s must be a table with a secret or secret_file, not %s", where, typeName(raw))
		return nil
	}
	for _, f := range sortedKeys(m) {
		if !isVersionField(f) {
			c.fail(c.ix.Line(append(path, f)...), "unknown field %s in %s (allowed: %s)%s",
				c.show(f), where, versionFieldList, suggest(f, "secret", "secret_file", "not_before", "expires", "upstream"))
		}
	}
	v := &Version{Key: key, Index: i, Line: line}
	nb, okNB := c.timeField(m, path, where, "not_before")
	ex, okEx := c.timeField(m, path, where, "expires")
	v.NotBefore, v.Expires = nb, ex
	if okNB && okEx && !nb.IsZero() && !ex.IsZero() && !ex.After(nb) {
		c.fail(c.ix.Line(append(path, "expires")...), "%s: expires (%s) must be later than not_before (%s)",
			where, ex.Format(time.RFC3339), nb.Format(time.RFC3339))
	}
	v.Secret, v.SecretFile = c.secret(m, path, where)
	c.checkDuplicate(v, path, where)
	return v
}

// checkDuplicate refuses a secret used twice: a key shared by two versions or
// two keys defeats rotation and per-key rate limits, and is usually a
// copy-paste slip.
func (c *checker) checkDuplicate(v *Version, path []string, where string) {
	if v.Secret.IsZero() {
		return
	}
	field := "secret"
	if v.SecretFile != "" {
		field = "secret_file"
	}
	line := c.ix.Line(append(path, field)...)
	if first, dup := c.seen[v.Secret.Value()]; dup {
		c.fail(line, "%s has the same secret (prefix %s) as %s: every version needs a key of its own",
			where, v.Secret.Prefix(), first)
		return
	}
	c.seen[v.Secret.Value()] = fmt.Sprintf("%s (line %d)", where, line)
}

// timeField reads an optional bound. Only offset date-times are accepted: a
// local date-time would mean a different instant on every host.
func (c *checker) timeField(m map[string]any, path []string, where, field string) (time.Time, bool) {
	raw, present := m[field]
	if !present {
		return time.Time{}, true
	}
	line := c.ix.Line(append(path, field)...)
	const example = "like 2027-01-31T00:00:00Z"
	switch t := raw.(type) {
	case time.Time:
		return t, true
	case toml.LocalDateTime:
		c.fail(line, "%s: %s has no UTC offset, so the instant is ambiguous: add Z for UTC or an offset such as +02:00 (%s)", where, field, example)
	case toml.LocalDate:
		c.fail(line, "%s: %s is a date without a time: write an offset date-time %s", where, field, example)
	case toml.LocalTime:
		c.fail(line, "%s: %s is a time without a date: write an offset date-time %s", where, field, example)
	case string:
		c.fail(line, "%s: %s must be an offset date-time %s, written without quotes, not a string", where, field, example)
	default:
		c.fail(line, "%s: %s must be an offset date-time %s, not %s", where, field, example, typeName(raw))
	}
	return time.Time{}, false
}

// secret reads a version's secret, inline or from its secret_file. Messages
// name the version and the file, never the secret.
func (c *checker) secret(m map[string]any, path []string, where string) (Secret, string) {
	sv, hasS := m["secret"]
	fv, hasF := m["secret_file"]
	switch {
	case hasS && hasF:
		c.fail(c.ix.Line(append(path, "secret_file")...), "%s has both secret and secret_file: keep only one", where)
	case !hasS && !hasF:
		c.fail(c.ix.Line(path...), "%s has neither secret nor secret_file: add one of them", where)
	case hasS:
		line := c.ix.Line(append(path, "secret")...)
		s, ok := sv.(string)
		if !ok {
			c.fail(line, "%s: secret must be a string, not %s", where, typeName(sv))
			return Secret{}, ""
		}
		if problem := secretProblem(s); problem != "" {
			c.fail(line, "%s: the secret %s (a key is printable ASCII without spaces)", where, problem)
			return Secret{}, ""
		}
		return newSecret(s), ""
	default:
		return c.secretFile(fv, c.ix.Line(append(path, "secret_file")...), where)
	}
	return Secret{}, ""
}

func (c *checker) secretFile(raw any, line int, where string) (Secret, string) {
	p, ok := raw.(string)
	if !ok || p == "" {
		c.fail(line, "%s: secret_file must be a non-empty path string", where)
		return Secret{}, ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.dir, p)
	}
	data, err := c.opts.ReadFile(p)
	if err != nil {
		c.errs = append(c.errs, &ParseError{File: c.file, Line: line, Err: err,
			Message: fmt.Sprintf("%s: secret_file %q cannot be read: %s", where, p, ioReason(err))})
		return Secret{}, ""
	}
	c.hashFile(p, data)
	c.files = append(c.files, p)
	// Files made with `kubectl create secret --from-file` or an editor often
	// end in one newline that is not part of the key.
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	if problem := secretProblem(s); problem != "" {
		c.fail(line, "%s: the secret in secret_file %q %s (a key is printable ASCII without spaces; one trailing newline is ignored)",
			where, p, problem)
		return Secret{}, p
	}
	return newSecret(s), p
}

// callers validates [callers] against the keys found. A caller's value is a
// key name, or a table of panel = "key name" for a caller with keys on
// several panels.
func (c *checker) callers(raw any, keys map[string]*Key) map[string]callerKeys {
	callers := make(map[string]callerKeys)
	if raw == nil {
		return callers
	}
	tbl, ok := raw.(map[string]any)
	if !ok {
		c.fail(c.ix.Line("callers"), "callers must be a table ([callers]) of caller = \"key name\", not %s", typeName(raw))
		return callers
	}
	for _, name := range sortedKeys(tbl) {
		line := c.ix.Line("callers", name)
		if !c.validName(line, "caller", name) {
			continue
		}
		switch val := tbl[name].(type) {
		case string:
			if k := c.callerKey(line, name, val, keys); k != nil {
				callers[name] = oneKey(k)
			}
		case map[string]any:
			if ck, ok := c.callerTable(name, val, keys); ok {
				callers[name] = ck
			}
		default:
			c.fail(line, "caller %s must name a key with a string, or its key on each panel with a table, not %s", c.show(name), typeName(val))
		}
	}
	return callers
}

// callerKey resolves the key name a caller's entry gives, or reports why it
// cannot (nil).
func (c *checker) callerKey(line int, name, keyName string, keys map[string]*Key) *Key {
	switch {
	case keyName == "":
		c.fail(line, "caller %s names an empty key: write the name of a [[keys.NAME]] key", c.show(name))
	case keys[keyName] != nil:
		return keys[keyName]
	case c.looksLikeSecret(keyName):
		c.fail(line, "caller %s names a key that is not defined, and the value looks like a secret (prefix %s): write the key's name here, never its secret",
			c.show(name), Prefix(keyName))
	default:
		c.fail(line, "caller %s names key %q, which is not defined: add [[keys.%s]] or fix the name", c.show(name), keyName, keyName)
	}
	return nil
}

// looksLikeSecret guards the one place where a value the operator wrote is
// echoed back: a key name that is really a pasted key must not be printed.
func (c *checker) looksLikeSecret(s string) bool {
	_, known := c.seen[s]
	return known || isKeyShaped(s) || len(s) > 64
}

// typeName names a decoded TOML value's type, with its article, for
// messages.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time, toml.LocalDateTime:
		return "a date-time"
	case toml.LocalDate:
		return "a date"
	case toml.LocalTime:
		return "a time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// show quotes a name the operator wrote for a message, unless it looks like
// a pasted secret, in which case only its prefix is shown.
func (c *checker) show(s string) string {
	if c.looksLikeSecret(s) {
		return "(a name that looks like a secret, prefix " + Prefix(s) + ")"
	}
	return fmt.Sprintf("%q", s)
}

// suggest returns `; did you mean "x"?` when name is a likely typo of one of
// the allowed names, else "".
func suggest(name string, allowed ...string) string {
	best, bestDist := "", 3
	for _, a := range allowed {
		if d := levenshtein.ComputeDistance(strings.ToLower(name), a); d < bestDist {
			best, bestDist = a, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}
