package keyvault

import (
	"fmt"
	"slices"
	"strings"

	"github.com/scgate/scgate/internal/tomlpos"
)

// DefaultPanel is the name of the one panel of a gateway configured with a
// single [upstream] section, and the panel assumed when LoadOptions.Panels
// is empty.
const DefaultPanel = "default"

// callerKeys is what a caller holds: a key per panel.
type callerKeys struct {
	// only is the caller's key when it holds exactly one, so that the
	// common lookup needs no map.
	only *Key
	// byPanel maps a panel name to the caller's key on it (also for one).
	byPanel map[string]*Key
	panels  []string // sorted
}

// KeyFor returns the caller's key on panel and whether the caller is known
// at all; the key is nil when the caller holds no key on that panel. It
// does not allocate.
func (v *Vault) KeyFor(caller, panel string) (*Key, bool) {
	if v == nil {
		return nil, false
	}
	ck, ok := v.callers[caller]
	if !ok {
		return nil, false
	}
	if ck.only != nil {
		if ck.only.Panel == panel {
			return ck.only, true
		}
		return nil, true
	}
	return ck.byPanel[panel], true
}

// OnlyPanel returns the panel of a caller that holds a key on exactly one
// panel; false when the caller is unknown or holds keys on several.
func (v *Vault) OnlyPanel(caller string) (string, bool) {
	if v == nil {
		return "", false
	}
	ck, ok := v.callers[caller]
	if !ok || ck.only == nil {
		return "", false
	}
	return ck.only.Panel, true
}

// PanelsOf returns the panels the caller holds a key on, sorted.
func (v *Vault) PanelsOf(caller string) []string {
	if v == nil {
		return nil
	}
	return slices.Clone(v.callers[caller].panels)
}

// Panels returns the panel names the vault was validated against, sorted.
func (v *Vault) Panels() []string {
	if v == nil {
		return nil
	}
	return slices.Clone(v.panels)
}

// panelSet returns the panels keys may name, sorted: opts.Panels, or
// DefaultPanel alone.
func (o LoadOptions) panelSet() []string {
	if len(o.Panels) == 0 {
		return []string{DefaultPanel}
	}
	p := slices.Clone(o.Panels)
	slices.Sort(p)
	return slices.Compact(p)
}

// keyPanel decides the panel of key k from the upstream fields of its
// versions: they must agree and name a configured panel; none may be given
// when exactly one panel is configured.
func (c *checker) keyPanel(k *Key, raws []any) {
	named, firstLine := "", 0
	for i, el := range raws {
		m, ok := el.(map[string]any)
		if !ok {
			continue
		}
		raw, present := m["upstream"]
		if !present {
			continue
		}
		path := []string{"keys", k.Name, tomlpos.Elem(i), "upstream"}
		line := c.ix.Line(path...)
		where := fmt.Sprintf("keys.%s[%d]", k.Name, i)
		name, ok := raw.(string)
		switch {
		case !ok:
			c.fail(line, "%s: upstream must be a panel name string, not %s", where, typeName(raw))
			return
		case !slices.Contains(c.panels, name):
			c.fail(line, "%s: upstream %q is not a configured panel (configured: %s)%s",
				where, name, strings.Join(c.panels, ", "), suggest(name, c.panels...))
			return
		case named != "" && name != named:
			c.fail(line, "%s: upstream %q differs from %q on line %d: every version of a key belongs to the same panel",
				where, name, named, firstLine)
			return
		}
		named, firstLine = name, line
	}
	switch {
	case named != "":
		k.Panel = named
	case len(c.panels) == 1:
		k.Panel = c.panels[0]
	default:
		c.fail(c.ix.Line("keys", k.Name), "key %q does not name its panel: add upstream = \"NAME\" to its versions (one of %s)",
			k.Name, strings.Join(c.panels, ", "))
	}
}

// callerTable validates a caller's panel → key table.
func (c *checker) callerTable(name string, tbl map[string]any, keys map[string]*Key) (callerKeys, bool) {
	ck := callerKeys{byPanel: make(map[string]*Key, len(tbl))}
	ok := true
	if len(tbl) == 0 {
		c.fail(c.ix.Line("callers", name), "caller %s has an empty panel table: write panel = \"key name\" entries", c.show(name))
		return ck, false
	}
	for _, panel := range sortedKeys(tbl) {
		line := c.ix.Line("callers", name, panel)
		keyName, isString := tbl[panel].(string)
		var k *Key
		switch {
		case !slices.Contains(c.panels, panel):
			c.fail(line, "caller %s: %q is not a configured panel (configured: %s)%s; quote caller names that contain dots: \"a.b\" = \"key\"",
				c.show(name), panel, strings.Join(c.panels, ", "), suggest(panel, c.panels...))
		case !isString:
			c.fail(line, "caller %s: panel %q must name a key with a string, not %s", c.show(name), panel, typeName(tbl[panel]))
		default:
			k = c.callerKey(line, name, keyName, keys)
		}
		switch {
		case k == nil:
			ok = false
		case k.Panel != "" && k.Panel != panel:
			c.fail(line, "caller %s: key %q belongs to panel %q, not %q: a key is only ever sent to its own panel",
				c.show(name), keyName, k.Panel, panel)
			ok = false
		default:
			ck.byPanel[panel] = k
			ck.panels = append(ck.panels, panel)
		}
	}
	if ok && len(ck.panels) == 1 {
		ck.only = ck.byPanel[ck.panels[0]]
	}
	return ck, ok
}

// oneKey is what a caller holds when [callers] names a single key.
func oneKey(k *Key) callerKeys {
	return callerKeys{only: k, byPanel: map[string]*Key{k.Panel: k}, panels: []string{k.Panel}}
}

// keysLabel names what a caller holds for the audit trail: its key's name,
// or panel=key pairs when it holds keys on several panels.
func (v *Vault) keysLabel(caller string) string {
	if v == nil {
		return ""
	}
	ck := v.callers[caller]
	if ck.only != nil {
		return ck.only.Name
	}
	parts := make([]string, 0, len(ck.panels))
	for _, p := range ck.panels {
		parts = append(parts, p+"="+ck.byPanel[p].Name)
	}
	return strings.Join(parts, ",")
}
