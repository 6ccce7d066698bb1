package main

import "testing"

func TestOnlyLoopbackTargets(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080":       true,
		"127.3.2.1:1":          true,
		"[::1]:8080":           true,
		"[::ffff:127.0.0.1]:1": true,
		"10.0.0.1:80":          false,
		"192.168.1.10:80":      false,
		"0.0.0.0:80":           false,
		"[::]:80":              false,
		"8.8.8.8:53":           false,
		"localhost:80":         false, // a name: a resolver decides where it points
		"127.0.0.1":            false,
		"127.0.0.1:0":          false,
	} {
		if err := checkLoopbackAddr(addr); (err == nil) != ok {
			t.Errorf("checkLoopbackAddr(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
	for u, ok := range map[string]bool{
		"http://127.0.0.1:18300":     true,
		"https://[::1]:443/x":        true,
		"http://127.0.0.1":           false,
		"https://example.com:443":    false,
		"http://10.1.2.3:80":         false,
		"ftp://127.0.0.1:21":         false,
		"http://user@127.0.0.1:80":   false,
		"http://127.0.0.1.nip.io:80": false,
	} {
		if err := checkLoopbackURL(u); (err == nil) != ok {
			t.Errorf("checkLoopbackURL(%q) = %v, want ok=%v", u, err, ok)
		}
	}
}

// The checks' client and the upstream refuse to touch anything off loopback.
func TestClientAndUpstreamRefuseOtherHosts(t *testing.T) {
	c := &client{}
	if _, _, err := c.do(t.Context(), "http://10.0.0.1:80", "GET", "/", nil, ""); err == nil {
		t.Fatal("the client sent a request to 10.0.0.1")
	}
	if err := runUpstream(t.Context(), []string{"-listen", "0.0.0.0:18399", "-key", "k"}); err == nil {
		t.Fatal("the upstream listened beyond loopback")
	}
}
