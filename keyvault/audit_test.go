package keyvault_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/keyvault/vaulttest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// auditSecret is the n-th key of the audit scenario; its prefix is AuditNN0.
func auditSecret(n int) string {
	return "Audit" + string(rune('0'+n/10)) + string(rune('0'+n%10)) + "0." + leakMarker
}

// auditSteps is a scripted rotation as ops would do it, one vault per step.
var auditSteps = []struct{ name, vault string }{
	{"stage a new version of playlist-admin, valid from tomorrow", `
[callers]
"playlist-sync" = "playlist-admin"
"stats" = "readonly"
[[keys.playlist-admin]]
secret = "` + auditSecret(1) + `"
[[keys.playlist-admin]]
secret = "` + auditSecret(2) + `"
not_before = 2026-06-02T00:00:00Z
[[keys.readonly]]
secret = "` + auditSecret(3) + `"
`},
	{"make the new version valid now: it takes over", `
[callers]
"playlist-sync" = "playlist-admin"
"stats" = "readonly"
[[keys.playlist-admin]]
secret = "` + auditSecret(1) + `"
[[keys.playlist-admin]]
secret = "` + auditSecret(2) + `"
not_before = 2026-06-01T00:00:00Z
[[keys.readonly]]
secret = "` + auditSecret(3) + `"
`},
	{"a typo: the caller names a missing key (refused, the old vault stays)", `
[callers]
"playlist-sync" = "playlist-admn"
"stats" = "readonly"
[[keys.playlist-admin]]
secret = "` + auditSecret(2) + `"
not_before = 2026-06-01T00:00:00Z
[[keys.readonly]]
secret = "` + auditSecret(3) + `"
`},
	{"remove the old version; a new caller; stats moves to its own key", `
[callers]
"playlist-sync" = "playlist-admin"
"stats" = "stats"
"archiver" = "readonly"
[[keys.playlist-admin]]
secret = "` + auditSecret(2) + `"
not_before = 2026-06-01T00:00:00Z
[[keys.readonly]]
secret = "` + auditSecret(3) + `"
[[keys.stats]]
secret = "` + auditSecret(4) + `"
expires = 2027-01-01T00:00:00Z
`},
	{"revoke: remove the archiver; shorten the stats key's life", `
[callers]
"playlist-sync" = "playlist-admin"
"stats" = "stats"
[[keys.playlist-admin]]
secret = "` + auditSecret(2) + `"
not_before = 2026-06-01T00:00:00Z
[[keys.readonly]]
secret = "` + auditSecret(3) + `"
[[keys.stats]]
secret = "` + auditSecret(4) + `"
expires = 2026-12-01T00:00:00Z
`},
	{"only a comment changes: reloaded, nothing in the audit trail", `
# reviewed by ops
[callers]
"playlist-sync" = "playlist-admin"
"stats" = "stats"
[[keys.playlist-admin]]
secret = "` + auditSecret(2) + `"
not_before = 2026-06-01T00:00:00Z
[[keys.readonly]]
secret = "` + auditSecret(3) + `"
[[keys.stats]]
secret = "` + auditSecret(4) + `"
expires = 2026-12-01T00:00:00Z
`},
}

// TestAuditTrailGolden runs the scripted edits through a Watcher and compares
// the log lines it writes, exactly as ops would read them, with
// testdata/audit.golden (go test -run AuditTrail -update rewrites it).
func TestAuditTrailGolden(t *testing.T) {
	path := writeVault(t, auditSteps[0].vault, nil)
	var buf bytes.Buffer
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "" // a golden file has no clock
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&buf), zapcore.InfoLevel))
	w, err := keyvault.NewWatcher(keyvault.WatcherOptions{
		Path: path, PollInterval: -1, DisableNotify: true, Logger: logger, Now: fixedNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	out.WriteString("# step 0: " + auditSteps[0].name + "\n" + buf.String())
	for i, step := range auditSteps[1:] {
		buf.Reset()
		vaulttest.WriteAtomic(t, path, step.vault)
		_ = w.Reload() // a refused step is part of the script
		out.WriteString("# step " + string(rune('1'+i)) + ": " + step.name + "\n" + buf.String())
	}
	got := strings.ReplaceAll(out.String(), filepath.Dir(path), "$DIR")
	if strings.Contains(got, leakMarker) {
		t.Fatalf("the audit trail leaks a secret:\n%s", got)
	}
	golden := filepath.Join("testdata", "audit.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("audit trail differs from %s (run with -update after checking):\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

func TestDiffNilOldIsEverythingAdded(t *testing.T) {
	v := vaultWith(t, "", "not_before = 2026-01-01T00:00:00Z")
	c := keyvault.Diff(nil, v, testNow)
	if len(c.Added) != 2 || len(c.Activated) != 1 || len(c.CallersAdded) != 1 || len(c.Removed)+len(c.Deactivated) != 0 {
		t.Errorf("Diff(nil, v) = %+v", c)
	}
	if !keyvault.Diff(v, v, testNow).Empty() {
		t.Error("Diff(v, v) is not empty")
	}
}
