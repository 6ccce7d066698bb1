package keyvault_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scgate/scgate/keyvault"
)

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// writeVault writes content as keys.toml, and files beside it, in a new
// temporary directory, and returns the vault's path.
func writeVault(t *testing.T, content string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "keys.toml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// problems flattens a Load error into its ParseErrors.
func problems(t *testing.T, err error) []*keyvault.ParseError {
	t.Helper()
	var out []*keyvault.ParseError
	var walk func(error)
	walk = func(e error) {
		var pe *keyvault.ParseError
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
		} else if errors.As(e, &pe) {
			out = append(out, pe)
		} else {
			t.Errorf("error %v is not a *ParseError", e)
		}
	}
	walk(err)
	return out
}

// markedLines returns the 1-based lines of content that end with "#!", the
// marker the validation cases put on each line that must be reported.
func markedLines(content string) []int {
	var lines []int
	for i, l := range strings.Split(content, "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), "#!") {
			lines = append(lines, i+1)
		}
	}
	return lines
}

const exampleVault = `# Which key each caller identity uses.
[callers]
"playlist-sync" = "playlist-admin"
"spiffe://prod.example/ns/radio/sa/stats" = "readonly"
"stats-backup" = "readonly"

# During a rotation the old and the new version are both listed.
[[keys.playlist-admin]]
secret = "g0hsQEz6.JSXQWKby36Y1CefRA4JuUGKEg3ACY9wt"
expires = 2027-01-31T00:00:00Z

[[keys.playlist-admin]]
secret_file = "playlist-admin-2"   # relative to this file's folder
not_before = 2026-12-01T00:00:00+01:00
expires = 2027-06-30T00:00:00Z

[[keys.readonly]]
secret_file = "ro"
`

func TestLoadExample(t *testing.T) {
	path := writeVault(t, exampleVault, map[string]string{
		"playlist-admin-2": "k8sSecr1.AAAAbbbbCCCCddddEEEEffff\n", // one newline, as kubectl writes
		"ro":               "r0r0r0r0.ReadOnlyReadOnlyReadOnly\r\n",
	})
	v, warnings, err := keyvault.Load(path, keyvault.LoadOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	if got := strings.Join(v.Callers(), ","); got != "playlist-sync,spiffe://prod.example/ns/radio/sa/stats,stats-backup" {
		t.Errorf("Callers = %s", got)
	}
	if got := strings.Join(v.CallersOf("readonly"), ","); got != "spiffe://prod.example/ns/radio/sa/stats,stats-backup" {
		t.Errorf("CallersOf(readonly) = %s", got)
	}
	keys := v.Keys()
	if len(keys) != 2 || keys[0].Name != "playlist-admin" || keys[1].Name != "readonly" {
		t.Fatalf("Keys = %v", keys)
	}
	pa := v.Key("playlist-admin")
	if len(pa.Versions) != 2 {
		t.Fatalf("versions = %v", pa.Versions)
	}
	second := pa.Versions[1]
	want := keyvault.Version{Key: "playlist-admin", Index: 1, Line: 12,
		NotBefore: time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC), Expires: time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC),
		SecretFile: filepath.Join(filepath.Dir(path), "playlist-admin-2")}
	if second.Key != want.Key || second.Index != want.Index || second.Line != want.Line ||
		!second.NotBefore.Equal(want.NotBefore) || !second.Expires.Equal(want.Expires) || second.SecretFile != want.SecretFile {
		t.Errorf("version = %+v, want %+v", second, want)
	}
	if second.Secret.Value() != "k8sSecr1.AAAAbbbbCCCCddddEEEEffff" {
		t.Errorf("secret_file value not trimmed of its one newline")
	}
	if got := v.Key("readonly").Versions[0].Secret.Value(); got != "r0r0r0r0.ReadOnlyReadOnlyReadOnly" {
		t.Errorf("CRLF not trimmed: %q", got)
	}
	if pa.Versions[0].Line != 8 || pa.Versions[0].SecretFile != "" {
		t.Errorf("first version = %+v", pa.Versions[0])
	}
	if k, ok := v.KeyOf("stats-backup"); !ok || k.Name != "readonly" {
		t.Errorf("KeyOf = %v, %v", k, ok)
	}
	if _, ok := v.KeyOf("nobody"); ok || v.Key("nothing") != nil {
		t.Error("unknown names found")
	}
	if v.Path() != path || len(v.SecretFiles()) != 2 {
		t.Errorf("Path = %s, SecretFiles = %v", v.Path(), v.SecretFiles())
	}
}

func TestParseInlineForm(t *testing.T) {
	content := `[callers]
svc = "k"

[keys]
k = [
  { secret = "aaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbb", expires = 2027-01-01T00:00:00Z },
  { secret = "cccccccc.dddddddddddddddddddddddd" },
]
`
	v, _, err := keyvault.Parse("inline.toml", []byte(content), keyvault.LoadOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	vs := v.Key("k").Versions
	if len(vs) != 2 || vs[0].Line != 6 || vs[1].Line != 7 {
		t.Errorf("versions = %v (lines %d, %d)", vs, vs[0].Line, vs[1].Line)
	}
}

func TestParseWarnings(t *testing.T) {
	content := `[callers]
svc = "staged"

[[keys.staged]]
secret = "aaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbb"
not_before = 2026-07-01T00:00:00Z

[[keys.old]]
secret = "cccccccc.dddddddddddddddddddddddd"
expires = 2026-01-01T00:00:00Z
`
	v, warnings, err := keyvault.Parse("w.toml", []byte(content), keyvault.LoadOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		t.Fatal("no vault")
	}
	want := []struct {
		line int
		msg  string
	}{
		{8, `key "old" is not used by any caller`},
		{8, `key "old" has no version valid now (all have expired)`},
		{4, `key "staged" has no version valid now; the next one (line 4) becomes valid at 2026-07-01T00:00:00Z`},
	}
	if len(warnings) != len(want) {
		t.Fatalf("warnings = %v", warnings)
	}
	for i, w := range want {
		if warnings[i].Line != w.line || !strings.Contains(warnings[i].Message, w.msg) || warnings[i].File != "w.toml" {
			t.Errorf("warning %d = %v, want line %d %q", i, warnings[i], w.line, w.msg)
		}
	}
	if !strings.HasPrefix(warnings[0].String(), "w.toml:8: ") {
		t.Errorf("Warning.String = %q", warnings[0].String())
	}
}

func TestLoadUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.toml")
	_, _, err := keyvault.Load(path, keyvault.LoadOptions{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if ps := problems(t, err); len(ps) != 1 || ps[0].File != path || ps[0].Line != 0 {
		t.Errorf("problems = %v", ps)
	}
	if !strings.HasPrefix(err.Error(), path+": cannot read the vault file") {
		t.Errorf("err = %q", err)
	}
}

func TestLoadOptionsReadFile(t *testing.T) {
	files := map[string]string{
		"/etc/scgate/keys.toml": "[callers]\nsvc = \"k\"\n[[keys.k]]\nsecret_file = \"k.key\"\n",
		"/etc/scgate/k.key":     "ffffffff.gggggggggggggggggggggggg\n",
	}
	read := func(p string) ([]byte, error) {
		if d, ok := files[p]; ok {
			return []byte(d), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	v, _, err := keyvault.Load("/etc/scgate/keys.toml", keyvault.LoadOptions{ReadFile: read, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := v.Select("svc", testNow); got.Secret.Value() != "ffffffff.gggggggggggggggggggggggg" {
		t.Errorf("secret = %v", got)
	}
}

func TestDigest(t *testing.T) {
	path := writeVault(t, "[callers]\nsvc = \"k\"\n[[keys.k]]\nsecret_file = \"k.key\"\n",
		map[string]string{"k.key": "ffffffff.gggggggggggggggggggggggg"})
	load := func() [32]byte {
		t.Helper()
		v, _, err := keyvault.Load(path, keyvault.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return v.Digest()
	}
	first := load()
	if load() != first {
		t.Error("digest differs for the same files")
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "k.key"), []byte("hhhhhhhh.iiiiiiiiiiiiiiiiiiiiiiii"), 0o600); err != nil {
		t.Fatal(err)
	}
	if load() == first {
		t.Error("digest does not cover the secret_file")
	}
}

func TestEmptyVaultRefused(t *testing.T) {
	for _, content := range []string{"", "\n\n", "# only a comment\n", "[callers]\n[keys]\n"} {
		_, _, err := keyvault.Parse("empty.toml", []byte(content), keyvault.LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), "empty.toml: the vault defines no callers and no keys") {
			t.Errorf("Parse(%q) = %v", content, err)
		}
	}
}

// TestLoadRefusesWhatIsNotARegularFile: a FIFO in the vault's place (or as
// a secret_file) must not block the load until someone writes to it (issue
// 7: it hung the watcher, SIGHUP and shutdown); a directory or a device is
// refused too, naming the path.
func TestLoadRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	withSecretFile := filepath.Join(dir, "keys.toml")
	if err := os.WriteFile(withSecretFile, []byte("[callers]\n\"a\" = \"k\"\n[[keys.k]]\nsecret_file = \"fifo\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, withSecretFile, dir, "/dev/zero"} {
		done := make(chan error, 1)
		go func() {
			_, _, err := keyvault.Load(path, keyvault.LoadOptions{})
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: err = %v, want it refused as not a regular file", path, err)
			}
		case <-time.After(10 * time.Second):
			// Release the blocked open by opening the other end.
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			t.Fatalf("loading %s blocked", path)
		}
	}
}
