package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
)

// checkLoopbackAddr refuses any host:port whose host is not a loopback IP
// literal. Names (even "localhost") are refused too: a resolver decides where
// a name points, and the bench must never send load anywhere else.
func checkLoopbackAddr(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", hostport, err)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("%q: a fixed port is required", hostport)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%q: the host must be a loopback IP address such as 127.0.0.1, not a name", hostport)
	}
	if !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%q is not on loopback: the bench only ever loads 127.0.0.0/8 or ::1", hostport)
	}
	return nil
}

// checkLoopbackURL is checkLoopbackAddr for an http(s) URL.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: the scheme must be http or https", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q: no user info in a target URL", u.Redacted())
	}
	if u.Port() == "" {
		return fmt.Errorf("%q: give the port explicitly", raw)
	}
	return checkLoopbackAddr(u.Host)
}
