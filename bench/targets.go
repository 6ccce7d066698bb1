package main

import (
	"bytes"
	"embed"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
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
	Name   string
	URL    string // base URL (no path)
	Header string // sent by wrk on every request (the key, for direct only)
	proc   *proc  // nil for direct: its process is the upstream
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
		argv := []string{b.self, "bare", "-listen", p.Listen, "-upstream", p.UpScheme + "://" + p.Upstream, "-key", p.Key}
		if p.TLS {
			argv = append(argv, "-cert", p.Cert, "-keyfile", p.CertKey)
		}
		if p.UpTLS {
			argv = append(argv, "-ca", p.Cert)
		}
		return launch{argv: argv}, nil
	}
	if _, ok := variants[name]; !ok {
		return launch{}, fmt.Errorf("unknown target %q", name)
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
