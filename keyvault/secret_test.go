package keyvault_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/scgate/scgate/keyvault"
)

// leakMarker is the private part of the secrets these tests use: it must
// never show up in any output.
const leakMarker = "LEAKMARKERq4w8e2r6t0y"

const leakySecret = "Zq7Xw9Lm." + leakMarker

func mustSecret(t *testing.T, s string) keyvault.Secret {
	t.Helper()
	sec, err := keyvault.NewSecret(s)
	if err != nil {
		t.Fatalf("NewSecret: %v", err)
	}
	return sec
}

func TestPrefix(t *testing.T) {
	hashed := regexp.MustCompile(`^sha256:[0-9a-f]{8}$`)
	tests := []struct {
		name, secret, want string // want "" means: the hashed form
	}{
		{"streaming center key", "g0hsQEz6.JSXQWKby36Y1CefRA4JuUGKEg3ACY9wt", "g0hsQEz6"},
		{"digits only prefix", "12345678.abcdefghijklmnopqrstuvwxyz", "12345678"},
		{"seven characters", "g0hsQEz.JSXQWKby36Y1CefRA4JuUGKEg3ACY9wt", ""},
		{"nine characters", "g0hsQEz6x.JSXQWKby36Y1CefRA4JuUGKEg3ACY9wt", ""},
		{"punctuation in prefix", "g0hs-Ez6.JSXQWKby36Y1CefRA4JuUGKEg3ACY9wt", ""},
		{"non-ASCII letter in prefix", "g0hsQEzé.JSXQWKby36Y1CefRA4JuUGKEg3ACY9wt", ""},
		{"no dot", "JSXQWKby36Y1CefRA4JuUGKEg3ACY9wt", ""},
		{"leading dot", ".JSXQWKby36Y1CefRA4JuUGKEg3ACY9wt", ""},
		{"short private part would reveal most of it", "abcdefgh.x", ""},
		{"second dot is fine", "g0hsQEz6.JSXQWKby36Y1Cef.RA4JuUGKEg3ACY9wt", "g0hsQEz6"},
		{"empty", "", "sha256:e3b0c442"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keyvault.Prefix(tt.secret)
			switch {
			case tt.want != "" && got != tt.want:
				t.Errorf("Prefix = %q, want %q", got, tt.want)
			case tt.want == "" && !hashed.MatchString(got):
				t.Errorf("Prefix = %q, want the sha256:XXXXXXXX form", got)
			}
			if keyvault.Prefix(tt.secret) != got {
				t.Error("Prefix is not deterministic")
			}
		})
	}
}

func TestNewSecretRefuses(t *testing.T) {
	tests := []struct{ name, secret, reason string }{
		{"empty", "", "is empty"},
		{"leading space", " " + leakySecret, "whitespace"},
		{"trailing newline", leakySecret + "\n", "whitespace"},
		{"carriage return inside", "Zq7Xw9Lm.\r" + leakMarker, "whitespace"},
		{"tab", leakySecret + "\t", "whitespace"},
		{"NUL", leakySecret + "\x00", "control character"},
		{"DEL", leakySecret + "\x7f", "control character"},
		{"escape", "\x1b" + leakySecret, "control character"},
		{"non-ASCII", leakySecret + "é", "non-ASCII"},
		{"no-break space", leakySecret + "\u00a0", "non-ASCII"},
		{"too long", leakySecret + strings.Repeat("x", keyvault.MaxSecretLen), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := keyvault.NewSecret(tt.secret)
			if err == nil {
				t.Fatalf("NewSecret accepted %q", tt.secret)
			}
			if !errors.Is(err, keyvault.ErrInvalidSecret) {
				t.Errorf("error %v does not wrap ErrInvalidSecret", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if strings.Contains(err.Error(), leakMarker) {
				t.Errorf("error leaks the secret: %q", err)
			}
			if !s.IsZero() {
				t.Error("refused secret is not the zero Secret")
			}
		})
	}
}

func TestSecretValueAndPrefix(t *testing.T) {
	s := mustSecret(t, leakySecret)
	if s.Value() != leakySecret {
		t.Errorf("Value = %q", s.Value())
	}
	if s.Prefix() != "Zq7Xw9Lm" {
		t.Errorf("Prefix = %q", s.Prefix())
	}
	if s.String() != "Zq7Xw9Lm…" {
		t.Errorf("String = %q", s.String())
	}
	var zero keyvault.Secret
	if zero.Value() != "" || zero.Prefix() != "" || zero.String() != "" || !zero.IsZero() {
		t.Error("zero Secret is not empty")
	}
}

// holder hides a Secret in an unexported field, where fmt cannot call its
// methods and falls back to reflection.
type holder struct {
	name   string
	secret keyvault.Secret
}

func TestSecretNeverPrinted(t *testing.T) {
	s := mustSecret(t, leakySecret)
	v := &keyvault.Version{Key: "k", Secret: s, Expires: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	values := map[string]any{
		"secret":           s,
		"*secret":          &s,
		"version":          *v,
		"*version":         v,
		"slice":            []keyvault.Secret{s},
		"map":              map[string]keyvault.Secret{"k": s},
		"unexported field": holder{name: "h", secret: s},
		"*unexported":      &holder{name: "h", secret: s},
		"versions":         []*keyvault.Version{v},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%10.3s", "%-8v"}
	for name, val := range values {
		for _, verb := range verbs {
			if out := fmt.Sprintf(verb, val); strings.Contains(out, leakMarker) {
				t.Errorf("%s with %s leaks: %s", name, verb, out)
			}
		}
		b, err := json.Marshal(val)
		if err != nil {
			t.Errorf("json %s: %v", name, err)
		}
		if bytes.Contains(b, []byte(leakMarker)) {
			t.Errorf("json %s leaks: %s", name, b)
		}
	}
	if got := fmt.Sprintf("%v|%s|%q", s, s, s); got != `Zq7Xw9Lm…|Zq7Xw9Lm…|"Zq7Xw9Lm…"` {
		t.Errorf("printed form = %s", got)
	}
	if txt, _ := s.MarshalText(); string(txt) != "Zq7Xw9Lm…" {
		t.Errorf("MarshalText = %s", txt)
	}
}

func TestSecretNeverLogged(t *testing.T) {
	s := mustSecret(t, leakySecret)
	v := &keyvault.Version{Key: "k", Secret: s}
	fields := []zap.Field{
		zap.Any("any", s),
		zap.Stringer("stringer", s),
		zap.Reflect("reflect", s),
		zap.Any("version", v),
		zap.Object("object", v),
		zap.Reflect("reflect_version", v),
		zap.Any("secrets", []keyvault.Secret{s}),
	}

	core, logs := observer.New(zapcore.DebugLevel)
	var buf bytes.Buffer
	jsonCore := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)
	consoleCore := zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)
	zap.New(zapcore.NewTee(core, jsonCore, consoleCore)).Info("using key", fields...)

	for _, e := range logs.All() {
		if out := fmt.Sprint(e.ContextMap()); strings.Contains(out, leakMarker) {
			t.Errorf("observed fields leak: %s", out)
		}
		if got := e.ContextMap()["stringer"]; got != "Zq7Xw9Lm…" {
			t.Errorf("stringer field = %v", got)
		}
		if obj, ok := e.ContextMap()["object"].(map[string]any); !ok || obj["prefix"] != "Zq7Xw9Lm" {
			t.Errorf("object field = %v", e.ContextMap()["object"])
		}
	}
	var sbuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&sbuf, nil)).Info("using key", "secret", s, "version", v)
	slog.New(slog.NewTextHandler(&sbuf, nil)).Info("using key", "secret", s, "version", v)
	for _, out := range []string{buf.String(), sbuf.String()} {
		if strings.Contains(out, leakMarker) {
			t.Errorf("encoded log leaks: %s", out)
		}
		if !strings.Contains(out, "Zq7Xw9Lm") {
			t.Errorf("encoded log lacks the prefix: %s", out)
		}
	}
}
