package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

//go:embed conf
var confFS embed.FS

var templates = template.Must(template.ParseFS(confFS, "conf/*.tmpl"))

// benchKey is the key the upstream accepts and the proxies inject. It has the
// broadcaster's shape (8-character prefix, dot, secret) and is fake.
const benchKey = "Bench001.FAKEfakeFAKEfakeFAKEfakeFAKE"

// kinds are the targets a scenario may list. "scgate-*" are scgate with a
// config variant (see variants).
var kinds = []string{"direct", "bare", "nginx", "haproxy", "caddy", "nginx-cache"}

// variants of the scgate target: what each turns on.
var variants = map[string]string{
	"scgate-min":   "static identity, no limits, no route policy, access log off (metrics are always on)",
	"scgate-full":  "identity chain (cidr then static), route allow-list, caller+key limits and a concurrency cap with high ceilings, access log at info",
	"scgate-v10k":  "as scgate-min, with a vault of 10,000 callers and 1,000 keys",
	"scgate-v10":   "as scgate-min, with a vault of 10 callers and 10 keys",
	"scgate-nopgo": "as scgate-full, built with -pgo=off (to measure profile-guided optimisation)",
	"scgate-cache": "as scgate-min, with now playing (GET /api/v2/history/) cached for 1 s",
}

// params fill the templates in conf/.
type params struct {
	Variant          string
	Dir              string // the target's own folder
	Host, Listen     string // 127.0.0.1 and 127.0.0.1:port
	Admin            string // scgate's admin listener
	Upstream         string // host:port of the upstream
	UpScheme         string
	TLS, UpTLS, Full bool
	Cache            bool // nginx-cache and scgate-cache: now playing cached for 1 s
	Key              string
	Cert, CertKey    string
	Combined         string
	IdleConns        int
	Workers          int
	Vault            string
	Extra            *extraVariant // a -variant target: its settings
}

// render executes one template of conf/.
func render(name string, p params) (string, error) {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, p); err != nil {
		return "", err
	}
	return b.String(), nil
}

// target is one thing the load is sent to.
type target struct {
	Name    string
	URL     string // base URL (no path)
	Header  string // sent by wrk on every request (the key, for direct only)
	Metrics string // its Prometheus page (scgate's admin, bare's), "" for others
	proc    *proc  // nil for direct: its process is the upstream

	mem    *memTrack     // nil for direct
	loaded time.Duration // load it has had so far, the time axis of mem
}

// errNotInstalled is a peer whose program is missing: the bench says so and
// goes on with the others.
var errNotInstalled = errors.New("not installed")

func (t *target) sampler() sampler {
	return sampler{pgid: t.proc.cmd.Process.Pid, metrics: t.Metrics, hc: &http.Client{Timeout: time.Second}}
}

// track samples t's memory through a load run of about d; the returned
// stop ends the sampling and keeps the samples.
func (t *target) track(ctx context.Context, phase string, d time.Duration) (stop func()) {
	if t.mem == nil {
		return func() {}
	}
	start := time.Now()
	done := t.sampler().during(ctx, t.loaded, phase)
	return func() {
		t.mem.Samples = append(t.mem.Samples, done()...)
		t.loaded += max(time.Since(start), d)
	}
}

// extraVariant is a target given with -variant NAME=SETTINGS: scgate-min's
// config with SETTINGS (section.key=value, separated by ";") written into it.
type extraVariant struct {
	Name     string
	Settings []setting
}

// setting is one TOML key, written into its section of the rendered config.
type setting struct {
	Section, Key, Value string
}

// parseVariant reads NAME=section.key=value;section.key=value. The name must
// start with "scgate-"; a value is TOML as written (quote strings).
func parseVariant(spec string) (extraVariant, error) {
	name, rest, ok := strings.Cut(spec, "=")
	name = strings.TrimSpace(name)
	if !ok || !strings.HasPrefix(name, "scgate-") || len(name) == len("scgate-") || strings.ContainsAny(name, " /,") {
		return extraVariant{}, fmt.Errorf("-variant %q: want scgate-NAME=section.key=value[;...]", spec)
	}
	if _, known := variants[name]; known {
		return extraVariant{}, fmt.Errorf("-variant %q: %s is a built-in target", spec, name)
	}
	v := extraVariant{Name: name}
	for _, kv := range strings.Split(rest, ";") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		path, val, ok := strings.Cut(kv, "=")
		sec, key, ok2 := strings.Cut(strings.TrimSpace(path), ".")
		if !ok || !ok2 || sec == "" || key == "" || strings.TrimSpace(val) == "" || strings.ContainsRune(kv, '\n') {
			return extraVariant{}, fmt.Errorf("-variant %s: %q is not section.key=value", name, kv)
		}
		v.Settings = append(v.Settings, setting{Section: sec, Key: strings.TrimSpace(key), Value: strings.TrimSpace(val)})
	}
	if len(v.Settings) == 0 {
		return extraVariant{}, fmt.Errorf("-variant %s: no settings", name)
	}
	return v, nil
}

// extra is the -variant target called name, or nil.
func (c config) extra(name string) *extraVariant {
	for i := range c.Extra {
		if c.Extra[i].Name == name {
			return &c.Extra[i]
		}
	}
	return nil
}

// applySettings writes each setting into its [section] of conf, replacing
// the key's line when the section has one, or into a new section at the end
// when conf has no such section.
func applySettings(conf string, settings []setting) string {
	lines := strings.Split(conf, "\n")
next:
	for _, st := range settings {
		line := st.Key + " = " + st.Value
		header := "[" + st.Section + "]"
		i := slices.Index(lines, header)
		if i < 0 {
			lines = append(lines, "", header, line)
			continue
		}
		for j := i + 1; j < len(lines) && !strings.HasPrefix(lines[j], "["); j++ {
			if k, _, ok := strings.Cut(lines[j], "="); ok && strings.TrimSpace(k) == st.Key {
				lines[j] = line
				continue next
			}
		}
		lines = slices.Insert(lines, i+1, line)
	}
	return strings.Join(lines, "\n")
}

// profilePath is where a target's CPU profile of a scenario goes.
func profilePath(out, scenario, target string) string {
	return filepath.Join(out, scenario+"-"+target+".pprof")
}

// launch describes how to start a target: the files to write into its
// folder, the command and its extra environment.
type launch struct {
	files map[string]string
	argv  []string
	env   []string
}

// bins are the programs the targets run.
type bins struct {
	self, scgate, scgateNoPGO string
}

// plan returns how to start target name with p; the folder p.Dir exists.
func plan(name string, p params, b bins) (launch, error) {
	switch name {
	case "nginx", "nginx-cache":
		p.Cache = name == "nginx-cache"
		conf, err := render("nginx.conf.tmpl", p)
		return launch{files: map[string]string{"nginx.conf": conf},
			argv: []string{"nginx", "-p", p.Dir, "-c", filepath.Join(p.Dir, "nginx.conf"), "-e", filepath.Join(p.Dir, "error.log")}}, err
	case "haproxy":
		conf, err := render("haproxy.cfg.tmpl", p)
		return launch{files: map[string]string{"haproxy.cfg": conf},
			argv: []string{"haproxy", "-db", "-f", filepath.Join(p.Dir, "haproxy.cfg")}}, err
	case "caddy":
		conf, err := render("Caddyfile.tmpl", p)
		return launch{files: map[string]string{"Caddyfile": conf},
			argv: []string{"caddy", "run", "--adapter", "caddyfile", "--config", filepath.Join(p.Dir, "Caddyfile")},
			env:  []string{"HOME=" + p.Dir, "XDG_CONFIG_HOME=" + p.Dir, "XDG_DATA_HOME=" + p.Dir}}, err
	case "bare":
		argv := []string{b.self, "bare", "-listen", p.Listen, "-admin", p.Admin, "-upstream", p.UpScheme + "://" + p.Upstream, "-key", p.Key}
		if p.TLS {
			argv = append(argv, "-cert", p.Cert, "-keyfile", p.CertKey)
		}
		if p.UpTLS {
			argv = append(argv, "-ca", p.Cert)
		}
		return launch{argv: argv}, nil
	}
	var extra []setting
	if _, ok := variants[name]; !ok {
		if p.Extra == nil {
			return launch{}, fmt.Errorf("unknown target %q", name)
		}
		extra = p.Extra.Settings
	}
	p.Full = name == "scgate-full" || name == "scgate-nopgo"
	p.Cache = name == "scgate-cache"
	callers, keys := 1, 1
	switch name {
	case "scgate-v10k":
		callers, keys = 10_000, 1_000
	case "scgate-v10":
		callers, keys = 10, 10
	}
	p.Vault = filepath.Join(p.Dir, "keys.toml")
	conf, err := render("scgate.toml.tmpl", p)
	if err != nil {
		return launch{}, err
	}
	conf = applySettings(conf, extra)
	bin := b.scgate
	if name == "scgate-nopgo" {
		bin = b.scgateNoPGO
	}
	return launch{
		files: map[string]string{"config.toml": conf, "keys.toml": vaultFile(p.Key, callers, keys)},
		argv:  []string{bin, "run", "--config", filepath.Join(p.Dir, "config.toml")},
	}, nil
}

// vaultFile writes a vault where "bench-caller" and "bench-other" use the
// bench key, and callers-1 more callers share keys-1 more keys with fake
// secrets, as a large organisation's vault would.
func vaultFile(key string, callers, keys int) string {
	var b strings.Builder
	b.WriteString("[callers]\n\"bench-caller\" = \"bench\"\n\"bench-other\" = \"bench\"\n")
	for i := 2; i < callers; i++ {
		k := "bench"
		if keys > 1 {
			k = "key-" + strconv.Itoa(i%(keys-1))
		}
		fmt.Fprintf(&b, "\"spiffe://bench.example/ns/team-%d/sa/service-%d\" = %q\n", i%97, i, k)
	}
	fmt.Fprintf(&b, "\n[[keys.bench]]\nsecret = %q\n", key)
	for i := 0; i < keys-1; i++ {
		fmt.Fprintf(&b, "\n[[keys.key-%d]]\nsecret = \"K%07d.FAKEfakeFAKEfakeFAKEfake%06d\"\n", i, i, i)
	}
	return b.String()
}

// writeFiles writes a launch's files into dir.
func (l launch) writeFiles(dir string) error {
	for name, content := range l.files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// hostPort joins the loopback host and port.
func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
