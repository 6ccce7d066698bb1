package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// scgate asks for no credential: whoever reaches it is identified by where
// the request comes from. A browser on such a machine or network reaches it
// too, on behalf of any web page: a cross-site form POST, or a page whose
// name is re-pointed at the gateway's address (DNS rebinding), which then
// reads the answers. hostCheck answers only the Host values scgate is known
// by, and refuses the requests browsers mark as coming from another site.

// hostCheck is the Host and browser policy of a Handler.
type hostCheck struct {
	hosts         map[string]bool // canonical host[:port], default ports dropped
	loopback      bool            // with no hosts: the loopback default
	allowBrowsers bool
}

func newHostCheck(hosts []string, loopback, allowBrowsers bool) (hostCheck, error) {
	c := hostCheck{loopback: loopback, allowBrowsers: allowBrowsers}
	if len(hosts) > 0 {
		c.hosts = make(map[string]bool, 2*len(hosts))
	}
	for _, h := range hosts {
		if err := ValidHost(h); err != nil {
			return hostCheck{}, fmt.Errorf("proxy: Hosts: %w", err)
		}
		h = strings.ToLower(h)
		c.hosts[h] = true
		// "example.com:443" also answers "example.com" over TLS, and so on.
		if name, port, err := net.SplitHostPort(h); err == nil && (port == "80" || port == "443") {
			c.hosts[bracket(name)] = true
		}
	}
	return c, nil
}

// ValidHost checks one Hosts entry: a host name or IP address, with an
// optional port, as a Host header carries it.
func ValidHost(h string) error {
	if h == "" || strings.ContainsAny(h, "/?#@ \t") {
		return fmt.Errorf("%q: write a host as a Host header carries it: name or address, optional :port (no scheme or path)", h)
	}
	u, err := url.Parse("http://" + h)
	if err != nil || u.Host != h || u.Hostname() == "" {
		return fmt.Errorf("%q: write a host as a Host header carries it: name or address, optional :port (no scheme or path)", h)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: the port must be 1 to 65535", h)
		}
	}
	return nil
}

// bracket puts an IPv6 literal back in brackets.
func bracket(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// canonicalHost lower-cases host[:port] and drops the scheme's default port.
func canonicalHost(h string, tls bool) string {
	h = strings.ToLower(h)
	def := ":80"
	if tls {
		def = ":443"
	}
	if strings.HasSuffix(h, def) {
		if name, _, err := net.SplitHostPort(h); err == nil {
			return bracket(name)
		}
	}
	return h
}

// allowed reports whether the canonical host names this gateway for r.
func (c hostCheck) allowed(r *http.Request, host string) bool {
	if c.hosts != nil {
		return c.hosts[host]
	}
	if !c.loopback {
		return true
	}
	// A loopback listener answers to its own address and to localhost, at
	// its port: a browser page can only make a request carry that Host by
	// being served from there.
	la, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	if !ok || !la.IP.IsLoopback() {
		return false
	}
	tls := r.TLS != nil
	port := strconv.Itoa(la.Port)
	return host == canonicalHost(net.JoinHostPort(la.IP.String(), port), tls) ||
		host == canonicalHost("localhost:"+port, tls)
}

// check applies the policy before anything else looks at the request.
func (c hostCheck) check(r *http.Request) *gatewayError {
	host := canonicalHost(r.Host, r.TLS != nil)
	if r.Host == "" || !c.allowed(r, host) {
		return newError(CodeMisdirected, http.StatusMisdirectedRequest,
			"this gateway does not answer to Host "+quote(r.Host)+"; call it by one of the names in its server.hosts setting", nil)
	}
	if c.allowBrowsers {
		return nil
	}
	switch strings.ToLower(strings.TrimSpace(r.Header.Get("Sec-Fetch-Site"))) {
	case "cross-site", "same-site":
		return newError(CodeCrossSite, http.StatusForbidden,
			"a browser sent this request on behalf of another site (Sec-Fetch-Site); scgate refuses such requests unless server.allow_browsers is set", nil)
	}
	if origins := r.Header.Values("Origin"); len(origins) > 0 {
		if len(origins) > 1 || !c.originAllowed(r, origins[0], host) {
			return newError(CodeCrossSite, http.StatusForbidden,
				"the request's Origin "+quote(origins[0])+" is not one of this gateway's hosts; scgate refuses cross-origin browser requests unless server.allow_browsers is set", nil)
		}
	}
	return nil
}

// originAllowed: the Origin names this gateway (one of the hosts, or with
// no hosts set, the Host the request was sent to).
func (c hostCheck) originAllowed(r *http.Request, origin, host string) bool {
	u, err := url.Parse(strings.TrimSpace(origin))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.User != nil {
		return false // "null" (a sandboxed page, a file) among others
	}
	oh := canonicalHost(u.Host, u.Scheme == "https")
	if c.hosts != nil || c.loopback {
		return c.allowed(r, oh)
	}
	return oh == host
}
