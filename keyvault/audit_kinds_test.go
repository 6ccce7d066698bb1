package keyvault_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
)

// TestAuditChangeKinds gives, for each kind of change the audit trail names,
// one edit and the "changes" object written by hand: it does not depend on
// the golden file, which is regenerated from the implementation.
func TestAuditChangeKinds(t *testing.T) {
	key := func(name string, n int, extra string) string {
		return "[[keys." + name + "]]\nsecret = \"" + auditSecret(n) + "\"\n" + extra
	}
	callers := func(pairs ...string) string {
		s := "[callers]\n"
		for i := 0; i < len(pairs); i += 2 {
			s += `"` + pairs[i] + `" = "` + pairs[i+1] + "\"\n"
		}
		return s
	}
	base := callers("sync", "admin") + key("admin", 1, "")
	for _, tc := range []struct {
		kind     string
		old, cur string
		want     string
	}{
		{"a version added (not yet valid, so not active)", base,
			base + key("admin", 2, "not_before = 2026-06-02T00:00:00Z\n"),
			`{"versions_added":["admin Audit020"]}`},
		{"a version added that takes over", base,
			base + key("admin", 2, "not_before = 2026-06-01T00:00:00Z\n"),
			`{"versions_added":["admin Audit020"],"activated":["admin Audit020"],"deactivated":["admin Audit010"]}`},
		{"the active version removed: only 'removed', never also 'deactivated'",
			base + key("admin", 2, "not_before = 2026-06-01T00:00:00Z\n"),
			base,
			`{"versions_removed":["admin Audit020"],"activated":["admin Audit010"]}`},
		{"a version's expiry changed", base,
			callers("sync", "admin") + key("admin", 1, "expires = 2027-01-01T00:00:00Z\n"),
			`{"versions_changed":["admin Audit010"]}`},
		{"a version expires: the standby takes over",
			base + key("admin", 2, "not_before = 2026-06-01T00:00:00Z\n"),
			callers("sync", "admin") + key("admin", 1, "") + key("admin", 2, "not_before = 2026-06-01T00:00:00Z\nexpires = 2026-06-01T06:00:00Z\n"),
			`{"versions_changed":["admin Audit020"],"activated":["admin Audit010"],"deactivated":["admin Audit020"]}`},
		{"a caller added", base,
			callers("sync", "admin", "stats", "admin") + key("admin", 1, ""),
			`{"callers_added":["stats -> admin"]}`},
		{"a caller removed",
			callers("sync", "admin", "stats", "admin") + key("admin", 1, ""),
			base,
			`{"callers_removed":["stats (was admin)"]}`},
		{"a caller moved to a new key", base,
			callers("sync", "other") + key("admin", 1, "") + key("other", 3, ""),
			`{"versions_added":["other Audit030"],"activated":["other Audit030"],"callers_moved":["sync: admin -> other"]}`},
		{"only layout and comments changed", base,
			"# rotated by ops\n" + callers("sync", "admin") + "\n\n" + key("admin", 1, ""),
			`{}`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			c := keyvault.Diff(vaulttest.Parse(t, tc.old), vaulttest.Parse(t, tc.cur), testNow)
			enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{})
			buf, err := enc.EncodeEntry(zapcore.Entry{}, []zapcore.Field{zap.Object("changes", c)})
			if err != nil {
				t.Fatal(err)
			}
			var line struct{ Changes json.RawMessage }
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("%v in %s", err, buf)
			}
			if got := string(line.Changes); got != tc.want {
				t.Errorf("changes\n got %s\nwant %s", got, tc.want)
			}
			if c.Empty() != (tc.want == "{}") {
				t.Errorf("Empty() = %v for %s", c.Empty(), tc.want)
			}
		})
	}
}

// TestAuditLineKinds checks each kind of line the watcher writes (loaded,
// reloaded, refused with the last good vault kept, warning) against fields
// written by hand.
func TestAuditLineKinds(t *testing.T) {
	good := "[callers]\n\"sync\" = \"admin\"\n[[keys.admin]]\nsecret = \"" + auditSecret(1) + "\"\n"
	path := writeVault(t, good, nil)
	var buf bytes.Buffer
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.InfoLevel))
	w, err := keyvault.NewWatcher(keyvault.WatcherOptions{
		Path: path, PollInterval: -1, DisableNotify: true, Logger: logger, Now: fixedNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		vault string
		want  []map[string]any
	}{
		{"", []map[string]any{{"level": "info", "msg": "vault loaded", "keys": 1.0, "versions": 1.0, "callers": 1.0,
			"active": []any{"admin=Audit010"}}}},
		{good + "[[keys.spare]]\nsecret = \"" + auditSecret(2) + "\"\n", []map[string]any{
			{"level": "info", "msg": "vault reloaded", "keys": 2.0, "versions": 2.0, "callers": 1.0,
				"active":  []any{"admin=Audit010", "spare=Audit020"},
				"changes": map[string]any{"versions_added": []any{"spare Audit020"}, "activated": []any{"spare Audit020"}}},
			{"level": "warn", "msg": "vault warning", "line": 5.0, "reason": `key "spare" is not used by any caller`},
		}},
		{"[callers]\n\"sync\" = \"admn\"\n[[keys.admin]]\nsecret = \"" + auditSecret(1) + "\"\n", []map[string]any{
			{"level": "error", "msg": "vault reload failed; keeping the last good vault", "line": 2.0,
				"reason": `caller "sync" names key "admn", which is not defined: add [[keys.admn]] or fix the name`}}},
	}
	for i, step := range steps {
		if i > 0 {
			buf.Reset()
			vaulttest.WriteAtomic(t, path, step.vault)
			_ = w.Reload()
		}
		if strings.Contains(buf.String(), leakMarker) {
			t.Fatalf("step %d leaks a secret: %s", i, buf.String())
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != len(step.want) {
			t.Fatalf("step %d: %d lines, want %d:\n%s", i, len(lines), len(step.want), buf.String())
		}
		for j, l := range lines {
			var got map[string]any
			if err := json.Unmarshal([]byte(l), &got); err != nil {
				t.Fatalf("step %d: %v in %s", i, err, l)
			}
			for k, want := range step.want[j] {
				if g, _ := json.Marshal(got[k]); string(g) != mustJSON(t, want) {
					t.Errorf("step %d line %d: %s = %s, want %s", i, j, k, g, mustJSON(t, want))
				}
			}
			if got["file"] != path {
				t.Errorf("step %d line %d: file = %v, want %s", i, j, got["file"], path)
			}
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
