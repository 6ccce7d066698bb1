package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/scgate/scgate/proxy"
)

// Server is [server]: the callers' listener.
type Server struct {
	Listen            string   `toml:"listen"`
	TLS               string   `toml:"tls"`
	CertFile          string   `toml:"cert_file"`
	KeyFile           string   `toml:"key_file"`
	SelfSignedHosts   []string `toml:"self_signed_hosts"`
	ClientCAFile      string   `toml:"client_ca_file"`
	ClientAuth        string   `toml:"client_auth"`
	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	ReadTimeout       Duration `toml:"read_timeout"`
	WriteTimeout      Duration `toml:"write_timeout"`
	IdleTimeout       Duration `toml:"idle_timeout"`
	MaxHeaderBytes    int      `toml:"max_header_bytes"`
	MaxBodyBytes      int64    `toml:"max_body_bytes"`
	MaxBufferedBytes  int64    `toml:"max_buffered_bytes"` // server_buffers.go
	ShutdownDelay     Duration `toml:"shutdown_delay"`
	ShutdownTimeout   Duration `toml:"shutdown_timeout"`
	PublicURL         string   `toml:"public_url"`
	// Hosts are the Host values the gateway answers; AllowBrowsers lets
	// cross-site browser requests through (proxy/browser.go).
	Hosts         []string `toml:"hosts"`
	AllowBrowsers bool     `toml:"allow_browsers"`
	// MaxConnectionAge: identity_mtls.go.
	MaxConnectionAge Duration `toml:"max_connection_age"`
	// Connection limits: server_conns.go.
	MaxConnections          int      `toml:"max_connections"`
	MaxConnectionsPerSource int      `toml:"max_connections_per_source"`
	UnidentifiedTimeout     Duration `toml:"unidentified_timeout"`
	ACME                    ACME     `toml:"acme"` // server_acme.go
}

// DefaultListen is server.listen's default: loopback, for a sidecar.
const DefaultListen = "127.0.0.1:8080"

func (s *Server) defaults() {
	s.Listen = orString(s.Listen, DefaultListen)
	s.TLS = orString(s.TLS, "off")
	s.ClientAuth = orString(s.ClientAuth, "require")
	s.ReadHeaderTimeout.orDefault(proxy.DefaultReadHeaderTimeout)
	s.ReadTimeout.orDefault(proxy.DefaultReadTimeout)
	s.WriteTimeout.orDefault(proxy.DefaultWriteTimeout)
	s.IdleTimeout.orDefault(proxy.DefaultIdleTimeout)
	s.ShutdownDelay.orDefault(proxy.DefaultShutdownDelay)
	s.ShutdownTimeout.orDefault(proxy.DefaultShutdownTimeout)
	s.MaxConnectionAge.orDefault(DefaultMaxConnectionAge)
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = proxy.DefaultMaxHeaderBytes
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = proxy.DefaultMaxBodyBytes
	}
	s.connDefaults()
	s.buffersDefault()
	s.ACME.defaults(s.TLS)
}

func (s *Server) validate(p *problems, c *Config) {
	checkListen(p, s.Listen, "server", "listen")
	switch s.TLS {
	case "off", "self-signed":
	case "files":
		if s.CertFile == "" || s.KeyFile == "" {
			p.add(`tls = "files" needs cert_file and key_file`, "server", "tls")
		}
	case "acme": // server_acme.go
	default:
		p.add(fmt.Sprintf("%q is not a TLS mode: use off, files, self-signed or acme", s.TLS), "server", "tls")
	}
	if s.TLS != "files" && (s.CertFile != "" || s.KeyFile != "") {
		p.add(`cert_file and key_file are used only with tls = "files"`, "server", "tls")
	}
	if s.ClientCAFile != "" && s.TLS == "off" {
		p.add("client certificates need TLS: set tls to files, acme or self-signed", "server", "client_ca_file")
	}
	if s.ClientAuth != "require" && s.ClientAuth != "verify-if-given" {
		p.add(fmt.Sprintf("%q: use require or verify-if-given", s.ClientAuth), "server", "client_auth")
	}
	if s.MaxHeaderBytes < 0 || s.MaxBodyBytes < 0 {
		p.add("sizes must be positive", "server")
	}
	if s.PublicURL != "" {
		if u, err := url.Parse(s.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") {
			p.add(fmt.Sprintf("%q: give scheme://host[:port] only", s.PublicURL), "server", "public_url")
		}
	}
	for i, h := range s.Hosts {
		if err := proxy.ValidHost(h); err != nil {
			p.add(fmt.Sprintf("entry %d: %v", i+1, err), "server", "hosts")
		}
	}
	s.validateConns(p)
	s.ACME.validate(p, c)
}

// checkListen reports a listen address that net.Listen would refuse for its
// form ("8090", "localhost"), so that check finds what run would.
func checkListen(p *problems, addr string, key ...string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > 65535 {
			err = fmt.Errorf("bad port %q", port)
		}
	}
	if err != nil {
		p.add(fmt.Sprintf("%q is not host:port: write it like \"127.0.0.1:8080\", \"0.0.0.0:8080\" or \":8080\"", addr), key...)
		return false
	}
	return true
}

// ServerOptions is the gateway listener's options (without its TLS config
// and logger, which the gateway builds).
func (s Server) ServerOptions() proxy.ServerOptions {
	return proxy.ServerOptions{
		Name: "gateway", Addr: s.Listen,
		ReadHeaderTimeout: s.ReadHeaderTimeout.Duration, ReadTimeout: s.ReadTimeout.Duration,
		WriteTimeout: s.WriteTimeout.Duration, IdleTimeout: s.IdleTimeout.Duration,
		MaxHeaderBytes: s.MaxHeaderBytes, MaxConnectionAge: s.maxConnectionAge(),
	}
}

// LoopbackListener reports whether server.listen binds only a loopback
// address (then, with no server.hosts, the gateway answers only to that
// address and localhost).
func (c *Config) LoopbackListener() bool {
	host, _, err := net.SplitHostPort(c.Server.Listen)
	return err == nil && isLoopbackHost(host)
}

// HostsWarning is the warning for a gateway reachable from the network that
// answers any Host, or "" when there is none.
func (c *Config) HostsWarning() string {
	if len(c.Server.Hosts) > 0 || c.LoopbackListener() {
		return ""
	}
	return fmt.Sprintf("%s:%d: server.hosts is not set and server.listen %q is not a loopback address: the gateway answers any Host, "+
		"so a web page that re-points its own name at this address (DNS rebinding) can call it through a browser on the network; "+
		"list the names callers use in server.hosts", c.path, c.lines.Line("server", "listen"), c.Server.Listen)
}

// PublicOrigin is server.public_url parsed, or nil when unset.
func (s Server) PublicOrigin() *url.URL {
	if s.PublicURL == "" {
		return nil
	}
	u, _ := url.Parse(s.PublicURL) // validated with the config
	return u
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// hasZeroPort reports an address whose port the system picks (":0"), which
// may therefore appear in several listeners.
func hasZeroPort(addr string) bool { return strings.HasSuffix(addr, ":0") }
