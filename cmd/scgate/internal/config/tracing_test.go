package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTracingIsOffByDefault(t *testing.T) {
	c, err := Parse("cfg.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tracing.Enabled || *c.Tracing.SampleRatio != DefaultSampleRatio || c.Tracing.Protocol != "grpc" {
		t.Fatalf("tracing defaults: %+v", c.Tracing)
	}
}

func TestTracingProblemsNameTheSetting(t *testing.T) {
	for _, c := range []struct{ section, want string }{
		{"enabled = true", "tracing.endpoint: the collector's URL is required"},
		{"enabled = true\nendpoint = \"http://c:4317\"", "tracing.endpoint: an http:// endpoint sends spans in clear text"},
		{"enabled = true\nendpoint = \"https://c:4317\"\nsample_ratio = 2.0", "tracing.sample_ratio: 2"},
		{"enabled = true\nendpoint = \"https://c:4317\"\nprotocol = \"thrift\"", "tracing.protocol:"},
		{"enabled = true\nendpoint = \"https://c:4317\"\ncert_file = \"c.pem\"", "a client certificate needs both"},
	} {
		_, err := Parse("cfg.toml", []byte(minimal+"\n[tracing]\n"+c.section+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "cfg.toml:") {
			t.Errorf("%q: %v, want FILE:LINE and %q", c.section, err, c.want)
		}
	}
}

// Threat: the collector's token leaking into a log line through a config
// error. A headers file that cannot be used is named by line, never by
// value.
func TestTracingHeadersFileErrorsHoldNoValue(t *testing.T) {
	dir := t.TempDir()
	const token = "Bearer s3cr3t-collector-token"
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("# collector\nAuthorization: "+token+"\n\nX-Scope-OrgID: radio\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := readHeadersFile(good)
	if err != nil || h["authorization"] != token || h["x-scope-orgid"] != "radio" {
		t.Fatalf("%v %v", h, err)
	}
	for _, bad := range []string{"Authorization " + token, "Bad Name: " + token, "Authorization: " + token + "\x01"} {
		p := filepath.Join(dir, "bad")
		if err := os.WriteFile(p, []byte(bad+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := readHeadersFile(p)
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), ":1:") {
			t.Errorf("%q: error %v, want the line and no value", bad, err)
		}
	}
}

// The headers file holds the collector's token: one that others can write
// refuses the start, as a vault would.
func TestTracingHeadersFileIsAKeyFile(t *testing.T) {
	dir := t.TempDir()
	headers := filepath.Join(dir, "otel-headers")
	if err := os.WriteFile(headers, []byte("Authorization: Bearer x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(headers, 0o666); err != nil {
		t.Fatal(err)
	}
	cfg := minimal + "\n[tracing]\nenabled = true\nendpoint = \"https://c:4317\"\nheaders_file = \"" + headers + "\"\n"
	c, err := Parse(filepath.Join(dir, "config.toml"), []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CheckKeyFiles()
	if err == nil || !strings.Contains(err.Error(), "tracing.headers_file") {
		t.Fatalf("a world-writable headers file: %v", err)
	}
}
