package keyvault_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/scgate/scgate/keyvault"
)

// fuzzReadFile serves every "*.key" path with a fixed key and nothing else,
// so fuzzing never touches the real file system.
func fuzzReadFile(p string) ([]byte, error) {
	if strings.HasSuffix(p, ".key") {
		return []byte("fuzzfile.abcdefghijklmnopqrstuvwx\n"), nil
	}
	return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
}

// FuzzParse checks that no vault file makes Parse panic, that its result is
// deterministic, that errors are all ParseErrors on a line of the file, and
// that a vault it accepts can be used.
func FuzzParse(f *testing.F) {
	f.Add([]byte(exampleVault))
	f.Add([]byte(vaultText(gen(1))))
	f.Add([]byte(vaultFileText))
	f.Add([]byte(brokenText))
	f.Add([]byte("[keys]\nk = [{ secret = \"aaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbb\" }, 5]\n[callers]\nx = \"k\"\n"))
	f.Add([]byte("[[keys.k]]\nsecret_file = \"x.key\"\n[keys.k.sub]\n[[keys.k.sub.deep]]\na.b.c = 1\n"))
	f.Add([]byte("[callers]\n\"\" = \"\"\n[[keys.\"\"]]\nnot_before = 2026-01-01\nexpires = 1979-05-27T07:32:00-08:00\n"))
	opts := keyvault.LoadOptions{Now: fixedNow, ReadFile: fuzzReadFile}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, warnings, err := keyvault.Parse("fuzz.toml", data, opts)
		v2, _, err2 := keyvault.Parse("fuzz.toml", data, opts)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) || v.Digest() != v2.Digest() {
			t.Fatalf("Parse is not deterministic: %v / %v", err, err2)
		}
		lines := strings.Count(string(data), "\n") + 1
		if err != nil {
			if v != nil || warnings != nil {
				t.Fatal("a vault or warnings came with an error")
			}
			checkProblems(t, err, lines)
			return
		}
		for _, caller := range v.Callers() {
			if ver, err := v.Select(caller, testNow); err == nil {
				if _, err := keyvault.NewSecret(ver.Secret.Value()); err != nil {
					t.Fatalf("an invalid secret was accepted: %v", err)
				}
			} else if !errors.Is(err, keyvault.ErrNoValidKey) {
				t.Fatalf("Select(%q): %v", caller, err)
			}
		}
		for _, k := range v.Keys() {
			for _, ver := range k.Versions {
				if ver.Line < 1 || ver.Line > lines {
					t.Fatalf("version %v on line %d of %d", ver, ver.Line, lines)
				}
				_ = k.State(ver, testNow)
			}
		}
	})
}

func checkProblems(t *testing.T, err error, lines int) {
	t.Helper()
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error is not a join: %T", err)
	}
	for _, e := range j.Unwrap() {
		pe, ok := e.(*keyvault.ParseError)
		if !ok || pe.Line < 0 || pe.Line > lines || pe.Message == "" {
			t.Fatalf("bad problem %#v", e)
		}
	}
}

// FuzzSecret checks that an accepted secret never appears in its printed
// forms and that NewSecret refuses every byte outside printable ASCII.
func FuzzSecret(f *testing.F) {
	f.Add("g0hsQEz6.JSXQWKby36Y1CefRA4JuUGKEg3ACY9wt")
	f.Add("abcdefgh.x")
	f.Add("with space")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		sec, err := keyvault.NewSecret(s)
		printable := s != "" && len(s) <= keyvault.MaxSecretLen && strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) < 0
		if (err == nil) != printable {
			t.Fatalf("NewSecret(%q) error = %v", s, err)
		}
		if err != nil {
			return
		}
		p := sec.Prefix()
		if p != keyvault.Prefix(s) || p == s {
			t.Fatalf("Prefix = %q", p)
		}
		if len(s) >= 40 {
			out := fmt.Sprintf("%v %+v %#v %s %q %x %d", sec, sec, sec, sec, sec, sec, sec)
			if strings.Contains(out, s) {
				t.Fatalf("printed secret: %s", out)
			}
		}
	})
}
