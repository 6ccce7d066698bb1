package proxy

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
)

// stripPort80 is the plain statement of "a name without a port means port
// 80" for the fuzz target: lower-cased, ":80" dropped.
func stripPort80(h string) string {
	h = strings.ToLower(h)
	if name, port, err := net.SplitHostPort(h); err == nil && port == "80" {
		if strings.Contains(name, ":") {
			return "[" + name + "]"
		}
		return name
	}
	return h
}

// FuzzHostCheck checks the Host and browser policy against a plain
// statement of it, on a plain-HTTP request that arrived at 127.0.0.1:8080:
//   - with hosts set, a Host not among them (case and port 80 aside) is
//     never accepted, and one among them is;
//   - with the loopback default, only 127.0.0.1:8080 and localhost:8080;
//   - unless browsers are allowed, an accepted request never carries
//     Sec-Fetch-Site cross-site/same-site, nor an Origin whose host is not
//     an accepted Host.
func FuzzHostCheck(f *testing.F) {
	f.Add("gw.example", "", "", "gw.example", false, false)
	f.Add("GW.example:80", "http://gw.example", "same-origin", "gw.example", false, false)
	f.Add("attacker.example", "", "", "", true, false)
	f.Add("localhost:8080", "http://localhost:8080", "", "", true, false)
	f.Add("127.0.0.1:8080", "https://evil.example", "cross-site", "", true, true)
	f.Add("[::1]:8080", "null", "", "[::1]:8080", false, false)
	f.Fuzz(func(t *testing.T, host, origin, site, configured string, loopback, browsers bool) {
		var hosts []string
		if configured != "" {
			hosts = strings.Split(configured, ",")
		}
		c, err := newHostCheck(hosts, loopback, browsers)
		if err != nil {
			return
		}
		r := &http.Request{Host: host, Header: http.Header{}}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if site != "" {
			r.Header.Set("Sec-Fetch-Site", site)
		}
		la := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
		r = r.WithContext(context.WithValue(context.Background(), http.LocalAddrContextKey, la))
		e := c.check(r)

		inSet := func(h string) bool {
			h = stripPort80(h)
			switch {
			case hosts != nil:
				for _, x := range hosts {
					if h == stripPort80(x) {
						return true
					}
				}
				return false
			case loopback:
				return h == "127.0.0.1:8080" || h == "localhost:8080"
			}
			return true
		}
		hostOK := host != "" && inSet(host)
		if e == nil && !hostOK {
			t.Fatalf("Host %q accepted (hosts %q, loopback %v)", host, hosts, loopback)
		}
		if hostOK && e != nil && e.code == CodeMisdirected {
			t.Fatalf("Host %q refused though it is one of the hosts (%q, loopback %v)", host, hosts, loopback)
		}
		if e == nil && !browsers {
			if s := strings.ToLower(strings.TrimSpace(site)); s == "cross-site" || s == "same-site" {
				t.Fatalf("Sec-Fetch-Site %q accepted", site)
			}
			if origin != "" {
				// A scheme is case-insensitive (RFC 3986 §3.1): "httP://" is http.
				o := strings.ToLower(strings.TrimSpace(origin))
				rest, ok := strings.CutPrefix(o, "http://")
				if !ok {
					rest, ok = strings.CutPrefix(o, "https://")
					rest += ":443"
				}
				if !ok {
					t.Fatalf("Origin %q accepted", origin)
				}
				rest = strings.TrimSuffix(strings.ToLower(rest), ":443:443")
				rest = strings.TrimSuffix(rest, ":443") // the https default
				if hosts == nil && !loopback {
					if stripPort80(rest) != stripPort80(host) && !strings.HasPrefix(o, "https://") {
						t.Fatalf("Origin %q accepted for Host %q", origin, host)
					}
				} else if !inSet(rest) && !strings.HasPrefix(o, "https://") {
					t.Fatalf("Origin %q accepted (hosts %q, loopback %v)", origin, hosts, loopback)
				}
			}
		}
	})
}
