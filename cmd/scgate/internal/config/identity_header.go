package config

import (
	"fmt"
	"slices"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/scgate/scgate/proxy/identity"
)

// Header is [identity.header]: a trusted proxy names the caller.
type Header struct {
	Name         string   `toml:"name"`
	Format       string   `toml:"format"`
	TrustDomains []string `toml:"trust_domains"`
}

func (h Header) validate(p *problems, id Identity) {
	if h.Name == "" && h.Format == "" && len(h.TrustDomains) == 0 {
		return
	}
	add := func(msg string, key ...string) { p.add(msg, append([]string{"identity", "header"}, key...)...) }
	switch {
	case h.Name == "":
		add(`name the header, e.g. name = "X-Forwarded-Client-Cert"`, "name")
	case !slices.Contains(id.Order, "header"):
		add(`[identity.header] is configured but "header" is not in identity.order`)
	}
	if len(id.TrustedProxies) == 0 {
		add("the header resolver believes only trusted proxies: list their networks in identity.trusted_proxies", "name")
	}
	if h.Format != "" && h.Format != "xfcc" && h.Format != "plain" {
		add(fmt.Sprintf("%q: use xfcc or plain", h.Format), "format")
	}
	for _, td := range h.TrustDomains {
		if _, err := spiffeid.TrustDomainFromString(td); err != nil {
			add(fmt.Sprintf("%q is not a SPIFFE trust domain: %v", td, err), "trust_domains")
		}
	}
}

// HeaderOptions is [identity.header] as identity.NewHeader takes it.
func (h Header) HeaderOptions(proxies *identity.TrustedProxies) identity.HeaderOptions {
	return identity.HeaderOptions{Name: h.Name, Format: h.Format, TrustedProxies: proxies, TrustDomains: h.TrustDomains}
}
