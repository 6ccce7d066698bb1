package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
)

// Panels is [panels]: how a request names the panel it is for, when
// [upstreams.NAME] configures several.
type Panels struct {
	// By is "path" (the /panels/NAME/ prefix) or "host" (NAME.host_suffix).
	By         string `toml:"by"`
	HostSuffix string `toml:"host_suffix"`
}

// Panel is one configured panel: its name and its [upstreams.NAME] (or
// [upstream]) settings.
type Panel struct {
	Name     string
	Upstream Upstream
	key      []string // the settings' table in the file, for messages
}

func (p *Panels) defaults() {
	if p.By == "" {
		p.By = "path"
	}
}

// upstreamsDefaults completes every [upstreams.NAME], and tells whether
// [upstream] was written (an empty one counts as absent).
func (c *Config) upstreamsDefaults() {
	c.singleUpstream = c.Upstream != (Upstream{})
	for name, u := range c.Upstreams {
		u.defaults()
		c.Upstreams[name] = u
	}
	c.Panels.defaults()
}

func (c *Config) validateUpstreams(p *problems) {
	switch {
	case c.singleUpstream && len(c.Upstreams) > 0:
		p.add("both [upstream] and [upstreams.NAME] are set: keep one; for several panels move [upstream]'s settings into an [upstreams.NAME] section", "upstream")
		return
	case len(c.Upstreams) == 0:
		c.Upstream.validate(p, "upstream")
	default:
		if len(c.Upstreams) > proxy.MaxPanels {
			p.add(fmt.Sprintf("%d panels; at most %d", len(c.Upstreams), proxy.MaxPanels), "upstreams")
		}
		for _, pn := range c.PanelList() {
			if why := proxy.ValidPanelName(pn.Name); why != "" {
				p.add(fmt.Sprintf("panel name %q: %s", pn.Name, why), pn.key...)
				continue
			}
			pn.Upstream.validate(p, pn.key...)
			if pn.Upstream.Rate < 0 || pn.Upstream.Burst < 0 {
				p.add("rate and burst must not be negative", pn.key...)
			}
		}
	}
	if c.singleUpstream && (c.Upstream.Rate < 0 || c.Upstream.Burst < 0) {
		p.add("rate and burst must not be negative", "upstream")
	}
	switch c.Panels.By {
	case "path":
		if c.Panels.HostSuffix != "" {
			p.add(`host_suffix is only used with by = "host": remove it, or set by = "host"`, "panels", "host_suffix")
		}
	case "host":
		s := c.Panels.HostSuffix
		if s == "" || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.ContainsAny(s, ":/ ") {
			p.add(`give the domain under which each panel has a name, e.g. "gw.example.com" for north.gw.example.com`, "panels", "host_suffix")
		}
	default:
		p.add(fmt.Sprintf("%q: write \"path\" (/panels/NAME/api/v2/...) or \"host\" (NAME.host_suffix)", c.Panels.By), "panels", "by")
	}
}

// PanelList is every configured panel, sorted by name: the [upstreams.NAME]
// sections, or [upstream] as the one panel named keyvault.DefaultPanel.
func (c *Config) PanelList() []Panel {
	if len(c.Upstreams) == 0 {
		return []Panel{{Name: keyvault.DefaultPanel, Upstream: c.Upstream, key: []string{"upstream"}}}
	}
	list := make([]Panel, 0, len(c.Upstreams))
	for name, u := range c.Upstreams {
		list = append(list, Panel{Name: name, Upstream: u, key: []string{"upstreams", name}})
	}
	slices.SortFunc(list, func(a, b Panel) int { return strings.Compare(a.Name, b.Name) })
	return list
}

// PanelNames is the names of PanelList, for the vault's validation.
func (c *Config) PanelNames() []string {
	var names []string
	for _, p := range c.PanelList() {
		names = append(names, p.Name)
	}
	return names
}

// Setting names a setting of the panel's table for messages, e.g.
// "upstreams.north.dangerously_skip_tls_verify".
func (p Panel) Setting(field string) string {
	return strings.Join(append(slices.Clone(p.key), field), ".")
}

// PanelRouting is [panels] as proxy.Options takes it.
func (c *Config) PanelRouting() proxy.PanelRouting {
	return proxy.PanelRouting{ByHost: c.Panels.By == "host", HostSuffix: c.Panels.HostSuffix}
}

// TransportOptions is the panel's settings as proxy.NewTransport takes
// them; it reads ca_file.
func (c *Config) TransportOptions(p Panel) (proxy.TransportOptions, error) {
	u := p.Upstream
	o := proxy.TransportOptions{
		ServerName: u.ServerName, DangerouslySkipVerify: u.DangerouslySkipTLSVerify,
		DialTimeout: u.DialTimeout.Duration, TLSHandshakeTimeout: u.TLSHandshakeTimeout.Duration,
		ResponseHeaderTimeout: u.ResponseHeaderTimeout.Duration, IdleConnTimeout: u.IdleConnTimeout.Duration,
		MaxIdleConns: u.MaxIdleConns,
	}
	if u.CAFile != "" {
		pool, err := readCertPool(u.CAFile)
		if err != nil {
			return o, c.Wrap(err, append(slices.Clone(p.key), "ca_file")...)
		}
		o.RootCAs = pool
	}
	return o, nil
}
