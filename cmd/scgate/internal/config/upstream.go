package config

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/scgate/scgate/proxy"
)

// Upstream is [upstream]: the broadcaster, or one [upstreams.NAME] panel of
// several (upstreams.go).
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
	// Rate caps the requests per second this gateway sends the panel, over
	// all callers and keys (the broadcaster's own capacity); 0: no cap.
	// Burst is the bucket size (0: the rate, at least 1).
	Rate  float64 `toml:"rate"`
	Burst int     `toml:"burst"`
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

// validate checks the settings of the table at key ("upstream" or
// "upstreams", NAME).
func (u Upstream) validate(p *problems, key ...string) {
	at := func(field string) []string { return append(slices.Clone(key), field) }
	if u.URL == "" {
		p.add(`the broadcaster's URL is required, e.g. "https://radio.example.com:1030"`, at("url")...)
		return
	}
	pu, err := url.Parse(u.URL)
	if err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http") {
		p.add(fmt.Sprintf("%q is not an http(s) URL with a host", u.URL), at("url")...)
		return
	}
	if (pu.Path != "" && pu.Path != "/") || pu.RawQuery != "" || pu.User != nil || pu.Fragment != "" {
		p.add("give only scheme://host:port; callers' /api/v2/... paths are forwarded unchanged", at("url")...)
	}
	if pu.Scheme == "http" && !u.AllowPlainHTTP && !isLoopbackHost(pu.Hostname()) {
		p.add("plain http would send keys in clear text: use https, or set allow_plain_http = true if you really must", at("url")...)
	}
	if u.MaxIdleConns < 0 {
		p.add("must be positive", at("max_idle_conns")...)
	}
	if u.DangerouslySkipTLSVerify && u.CAFile != "" {
		p.add("ca_file is unused when verification is skipped: remove one of the two (keeping ca_file is the safe choice)", at("dangerously_skip_tls_verify")...)
	}
}

// Origin is upstream.url without its path: what the gateway forwards to.
func (u Upstream) Origin() *url.URL {
	pu, _ := url.Parse(u.URL) // validated with the config
	pu.Path = ""
	return pu
}
