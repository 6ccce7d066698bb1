package main

import (
	"strings"
	"testing"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/scgate/scgate/keyvault"
)

func testParams(tls bool) params {
	p := params{Dir: "/run/x", Host: "127.0.0.1", Listen: "127.0.0.1:18302", Admin: "127.0.0.1:18312",
		Upstream: "127.0.0.1:18300", UpScheme: "http", Key: benchKey, IdleConns: 512, Workers: 2,
		Cert: "/run/cert.pem", CertKey: "/run/key.pem", Combined: "/run/combined.pem"}
	if tls {
		p.TLS, p.UpTLS, p.UpScheme = true, true, "https"
	}
	return p
}

// Every peer is configured for the same job: listen on loopback, set the key
// (replacing the caller's), keep upstream connections, and with TLS serve the
// bench certificate and speak HTTPS upstream.
func TestPeerConfigs(t *testing.T) {
	b := bins{self: "/bin/bench", scgate: "/bin/scgate"}
	for _, tls := range []bool{false, true} {
		p := testParams(tls)
		for name, wants := range map[string][]string{
			"nginx": {"listen 127.0.0.1:18302", `proxy_set_header SC-API-KEY "` + benchKey + `"`, "keepalive 512;",
				"proxy_pass " + p.UpScheme + "://broadcaster", `proxy_set_header Connection ""`, "access_log off"},
			"haproxy": {"bind 127.0.0.1:18302", `http-request set-header SC-API-KEY "` + benchKey + `"`, "http-reuse always", "nbthread 2"},
			"caddy":   {"://127.0.0.1:18302", `header_up SC-API-KEY "` + benchKey + `"`, "keepalive_idle_conns 512", "admin off"},
		} {
			l, err := plan(name, p, b)
			if err != nil {
				t.Fatal(err)
			}
			var conf string
			for _, c := range l.files {
				conf = c
			}
			if tls {
				wants = append(wants, map[string][]string{
					"nginx":   {"ssl_certificate /run/cert.pem", "listen 127.0.0.1:18302 ssl", "proxy_ssl_session_reuse on"},
					"haproxy": {"ssl crt /run/combined.pem", "ssl verify none"},
					"caddy":   {"tls /run/cert.pem /run/key.pem", "https://127.0.0.1:18302", "tls_insecure_skip_verify"},
				}[name]...)
			}
			for _, w := range wants {
				if !strings.Contains(conf, w) {
					t.Errorf("%s (tls=%v) lacks %q:\n%s", name, tls, w, conf)
				}
			}
			if strings.Contains(conf, "@") || strings.Contains(conf, "{{") || strings.Contains(conf, "<no value>") {
				t.Errorf("%s: unrendered placeholder:\n%s", name, conf)
			}
		}
	}
}

// The scgate variants decode as TOML with what each is meant to turn on.
func TestScgateConfigs(t *testing.T) {
	b := bins{self: "/bin/bench", scgate: "/bin/scgate", scgateNoPGO: "/bin/scgate-nopgo"}
	for _, name := range []string{"scgate-min", "scgate-full", "scgate-v10k", "scgate-nopgo"} {
		for _, tls := range []bool{false, true} {
			l, err := plan(name, testParams(tls), b)
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Server struct {
					Listen, TLS string
					CertFile    string `toml:"cert_file"`
				}
				Upstream struct {
					URL    string
					CAFile string `toml:"ca_file"`
				}
				Identity struct {
					Order  []string
					Static string
				}
				Limits map[string]any
				Policy map[string]any
				Log    struct{ Level string }
			}
			if err := toml.Unmarshal([]byte(l.files["config.toml"]), &cfg); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, l.files["config.toml"])
			}
			full := name == "scgate-full" || name == "scgate-nopgo"
			if cfg.Server.Listen != "127.0.0.1:18302" || cfg.Identity.Static != "bench-caller" ||
				(full != (cfg.Log.Level == "info")) || (full != (cfg.Limits != nil)) || (full != (cfg.Policy != nil)) ||
				(full != (len(cfg.Identity.Order) == 2)) {
				t.Errorf("%s: %+v", name, cfg)
			}
			if tls != (cfg.Server.TLS == "files" && cfg.Upstream.CAFile == "/run/cert.pem" && strings.HasPrefix(cfg.Upstream.URL, "https://")) {
				t.Errorf("%s tls=%v: %+v", name, tls, cfg)
			}
			if name == "scgate-nopgo" && l.argv[0] != "/bin/scgate-nopgo" {
				t.Errorf("scgate-nopgo runs %s", l.argv[0])
			}
		}
	}
	if _, err := plan("apache", testParams(false), b); err == nil {
		t.Fatal("an unknown target was planned")
	}
}

func TestVaultFile(t *testing.T) {
	for _, c := range []struct{ callers, keys int }{{1, 1}, {10, 10}, {10_000, 1_000}} {
		v, _, err := keyvault.Parse("keys.toml", []byte(vaultFile(benchKey, c.callers, c.keys)), keyvault.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(v.Callers()); n != max(c.callers, 2) {
			t.Errorf("%d callers, want %d", n, max(c.callers, 2))
		}
		if n := len(v.Keys()); n != c.keys {
			t.Errorf("%d keys, want %d", n, c.keys)
		}
		ver, err := v.Select("bench-caller", time.Now())
		if err != nil || ver.Secret.Value() != benchKey {
			t.Errorf("bench-caller does not use the bench key: %v", err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	ok := config{Scenarios: []string{"sidecar"}, Conns: []int{32, 256}, Duration: 10 * time.Second, Warmup: 2 * time.Second,
		Threads: 1, BasePort: 18300, MaxRuntime: 15 * time.Minute}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*config){
		"unknown scenario": func(c *config) { c.Scenarios = []string{"cloud"} },
		"unknown target":   func(c *config) { c.Targets = []string{"envoy"} },
		"no conns":         func(c *config) { c.Conns = nil },
		"bad rate":         func(c *config) { c.Rates = []int{0} },
		"short open loop":  func(c *config) { c.Rates, c.OpenDuration = []int{500}, time.Millisecond },
		"too many conns":   func(c *config) { c.Conns = []int{100000} },
		"too long":         func(c *config) { c.Duration = time.Hour },
		"privileged port":  func(c *config) { c.BasePort = 80 },
	} {
		c := ok
		mod(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := ok
	c.Targets, c.ComparePGO = []string{"scgate-full"}, true
	if got := c.selected()[0].Targets; strings.Join(got, ",") != "direct,scgate-full,scgate-nopgo" {
		t.Errorf("selected %v", got)
	}
}

// A -variant target is scgate-min's config with its settings written into
// their sections, replacing a key the section has; bad specs are refused.
func TestVariantTargets(t *testing.T) {
	v, err := parseVariant(`scgate-sync=upstream.client="sync"; upstream.max_idle_conns=64; runtime.gogc=50`)
	if err != nil {
		t.Fatal(err)
	}
	p := testParams(false)
	p.Extra = &v
	l, err := plan("scgate-sync", p, bins{scgate: "/bin/scgate"})
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Upstream struct {
			Client       string
			MaxIdleConns int `toml:"max_idle_conns"`
		}
		Runtime  struct{ GOGC int }
		Identity struct{ Static string }
	}
	if err := toml.Unmarshal([]byte(l.files["config.toml"]), &cfg); err != nil {
		t.Fatalf("%v\n%s", err, l.files["config.toml"])
	}
	if cfg.Upstream.Client != "sync" || cfg.Upstream.MaxIdleConns != 64 || cfg.Runtime.GOGC != 50 || cfg.Identity.Static != "bench-caller" {
		t.Errorf("%+v\n%s", cfg, l.files["config.toml"])
	}
	for _, bad := range []string{"sync=upstream.client=1", "scgate-min=log.level=\"info\"", "scgate-x=", "scgate-x=client", "scgate-x=upstream.client", "scgate-x=.k=1"} {
		if _, err := parseVariant(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	c := config{Scenarios: []string{"sidecar", "scale"}, Conns: []int{32}, Duration: time.Second, Threads: 1, BasePort: 18300,
		MaxRuntime: time.Hour, Extra: []extraVariant{v}, Targets: []string{"scgate-sync"}}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	sel := c.selected()
	if got := strings.Join(sel[0].Targets, ","); got != "direct,scgate-sync" {
		t.Errorf("sidecar runs %s", got)
	}
	if got := strings.Join(sel[1].Targets, ","); got != "direct" {
		t.Errorf("scale runs %s", got)
	}
}
