package identity

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies is the set of networks whose direct connections may carry
// forwarding headers that scgate believes: X-Forwarded-For for the cidr
// resolver, and an identity header such as X-Forwarded-Client-Cert for the
// header resolver. A header from any other peer proves nothing, since the
// caller wrote it. A nil *TrustedProxies trusts no one.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// NewTrustedProxies returns the set of the given networks. A prefix that is
// invalid or has host bits set is an error naming it (1-based). An empty list
// is an error too: a set that trusts no one is a nil *TrustedProxies.
func NewTrustedProxies(prefixes []netip.Prefix) (*TrustedProxies, error) {
	if len(prefixes) == 0 {
		return nil, errors.New("identity: trusted proxies: the list is empty; give the networks of the proxies in front of scgate")
	}
	t := &TrustedProxies{prefixes: make([]netip.Prefix, 0, len(prefixes))}
	for i, p := range prefixes {
		np, err := normalizePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("identity: trusted proxy %d (%s): %w", i+1, p, err)
		}
		t.prefixes = append(t.prefixes, np)
	}
	return t, nil
}

// contains reports whether addr is in a trusted network.
func (t *TrustedProxies) contains(addr netip.Addr) bool {
	if t == nil {
		return false
	}
	for _, p := range t.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Trusts reports whether the request's direct peer (r.RemoteAddr) is a
// trusted proxy.
func (t *TrustedProxies) Trusts(r *http.Request) bool {
	if t == nil {
		return false
	}
	addr, ok := sourceAddr(r.RemoteAddr)
	return ok && t.contains(addr)
}

// maxForwardedHops bounds the X-Forwarded-For entries looked at, so a long
// header cannot make one request cost much.
const maxForwardedHops = 32

// ClientAddr returns the address of the client behind any trusted proxies.
// From an untrusted peer it is the peer itself, whatever X-Forwarded-For
// says. From a trusted peer, X-Forwarded-For (all its lines, in order) is read
// right to left, skipping the trusted hops; the first untrusted address is
// the client. When every entry is trusted the leftmost is the client, and
// without the header the peer is. An entry that is not an IP address, or a
// chain longer than 32 hops, is an error: a trusted proxy wrote it, so
// something in front of scgate is misbehaving.
//
// It does not allocate.
func (t *TrustedProxies) ClientAddr(r *http.Request) (netip.Addr, error) {
	peer, ok := sourceAddr(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, ErrNoIdentity
	}
	if !t.contains(peer) {
		return peer, nil
	}
	lines := r.Header.Values("X-Forwarded-For")
	client, hops := peer, 0
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for rest != "" {
			entry := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				rest = ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue // "a,,b" and a trailing comma carry nothing
			}
			if hops++; hops > maxForwardedHops {
				return netip.Addr{}, fmt.Errorf("identity: X-Forwarded-For has more than %d entries", maxForwardedHops)
			}
			addr, ok := sourceAddr(entry)
			if !ok {
				return netip.Addr{}, fmt.Errorf("identity: X-Forwarded-For entry %d from the right is not an IP address", hops)
			}
			client = addr
			if !t.contains(addr) {
				return addr, nil
			}
		}
	}
	return client, nil
}
