package config

import (
	"fmt"
	"net/url"

	"github.com/scgate/scgate/proxy"
)

// Upstream is [upstream]: the broadcaster.
type Upstream struct {
	URL                   string   `toml:"url"`
	CAFile                string   `toml:"ca_file"`
	ServerName            string   `toml:"server_name"`
	AllowPlainHTTP        bool     `toml:"allow_plain_http"`
	DialTimeout           Duration `toml:"dial_timeout"`
	TLSHandshakeTimeout   Duration `toml:"tls_handshake_timeout"`
	ResponseHeaderTimeout Duration `toml:"response_header_timeout"`
	IdleConnTimeout       Duration `toml:"idle_conn_timeout"`
	MaxIdleConns          int      `toml:"max_idle_conns"`
	// DangerouslySkipTLSVerify turns off the verification of the
	// broadcaster's certificate; the gateway warns at every start.
	DangerouslySkipTLSVerify bool `toml:"dangerously_skip_tls_verify"`
}

func (u *Upstream) defaults() {
	u.DialTimeout.orDefault(proxy.DefaultDialTimeout)
	u.TLSHandshakeTimeout.orDefault(proxy.DefaultTLSHandshakeTimeout)
	u.ResponseHeaderTimeout.orDefault(proxy.DefaultResponseHeaderTimeout)
	u.IdleConnTimeout.orDefault(proxy.DefaultIdleConnTimeout)
	if u.MaxIdleConns == 0 {
		u.MaxIdleConns = proxy.DefaultMaxIdleConns
	}
}

func (u Upstream) validate(p *problems) {
	if u.URL == "" {
		p.add(`the broadcaster's URL is required, e.g. "https://radio.example.com:1030"`, "upstream", "url")
		return
	}
	pu, err := url.Parse(u.URL)
	if err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http") {
		p.add(fmt.Sprintf("%q is not an http(s) URL with a host", u.URL), "upstream", "url")
		return
	}
	if (pu.Path != "" && pu.Path != "/") || pu.RawQuery != "" || pu.User != nil || pu.Fragment != "" {
		p.add("give only scheme://host:port; callers' /api/v2/... paths are forwarded unchanged", "upstream", "url")
	}
	if pu.Scheme == "http" && !u.AllowPlainHTTP && !isLoopbackHost(pu.Hostname()) {
		p.add("plain http would send keys in clear text: use https, or set allow_plain_http = true if you really must", "upstream", "url")
	}
	if u.MaxIdleConns < 0 {
		p.add("must be positive", "upstream", "max_idle_conns")
	}
	if u.DangerouslySkipTLSVerify && u.CAFile != "" {
		p.add("ca_file is unused when verification is skipped: remove one of the two (keeping ca_file is the safe choice)", "upstream", "dangerously_skip_tls_verify")
	}
}

// Origin is upstream.url without its path: what the gateway forwards to.
func (u Upstream) Origin() *url.URL {
	pu, _ := url.Parse(u.URL) // validated with the config
	pu.Path = ""
	return pu
}

// TransportOptions is [upstream] as proxy.NewTransport takes it; it reads
// ca_file.
func (c *Config) TransportOptions() (proxy.TransportOptions, error) {
	u := c.Upstream
	o := proxy.TransportOptions{
		ServerName: u.ServerName, DangerouslySkipVerify: u.DangerouslySkipTLSVerify,
		DialTimeout: u.DialTimeout.Duration, TLSHandshakeTimeout: u.TLSHandshakeTimeout.Duration,
		ResponseHeaderTimeout: u.ResponseHeaderTimeout.Duration, IdleConnTimeout: u.IdleConnTimeout.Duration,
		MaxIdleConns: u.MaxIdleConns,
	}
	if u.CAFile != "" {
		pool, err := readCertPool(u.CAFile)
		if err != nil {
			return o, c.Wrap(err, "upstream", "ca_file")
		}
		o.RootCAs = pool
	}
	return o, nil
}
