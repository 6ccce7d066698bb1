package proxy

import (
	"net/http"
	"strings"

	"github.com/scgate/scgate/proxy/identity"
)

// stripper is stage 1 of docs/design.md, Request path (the headers of its Headers section): it removes what a caller must not
// pass through scgate, in any casing (a map key that is not canonical, as
// another layer may build, must not slip past).
type stripper struct {
	proxies      *identity.TrustedProxies
	proxyHeaders []string
	bearer       bool
}

func newStripper(proxies *identity.TrustedProxies, proxyHeaders []string, bearer bool) stripper {
	return stripper{proxies: proxies, proxyHeaders: proxyHeaders, bearer: bearer}
}

// inbound runs before identification: a caller's own SC-API-KEY and
// Scgate-* headers always go; forwarding and proxy identity headers go
// unless the direct peer is a trusted proxy, so that resolvers only ever
// see such headers from a proxy that wrote them.
func (s stripper) inbound(r *http.Request) {
	forwarding := !s.proxies.Trusts(r)
	for k := range r.Header {
		if isCredential(k) || (forwarding && s.isForwarding(k)) {
			delete(r.Header, k)
		}
	}
}

// outbound runs on the request to the broadcaster: everything inbound may
// remove, whoever the peer, and the identity token, which was only ever
// meant for scgate.
func (s stripper) outbound(h http.Header) {
	for k := range h {
		if isCredential(k) || s.isForwarding(k) {
			delete(h, k)
		}
	}
	// ReverseProxy puts Connection: Upgrade and Upgrade back for a caller
	// asking to switch protocols (WebSocket, h2c). The API has no such
	// route, and the tunnel would carry later traffic past the route policy,
	// the limits and the access log: the broadcaster gets a plain request,
	// and a 101 answer becomes 502.
	delete(h, "Connection")
	delete(h, "Upgrade")
	for k := range h {
		if isOverride(k) {
			delete(h, k)
		}
	}
	if !s.bearer {
		return
	}
	// Every Bearer value goes, in every copy of the header: a second
	// Authorization line must not carry the token past a resolver that
	// only looked at the first.
	for k, vs := range h {
		if !strings.EqualFold(k, "Authorization") {
			continue
		}
		var kept []string
		for _, v := range vs {
			if !hasPrefixFold(v, "Bearer ") {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(h, k)
		} else {
			h[k] = kept
		}
	}
}

// isCredential: headers a caller could use to choose its own key or to pass
// as scgate.
func isCredential(k string) bool {
	return sameName(k, "Sc-Api-Key") || hasNamePrefix(k, "Scgate-")
}

// overrideHeaders make some frameworks (Django REST framework, Symfony, IIS
// and Zend rewrites) serve another method or path than the request line
// names: the route policy would have judged a request the broadcaster never
// sees.
var overrideHeaders = [...]string{
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"X-Original-Url", "X-Rewrite-Url",
}

func isOverride(k string) bool {
	for _, name := range overrideHeaders {
		if sameName(k, name) {
			return true
		}
	}
	return false
}

// isForwarding: headers that only a trusted proxy may write.
func (s stripper) isForwarding(k string) bool {
	if sameName(k, "Forwarded") || hasNamePrefix(k, "X-Forwarded-") {
		return true
	}
	for _, p := range s.proxyHeaders {
		if sameName(k, p) {
			return true
		}
	}
	return false
}

// sameName compares header names as a WSGI or CGI server does when it turns
// them into HTTP_* variables (Django, for one): case folded, and "_" read as
// "-". Otherwise "SC_API_KEY: x" would pass scgate and reach such a
// broadcaster as the key itself.
func sameName(k, name string) bool {
	if len(k) != len(name) {
		return false
	}
	for i := 0; i < len(k); i++ {
		a, b := lower(k[i]), lower(name[i])
		if a != b && !(a == '_' && b == '-') && !(a == '-' && b == '_') {
			return false
		}
	}
	return true
}

func hasNamePrefix(k, prefix string) bool {
	return len(k) >= len(prefix) && sameName(k[:len(prefix)], prefix)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
