package config

import (
	"time"

	"github.com/scgate/scgate/proxy"
)

// Admin is [admin]: the metrics and probes listener.
type Admin struct {
	Listen string `toml:"listen"`
}

// DefaultAdminListen is admin.listen's default.
const DefaultAdminListen = "127.0.0.1:9090"

func (a *Admin) defaults() { a.Listen = orString(a.Listen, DefaultAdminListen) }

func (a Admin) validate(p *problems, c *Config) {
	if !checkListen(p, a.Listen, "admin", "listen") {
		return
	}
	if a.Listen == c.Server.Listen && !hasZeroPort(a.Listen) {
		p.add("the admin listener must not share the gateway's address", "admin", "listen")
	}
}

// ServerOptions is the admin listener's options. Its timeouts are fixed:
// only probes and Prometheus call it.
func (a Admin) ServerOptions() proxy.ServerOptions {
	return proxy.ServerOptions{
		Name: "admin", Addr: a.Listen,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
	}
}
