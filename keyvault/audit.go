package keyvault

import (
	"crypto/sha256"
	"time"

	"go.uber.org/zap/zapcore"
)

// Changes is what a reload changed, for the audit trail. Versions are named
// "KEY PREFIX" and callers by their identity, so an entry never holds a
// secret. Each list is in key (or caller) order; an empty list means nothing
// of that kind changed.
type Changes struct {
	Added       []string // versions new in the vault
	Removed     []string // versions no longer in the vault
	Changed     []string // versions whose not_before, expires or secret_file changed
	Activated   []string // versions that became the active one of their key
	Deactivated []string // versions, still in the vault, that stopped being active

	CallersAdded   []string // "CALLER -> KEY"
	CallersRemoved []string // "CALLER (was KEY)"
	CallersMoved   []string // "CALLER: OLD -> NEW"
}

// versionID names a version across two vaults: its key and its secret. Two
// versions of one key never share a secret (validation refuses it).
type versionID struct {
	key    string
	secret [sha256.Size]byte
}

func idOf(v *Version) versionID { return versionID{v.Key, v.Secret.identity()} }

func label(v *Version) string { return v.Key + " " + v.Secret.Prefix() }

// Diff lists what changed from old to cur, with the active versions judged at
// now. A nil old is an empty vault.
func Diff(old, cur *Vault, now time.Time) Changes {
	var c Changes
	oldVersions := versionsByID(old)
	curVersions := versionsByID(cur)
	for _, k := range cur.Keys() {
		for _, v := range k.Versions {
			prev, ok := oldVersions[idOf(v)]
			switch {
			case !ok:
				c.Added = append(c.Added, label(v))
			case !prev.NotBefore.Equal(v.NotBefore) || !prev.Expires.Equal(v.Expires) || prev.SecretFile != v.SecretFile:
				c.Changed = append(c.Changed, label(v))
			}
		}
	}
	for _, k := range old.Keys() {
		for _, v := range k.Versions {
			if _, ok := curVersions[idOf(v)]; !ok {
				c.Removed = append(c.Removed, label(v))
			}
		}
	}
	c.diffActive(old, cur, now, curVersions)
	c.diffCallers(old, cur)
	return c
}

func versionsByID(v *Vault) map[versionID]*Version {
	m := make(map[versionID]*Version)
	for _, k := range v.Keys() {
		for _, ver := range k.Versions {
			m[idOf(ver)] = ver
		}
	}
	return m
}

// diffActive compares each key's active version. A removed version is only
// reported as removed, not also as deactivated.
func (c *Changes) diffActive(old, cur *Vault, now time.Time, curVersions map[versionID]*Version) {
	names := make(map[string]bool)
	for _, k := range old.Keys() {
		names[k.Name] = true
	}
	for _, k := range cur.Keys() {
		names[k.Name] = true
	}
	for _, name := range sortedKeys(names) {
		var was, is *Version
		if k := old.Key(name); k != nil {
			was = k.Active(now)
		}
		if k := cur.Key(name); k != nil {
			is = k.Active(now)
		}
		if was != nil && is != nil && idOf(was) == idOf(is) {
			continue
		}
		if was != nil {
			if _, still := curVersions[idOf(was)]; still {
				c.Deactivated = append(c.Deactivated, label(was))
			}
		}
		if is != nil {
			c.Activated = append(c.Activated, label(is))
		}
	}
}

func (c *Changes) diffCallers(old, cur *Vault) {
	for _, caller := range cur.Callers() {
		k := cur.keysLabel(caller)
		_, had := old.KeyOf(caller)
		switch prev := old.keysLabel(caller); {
		case !had:
			c.CallersAdded = append(c.CallersAdded, caller+" -> "+k)
		case prev != k:
			c.CallersMoved = append(c.CallersMoved, caller+": "+prev+" -> "+k)
		}
	}
	for _, caller := range old.Callers() {
		if _, ok := cur.KeyOf(caller); !ok {
			c.CallersRemoved = append(c.CallersRemoved, caller+" (was "+old.keysLabel(caller)+")")
		}
	}
}

// Empty reports whether nothing changed that the audit trail names (the file
// may still differ, in comments or layout).
func (c Changes) Empty() bool {
	return len(c.Added)+len(c.Removed)+len(c.Changed)+len(c.Activated)+len(c.Deactivated)+
		len(c.CallersAdded)+len(c.CallersRemoved)+len(c.CallersMoved) == 0
}

// MarshalLogObject writes the non-empty lists, for zap.Object.
func (c Changes) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, f := range c.lists() {
		if len(f.list) > 0 {
			if err := enc.AddArray(f.name, stringArray(f.list)); err != nil {
				return err
			}
		}
	}
	return nil
}

// changeList is one named list of Changes, named as in the log line.
type changeList struct {
	name string
	list []string
}

func (c Changes) lists() []changeList {
	return []changeList{
		{"versions_added", c.Added}, {"versions_removed", c.Removed}, {"versions_changed", c.Changed},
		{"activated", c.Activated}, {"deactivated", c.Deactivated},
		{"callers_added", c.CallersAdded}, {"callers_removed", c.CallersRemoved}, {"callers_moved", c.CallersMoved},
	}
}

// Lines returns the audit trail as text, one line per entry, named as in
// the "vault reloaded" log line ("activated: playlist-admin g0hsQEz6"):
// for the status page. Like the log line, it holds prefixes only.
func (c Changes) Lines() []string {
	var out []string
	for _, f := range c.lists() {
		for _, s := range f.list {
			out = append(out, f.name+": "+s)
		}
	}
	return out
}

type stringArray []string

func (a stringArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, s := range a {
		enc.AppendString(s)
	}
	return nil
}
