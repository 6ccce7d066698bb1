package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/scgate/scgate/internal/tomlpos"
	"github.com/scgate/scgate/proxy"
)

// Config is config.toml. Every field is documented in config.example.toml;
// defaults are applied by applyDefaults.
type Config struct {
	Server   ServerConfig   `toml:"server"`
	Admin    AdminConfig    `toml:"admin"`
	Upstream UpstreamConfig `toml:"upstream"`
	Vault    VaultConfig    `toml:"vault"`
	Identity IdentityConfig `toml:"identity"`
	Limits   LimitsConfig   `toml:"limits"`
	Policy   PolicyConfig   `toml:"policy"`
	Log      LogConfig      `toml:"log"`
	Rotation RotationConfig `toml:"rotation"` // config_rotation.go

	path  string         // the file it came from
	lines *tomlpos.Index // key path → line, for semantic errors
}

// ServerConfig is the callers' listener.
type ServerConfig struct {
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
	MaxBufferedBytes  int64    `toml:"max_buffered_bytes"` // config_buffers.go
	ShutdownDelay     Duration `toml:"shutdown_delay"`
	ShutdownTimeout   Duration `toml:"shutdown_timeout"`
	PublicURL         string   `toml:"public_url"`
	// Connection limits: see config_connlimits.go.
	MaxConnections          int      `toml:"max_connections"`
	MaxConnectionsPerSource int      `toml:"max_connections_per_source"`
	UnidentifiedTimeout     Duration `toml:"unidentified_timeout"`
	// Hosts are the Host values the gateway answers; AllowBrowsers lets
	// cross-site browser requests through (proxy/browser.go).
	Hosts         []string `toml:"hosts"`
	AllowBrowsers bool     `toml:"allow_browsers"`
	// MaxConnectionAge: see config_mtls.go.
	MaxConnectionAge Duration `toml:"max_connection_age"`
	// ACME: see config_tls.go.
	ACME ACMEConfig `toml:"acme"`
}

// AdminConfig is the metrics and probes listener.
type AdminConfig struct {
	Listen string `toml:"listen"`
}

// UpstreamConfig is the broadcaster.
type UpstreamConfig struct {
	URL                   string   `toml:"url"`
	CAFile                string   `toml:"ca_file"`
	ServerName            string   `toml:"server_name"`
	AllowPlainHTTP        bool     `toml:"allow_plain_http"`
	DialTimeout           Duration `toml:"dial_timeout"`
	TLSHandshakeTimeout   Duration `toml:"tls_handshake_timeout"`
	ResponseHeaderTimeout Duration `toml:"response_header_timeout"`
	IdleConnTimeout       Duration `toml:"idle_conn_timeout"`
	MaxIdleConns          int      `toml:"max_idle_conns"`
	// DangerouslySkipTLSVerify: see config_tls.go.
	DangerouslySkipTLSVerify bool `toml:"dangerously_skip_tls_verify"`
}

// VaultConfig locates the key vault.
type VaultConfig struct {
	File         string   `toml:"file"`
	PollInterval Duration `toml:"poll_interval"`
	// AgeIdentityFile decrypts an age-encrypted vault (config_rotation.go).
	AgeIdentityFile string `toml:"age_identity_file"`
	// DangerouslyAllowWritableKeyFiles: see keyperms.go.
	DangerouslyAllowWritableKeyFiles bool `toml:"dangerously_allow_writable_key_files"`
}

// IdentityConfig configures the resolvers and their order.
type IdentityConfig struct {
	Order  []string          `toml:"order"`
	Static string            `toml:"static"`
	CIDR   map[string]string `toml:"cidr"`
	MTLS   MTLSConfig        `toml:"mtls"`
	// TrustedProxies, JWT and Header: see config_identity.go.
	TrustedProxies []string     `toml:"trusted_proxies"`
	JWT            JWTConfig    `toml:"jwt"`
	Header         HeaderConfig `toml:"header"`
	// AllowOverlap: see config_mtls.go.
	AllowOverlap bool `toml:"allow_overlap"`
}

// MTLSConfig says which part of a verified client certificate is the identity.
type MTLSConfig struct {
	Source       string   `toml:"source"`
	TrustDomains []string `toml:"trust_domains"`
	// TrustBundles: see config_mtls.go.
	TrustBundles map[string]string `toml:"trust_bundles"`
}

// LogConfig configures zap.
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Duration is a time.Duration written as a Go duration string ("5s", "2m").
// A zero Duration that was written in the file ("0s") stays zero; only an
// absent one takes the default.
type Duration struct {
	time.Duration
	set bool
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it like \"500ms\", \"10s\" or \"2m\"", b)
	}
	if v < 0 {
		return fmt.Errorf("%q: a duration must not be negative", b)
	}
	d.Duration, d.set = v, true
	return nil
}

// loadConfig reads, decodes, completes and validates a config file. Every
// problem is reported at once, each as FILE:LINE: what to fix.
func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parseConfig(path, data)
}

func parseConfig(path string, data []byte) (*Config, error) {
	cfg := &Config{path: path}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, decodeError(path, err)
	}
	cfg.lines = tomlpos.Build(data)
	cfg.applyDefaults()
	cfg.resolvePaths(filepath.Dir(path))
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeError turns go-toml's errors into FILE:LINE: messages.
func decodeError(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		errs := make([]error, 0, len(strict.Errors))
		for _, e := range strict.Errors {
			row, _ := e.Position()
			errs = append(errs, fmt.Errorf("%s:%d: unknown setting %q; see config.example.toml for the valid ones",
				path, row, strings.Join(e.Key(), ".")))
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 {
			return fmt.Errorf("%s:%d: %s: %s", path, row, strings.Join(k, "."), msg)
		}
		return fmt.Errorf("%s:%d: %s", path, row, msg)
	}
	return fmt.Errorf("%s: %w", path, err)
}

func (c *Config) applyDefaults() {
	s := &c.Server
	s.Listen = orString(s.Listen, "127.0.0.1:8080")
	s.TLS = orString(s.TLS, "off")
	s.ClientAuth = orString(s.ClientAuth, "require")
	setDuration(&s.ReadHeaderTimeout, 10*time.Second)
	setDuration(&s.ReadTimeout, 2*time.Minute)
	setDuration(&s.WriteTimeout, 2*time.Minute)
	setDuration(&s.IdleTimeout, 2*time.Minute)
	setDuration(&s.ShutdownDelay, 5*time.Second)
	setDuration(&s.ShutdownTimeout, 30*time.Second)
	setDuration(&s.MaxConnectionAge, defaultMaxConnectionAge)
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = 32 << 20
	}
	s.applyConnDefaults()
	c.Admin.Listen = orString(c.Admin.Listen, "127.0.0.1:9090")
	u := &c.Upstream
	setDuration(&u.DialTimeout, 5*time.Second)
	setDuration(&u.TLSHandshakeTimeout, 10*time.Second)
	setDuration(&u.ResponseHeaderTimeout, 30*time.Second)
	setDuration(&u.IdleConnTimeout, 90*time.Second)
	if u.MaxIdleConns == 0 {
		u.MaxIdleConns = 512
	}
	setDuration(&c.Vault.PollInterval, 2*time.Second)
	c.Identity.MTLS.Source = orString(c.Identity.MTLS.Source, "uri")
	if len(c.Identity.Order) == 0 {
		// Strongest evidence first: a verified certificate, then the network.
		if c.clientCertsConfigured() {
			c.Identity.Order = append(c.Identity.Order, "mtls")
		}
		c.Identity.Order = append(c.Identity.Order, c.Identity.defaultOrder()...)
		if len(c.Identity.CIDR) > 0 {
			c.Identity.Order = append(c.Identity.Order, "cidr")
		}
		if c.Identity.Static != "" {
			c.Identity.Order = append(c.Identity.Order, "static")
		}
	}
	c.applyCentralDefaults()
	c.Log.Level = orString(c.Log.Level, "info")
	c.Log.Format = orString(c.Log.Format, "json")
}

// resolvePaths makes relative file paths relative to the config file's folder,
// so a config works whatever the working directory.
func (c *Config) resolvePaths(dir string) {
	for _, p := range []*string{&c.Server.CertFile, &c.Server.KeyFile, &c.Server.ClientCAFile,
		&c.Upstream.CAFile, &c.Vault.File, &c.Vault.AgeIdentityFile, &c.Server.ACME.Storage, &c.Server.ACME.CARootsFile,
		&c.Identity.JWT.JWKSFile, &c.Identity.JWT.CAFile, &c.Identity.JWT.TokenFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	c.resolveBundlePaths(dir)
}

// problem is one validation failure, at the line of the setting it names.
func (c *Config) problem(msg string, key ...string) error {
	return fmt.Errorf("%s:%d: %s: %s", c.path, c.lines.Line(key...), strings.Join(key, "."), msg)
}

func (c *Config) validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	s := c.Server
	switch s.TLS {
	case "off", "self-signed":
	case "files":
		if s.CertFile == "" || s.KeyFile == "" {
			add(c.problem(`tls = "files" needs cert_file and key_file`, "server", "tls"))
		}
	case "acme": // config_tls.go
	default:
		add(c.problem(fmt.Sprintf("%q is not a TLS mode: use off, files, self-signed or acme", s.TLS), "server", "tls"))
	}
	if s.TLS != "files" && (s.CertFile != "" || s.KeyFile != "") {
		add(c.problem(`cert_file and key_file are used only with tls = "files"`, "server", "tls"))
	}
	if s.ClientCAFile != "" && s.TLS == "off" {
		add(c.problem("client certificates need TLS: set tls to files, acme or self-signed", "server", "client_ca_file"))
	}
	if s.ClientAuth != "require" && s.ClientAuth != "verify-if-given" {
		add(c.problem(fmt.Sprintf("%q: use require or verify-if-given", s.ClientAuth), "server", "client_auth"))
	}
	if s.MaxHeaderBytes < 0 || s.MaxBodyBytes < 0 {
		add(c.problem("sizes must be positive", "server"))
	}
	if s.PublicURL != "" {
		if u, err := url.Parse(s.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") {
			add(c.problem(fmt.Sprintf("%q: give scheme://host[:port] only", s.PublicURL), "server", "public_url"))
		}
	}
	for i, h := range s.Hosts {
		if err := proxy.ValidHost(h); err != nil {
			add(c.problem(fmt.Sprintf("entry %d: %v", i+1, err), "server", "hosts"))
		}
	}
	if c.Admin.Listen == s.Listen && !strings.HasSuffix(s.Listen, ":0") {
		add(c.problem("the admin listener must not share the gateway's address", "admin", "listen"))
	}
	errs = append(errs, c.validateConnLimits()...)
	errs = append(errs, c.validateUpstream()...)
	if c.Vault.File == "" {
		add(c.problem("the vault file is required (see deploy/examples/keys.example.toml)", "vault", "file"))
	}
	errs = append(errs, c.validateIdentity()...)
	errs = append(errs, c.validateRotation()...)
	errs = append(errs, c.validateBuffers()...)
	errs = append(errs, c.validateCentral()...)
	errs = append(errs, c.validateMTLS()...)
	errs = append(errs, c.validateLimits()...)
	errs = append(errs, c.validatePolicy()...)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		add(c.problem(fmt.Sprintf("%q: use debug, info, warn or error", c.Log.Level), "log", "level"))
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		add(c.problem(fmt.Sprintf("%q: use json or console", c.Log.Format), "log", "format"))
	}
	return errors.Join(errs...)
}

func (c *Config) validateUpstream() []error {
	u := c.Upstream
	if u.URL == "" {
		return []error{c.problem(`the broadcaster's URL is required, e.g. "https://radio.example.com:1030"`, "upstream", "url")}
	}
	pu, err := url.Parse(u.URL)
	if err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http") {
		return []error{c.problem(fmt.Sprintf("%q is not an http(s) URL with a host", u.URL), "upstream", "url")}
	}
	var errs []error
	if (pu.Path != "" && pu.Path != "/") || pu.RawQuery != "" || pu.User != nil {
		errs = append(errs, c.problem("give only scheme://host:port; callers' /api/v2/... paths are forwarded unchanged", "upstream", "url"))
	}
	if pu.Scheme == "http" && !u.AllowPlainHTTP && !isLoopbackHost(pu.Hostname()) {
		errs = append(errs, c.problem("plain http would send keys in clear text: use https, or set allow_plain_http = true if you really must", "upstream", "url"))
	}
	if u.MaxIdleConns < 0 {
		errs = append(errs, c.problem("must be positive", "upstream", "max_idle_conns"))
	}
	return errs
}

func (c *Config) validateIdentity() []error {
	id := c.Identity
	var errs []error
	if len(id.Order) == 0 {
		errs = append(errs, c.problem("no identity resolver is configured: set identity.static (sidecar), identity.cidr, [identity.jwt], [identity.header], or a client CA for mtls", "identity"))
	}
	seen := map[string]bool{}
	for _, r := range id.Order {
		if seen[r] {
			errs = append(errs, c.problem(fmt.Sprintf("%q is listed twice", r), "identity", "order"))
		}
		seen[r] = true
		switch r {
		case "static":
			if id.Static == "" {
				errs = append(errs, c.problem(`"static" is in the order but identity.static is empty`, "identity", "order"))
			}
		case "cidr":
			if len(id.CIDR) == 0 {
				errs = append(errs, c.problem(`"cidr" is in the order but [identity.cidr] is empty`, "identity", "order"))
			}
		case "mtls":
			if !c.clientCertsConfigured() {
				errs = append(errs, c.problem(`"mtls" is in the order but neither server.client_ca_file nor [identity.mtls.trust_bundles] is set`, "identity", "order"))
			}
		case "jwt", "header": // config_identity.go
			errs = append(errs, c.checkOrdered(r)...)
		default:
			errs = append(errs, c.problem(fmt.Sprintf("%q is not a resolver: use mtls, jwt, header, cidr or static", r), "identity", "order"))
		}
	}
	for network := range id.CIDR {
		if _, err := netip.ParsePrefix(network); err != nil {
			errs = append(errs, c.problem(fmt.Sprintf("%q is not a network: write it like \"10.1.0.0/16\"", network), "identity", "cidr", network))
		}
	}
	if s := id.MTLS.Source; s != "uri" && s != "dns" && s != "cn" {
		errs = append(errs, c.problem(fmt.Sprintf("%q: use uri, dns or cn", s), "identity", "mtls", "source"))
	}
	return errs
}

// loopbackListener reports whether server.listen binds only a loopback
// address (then, with no server.hosts, the gateway answers only to that
// address and localhost).
func (c *Config) loopbackListener() bool {
	host, _, err := net.SplitHostPort(c.Server.Listen)
	return err == nil && isLoopbackHost(host)
}

// hostsWarning is the warning for a gateway reachable from the network that
// answers any Host, or "" when there is none.
func (c *Config) hostsWarning() string {
	if len(c.Server.Hosts) > 0 || c.loopbackListener() {
		return ""
	}
	return fmt.Sprintf("%s:%d: server.hosts is not set and server.listen %q is not a loopback address: the gateway answers any Host, "+
		"so a web page that re-points its own name at this address (DNS rebinding) can call it through a browser on the network; "+
		"list the names callers use in server.hosts", c.path, c.lines.Line("server", "listen"), c.Server.Listen)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func setDuration(d *Duration, def time.Duration) {
	if !d.set {
		d.Duration = def
	}
}
