package config

import (
	"net"
	"time"

	"github.com/scgate/scgate/proxy"
)

// Admin is [admin]: the metrics, probes and status page listener.
type Admin struct {
	Listen string `toml:"listen"`
	// StatusPage serves /status and /status.json; absent means true.
	StatusPage *bool `toml:"status_page"`
	// Username and PasswordFile turn on HTTP basic auth for /status,
	// /status.json and /metrics (the probes stay open).
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	// CertFile and KeyFile make the admin listener serve TLS;
	// ClientCAFile then requires a client certificate from that CA for
	// /status, /status.json and /metrics.
	CertFile     string `toml:"cert_file"`
	KeyFile      string `toml:"key_file"`
	ClientCAFile string `toml:"client_ca_file"`
}

// DefaultAdminListen is admin.listen's default.
const DefaultAdminListen = "127.0.0.1:9090"

// DefaultAdminUsername is admin.username's default.
const DefaultAdminUsername = "admin"

func (a *Admin) defaults() {
	a.Listen = orString(a.Listen, DefaultAdminListen)
	a.Username = orString(a.Username, DefaultAdminUsername)
	if a.StatusPage == nil {
		on := true
		a.StatusPage = &on
	}
}

func (a Admin) validate(p *problems, c *Config) {
	if (a.CertFile == "") != (a.KeyFile == "") {
		p.add("cert_file and key_file go together: set both for TLS on the admin listener, or neither", "admin", "cert_file")
	}
	if a.ClientCAFile != "" && a.CertFile == "" {
		p.add("client certificates need TLS: set admin.cert_file and admin.key_file too", "admin", "client_ca_file")
	}
	if !checkListen(p, a.Listen, "admin", "listen") {
		return
	}
	if a.Listen == c.Server.Listen && !hasZeroPort(a.Listen) {
		p.add("the admin listener must not share the gateway's address", "admin", "listen")
	}
}

// StatusPageOn reports whether /status is served.
func (a Admin) StatusPageOn() bool { return a.StatusPage == nil || *a.StatusPage }

// TLS reports whether the admin listener serves TLS.
func (a Admin) TLS() bool { return a.CertFile != "" }

// Warning is about an admin listener that serves the status page or the
// metrics to anyone who reaches it on a non-loopback address; empty when
// there is nothing to say.
func (a Admin) Warning() string {
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil || isLoopbackHost(host) || a.PasswordFile != "" || a.ClientCAFile != "" {
		return ""
	}
	return "admin.listen " + a.Listen + " is not loopback and has neither password_file nor client_ca_file: anyone who reaches it reads /metrics and /status (callers, key names and prefixes); keep it off the callers' network (docs/security.md, \"The admin listener\")"
}

// ServerOptions is the admin listener's options. Its timeouts are fixed:
// only probes, Prometheus and people call it.
func (a Admin) ServerOptions() proxy.ServerOptions {
	return proxy.ServerOptions{
		Name: "admin", Addr: a.Listen,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
	}
}
