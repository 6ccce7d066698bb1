package keyvault_test

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/scgate/scgate/keyvault"
)

// okKey is a valid key every case carries, so that each case also proves the
// report does not leak a secret that sits in the file.
const okKey = `
[[keys.ok]]
secret = "` + leakySecret + `"
`

// TestValidationErrors checks each problem the loader must refuse, the line
// it is reported on (the lines marked "#!", in order) and what the message
// says, and that no report contains a secret.
func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name  string
		vault string
		want  []string // one substring per marked line
		files map[string]string
	}{
		{"unknown top-level field", "secrets = 1 #!\n" + okKey,
			[]string{`unknown field "secrets" at the top level`}, nil},
		{"misspelt callers table", "[caller] #!\nsvc = \"ok\"\n" + okKey,
			[]string{`unknown field "caller" at the top level (a vault has only [callers] and [[keys.NAME]] tables); did you mean "callers"?`}, nil},
		{"unknown version field", okKey + "expire = 2027-01-01T00:00:00Z #!\n",
			[]string{`unknown field "expire" in keys.ok[0] (allowed: secret, secret_file, not_before, expires, upstream); did you mean "expires"?`}, nil},
		{"unknown sub-table in a version", okKey + "[keys.ok.extra] #!\nx = 1\n",
			[]string{`unknown field "extra" in keys.ok[0]`}, nil},
		{"caller names a missing key", "[callers]\nsvc = \"ok\"\nother = \"nope\" #!\n" + okKey,
			[]string{`caller "other" names key "nope", which is not defined: add [[keys.nope]]`}, nil},
		{"caller value is a secret", "[callers]\nsvc = \"" + leakySecret + "\" #!\n" + okKey,
			[]string{`looks like a secret (prefix Zq7Xw9Lm)`}, nil},
		{"caller value is not a string", "[callers]\nsvc = 5 #!\n" + okKey,
			[]string{`caller "svc" must name a key with a string, or its key on each panel with a table, not an integer`}, nil},
		{"dotted caller name", "[callers]\nsvc.example = \"ok\" #!\n" + okKey,
			[]string{`quote caller names that contain dots`}, nil},
		{"empty caller name", "[callers]\n\"\" = \"ok\" #!\n" + okKey,
			[]string{`a caller name must not be empty`}, nil},
		{"control character in caller name", "[callers]\n\"a\\u0007b\" = \"ok\" #!\n" + okKey,
			[]string{`caller name "a\ab" contains a control character`}, nil},
		{"caller names an empty key", "[callers]\nsvc = \"\" #!\n" + okKey,
			[]string{`caller "svc" names an empty key`}, nil},
		{"empty key name", okKey + "[[keys.\"\"]] #!\nsecret = \"abcdefgh.ijklmnopqrstuvwxyz012345\"\n",
			[]string{`a key name must not be empty`}, nil},
		{"key without versions", okKey + "[keys]\nempty = [] #!\n",
			[]string{`key "empty" has no versions`}, nil},
		{"key as a plain table", okKey + "[keys.plain] #!\nsecret = \"abcdefgh.ijklmnopqrstuvwxyz012345\"\n",
			[]string{`key "plain" must be written as [[keys.plain]] entries (a list of versions), not as a table`}, nil},
		{"version not a table", okKey + "[keys]\nodd = [\"x\"] #!\n",
			[]string{`keys.odd[0] must be a table with a secret or secret_file, not a string`}, nil},
		{"keys not a table", "keys = 5 #!\n",
			[]string{`keys must hold [[keys.NAME]] tables, not an integer`}, nil},
		{"callers not a table", "callers = \"ok\" #!\n" + okKey,
			[]string{`callers must be a table`}, nil},
		{"both secret and secret_file", okKey + "secret_file = \"ok.key\" #!\n",
			[]string{`keys.ok[0] has both secret and secret_file: keep only one`}, map[string]string{"ok.key": "x"}},
		{"neither secret nor secret_file", okKey + "[[keys.ok]] #!\nexpires = 2027-01-01T00:00:00Z\n",
			[]string{`keys.ok[1] has neither secret nor secret_file`}, nil},
		{"secret not a string", okKey + "[[keys.b]]\nsecret = 42 #!\n",
			[]string{`keys.b[0]: secret must be a string, not an integer`}, nil},
		{"secret with a trailing space", "[[keys.b]]\nsecret = \"" + leakySecret + " \" #!\n",
			[]string{`keys.b[0]: the secret contains whitespace (a space, tab or line break) at byte 31`}, nil},
		{"secret with an escaped newline", "[[keys.b]]\nsecret = \"" + leakySecret + "\\r\\n\" #!\n",
			[]string{`the secret contains whitespace`}, nil},
		{"secret with a control character", "[[keys.b]]\nsecret = \"" + leakySecret + "\\u0007\" #!\n",
			[]string{`the secret contains a control character at byte 31`}, nil},
		{"secret with non-ASCII", "[[keys.b]]\nsecret = \"" + leakySecret + "é\" #!\n",
			[]string{`the secret contains a non-ASCII character`}, nil},
		{"empty secret", okKey + "[[keys.b]]\nsecret = \"\" #!\n",
			[]string{`keys.b[0]: the secret is empty`}, nil},
		{"unreadable secret_file", okKey + "[[keys.b]]\nsecret_file = \"missing.key\" #!\n",
			[]string{`missing.key" cannot be read: no such file or directory`}, nil},
		{"secret_file with two trailing newlines", okKey + "[[keys.b]]\nsecret_file = \"b.key\" #!\n",
			[]string{`b.key" contains whitespace (a space, tab or line break) at byte 31 (a key is printable ASCII without spaces; one trailing newline is ignored)`},
			map[string]string{"b.key": "Qq7Xw9Lm." + leakMarker + "\n\n"}},
		{"secret_file with a space inside", okKey + "[[keys.b]]\nsecret_file = \"b.key\" #!\n",
			[]string{`contains whitespace (a space, tab or line break) at byte 10`},
			map[string]string{"b.key": "Qq7Xw9Lm. " + leakMarker}},
		{"empty secret_file", okKey + "[[keys.b]]\nsecret_file = \"b.key\" #!\n",
			[]string{`b.key" is empty`}, map[string]string{"b.key": "\n"}},
		{"secret_file not a string", okKey + "[[keys.b]]\nsecret_file = 1 #!\n",
			[]string{`secret_file must be a non-empty path string`}, nil},
		{"expires equal to not_before", okKey + "not_before = 2027-01-01T00:00:00Z\nexpires = 2027-01-01T00:00:00Z #!\n",
			[]string{`keys.ok[0]: expires (2027-01-01T00:00:00Z) must be later than not_before (2027-01-01T00:00:00Z)`}, nil},
		{"expires before not_before", okKey + "expires = 2026-01-01T00:00:00+02:00 #!\nnot_before = 2027-01-01T00:00:00Z\n",
			[]string{`expires (2026-01-01T00:00:00+02:00) must be later than not_before`}, nil},
		{"local date-time", okKey + "not_before = 2026-12-01T00:00:00 #!\n",
			[]string{`keys.ok[0]: not_before has no UTC offset, so the instant is ambiguous: add Z for UTC or an offset`}, nil},
		{"local date", okKey + "expires = 2027-01-31 #!\n",
			[]string{`keys.ok[0]: expires is a date without a time`}, nil},
		{"local time", okKey + "expires = 10:00:00 #!\n",
			[]string{`expires is a time without a date`}, nil},
		{"quoted date", okKey + "expires = \"2027-01-31T00:00:00Z\" #!\n",
			[]string{`expires must be an offset date-time like 2027-01-31T00:00:00Z, written without quotes`}, nil},
		{"date as a number", okKey + "not_before = 20270131 #!\n",
			[]string{`not_before must be an offset date-time like 2027-01-31T00:00:00Z, not an integer`}, nil},
		{"duplicate secret across keys", okKey + "[[keys.z]]\nsecret = \"" + leakySecret + "\" #!\n",
			[]string{`keys.z[0] has the same secret (prefix Zq7Xw9Lm) as keys.ok[0] (line 3)`}, nil},
		{"duplicate secret across versions", okKey + "[[keys.ok]]\nsecret = \"" + leakySecret + "\" #!\n",
			[]string{`keys.ok[1] has the same secret (prefix Zq7Xw9Lm) as keys.ok[0] (line 3)`}, nil},
		{"duplicate secret inline and from a file", okKey + "[[keys.z]]\nsecret_file = \"z.key\" #!\n",
			[]string{`keys.z[0] has the same secret (prefix Zq7Xw9Lm) as keys.ok[0]`},
			map[string]string{"z.key": leakySecret + "\n"}},
		{"inline table version", "[keys]\nin = [\n  { secret = \"" + leakySecret + "\" },\n  { secret = 7 }, #!\n]\n",
			[]string{`keys.in[1]: secret must be a string, not an integer`}, nil},
		{"syntax error: unclosed table header", "[callers #!\n" + okKey,
			[]string{`invalid TOML at column`}, nil},
		{"syntax error: unterminated secret", okKey + "[[keys.b]]\nsecret = \"Qq7Xw9Lm." + leakMarker + " #!\n",
			[]string{`invalid TOML at column`}, nil},
		{"syntax error: float that repeats its text", okKey + "[[keys.b]]\nsecret = 1e99999" + leakMarker[:0] + " #!\n",
			[]string{`invalid TOML at column 10: unable to parse float`}, nil},
		{"syntax error: duplicate caller", "[callers]\nsvc = \"ok\"\nsvc = \"ok\" #!\n" + okKey,
			[]string{`invalid TOML at column 1: key svc is already defined`}, nil},
		{"every problem is reported", `[callers]
a = "missing" #!
b = 3 #!
[[keys.ok]]
secret = "` + leakySecret + `"
expire = 2027-01-01T00:00:00Z #!
[[keys.x]] #!
[[keys.y]]
secret = "bad secret" #!
not_before = 2026-01-01T00:00:00 #!
`, []string{`caller "a" names key "missing"`, `caller "b" must name a key with a string`, `unknown field "expire"`,
			`keys.x[0] has neither secret nor secret_file`, `keys.y[0]: the secret contains whitespace`, `not_before has no UTC offset`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeVault(t, tt.vault, tt.files)
			v, _, err := keyvault.Load(path, keyvault.LoadOptions{Now: fixedNow})
			if err == nil {
				t.Fatalf("loaded an invalid vault: %v", v.Keys())
			}
			if v != nil {
				t.Error("a vault was returned with the error")
			}
			if strings.Contains(err.Error(), leakMarker) {
				t.Fatalf("the error leaks a secret:\n%v", err)
			}
			lines := markedLines(tt.vault)
			ps := problems(t, err)
			if len(ps) != len(lines) || len(lines) != len(tt.want) {
				t.Fatalf("got %d problems for %d marked lines and %d wanted:\n%v", len(ps), len(lines), len(tt.want), err)
			}
			for i, p := range ps {
				if p.File != path || p.Line != lines[i] || !strings.Contains(p.Message, tt.want[i]) {
					t.Errorf("problem %d = %q\nwant %s:%d: …%s…", i, p.Error(), path, lines[i], tt.want[i])
				}
			}
		})
	}
}

func TestUnreadableSecretFileIsNotExist(t *testing.T) {
	path := writeVault(t, "[[keys.b]]\nsecret_file = \"missing.key\"\n", nil)
	_, _, err := keyvault.Load(path, keyvault.LoadOptions{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist in its chain", err)
	}
}
