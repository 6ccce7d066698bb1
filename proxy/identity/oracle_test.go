package identity

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// The fuzz targets' oracles, written from the standard library alone so
// that they share no code with what they check.

// oracleAddr is the address in a RemoteAddr or an X-Forwarded-For entry:
// a bare address, "[v6]", or what net.SplitHostPort splits into an address
// and a decimal port up to 65535. IPv6 zones are accepted and dropped;
// IPv4-mapped addresses are unmapped.
func oracleAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s += ":0" // "[v6]" reads as "[v6]" with a port
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	if port == "" || strings.TrimLeft(port, "0123456789") != "" {
		return netip.Addr{}, false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// oracleContains reports whether any of the prefixes, given as text,
// contains a.
func oracleContains(prefixes []string, a netip.Addr) bool {
	for _, p := range prefixes {
		if netip.MustParsePrefix(p).Contains(a) {
			return true
		}
	}
	return false
}
