package identity

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzClientAddr checks X-Forwarded-For handling against a plain statement
// of the rule: from an untrusted peer, the peer; from a trusted one, the
// rightmost entry that is not a trusted proxy (or the leftmost, or the peer
// without entries), an error for an entry that is not an address among
// those read, and never more than 32 entries read.
func FuzzClientAddr(f *testing.F) {
	for _, s := range [][3]string{
		{"10.0.0.5:1", "203.0.113.9", ""}, {"10.0.0.5:1", "10.20.0.1, 203.0.113.9", "198.51.100.1"},
		{"192.0.2.7:1", "10.9.9.9", ""}, {"10.0.0.5:1", " , 203.0.113.9,, ", ""}, {"10.0.0.5:1", "unknown, 10.0.0.8", ""},
		{"[fd00:1b::2]:1", "[2001:db8::5]:80", "2001:db8::5"}, {"[::ffff:10.0.0.5]:1", "10.0.0.9,10.0.0.8", ""},
		{"10.0.0.5:1", strings.Repeat("10.0.0.1,", 40), ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	trusted := []string{"10.0.0.0/24", "fd00:1b::/64"}
	lb := mustProxies(f, trusted...)
	f.Fuzz(func(t *testing.T, remote, line1, line2 string) {
		r, _ := http.NewRequest("GET", "http://gw/", nil)
		r.RemoteAddr = remote
		var lines []string
		for _, l := range []string{line1, line2} {
			if l != "" {
				r.Header.Add("X-Forwarded-For", l)
				lines = append(lines, l)
			}
		}
		got, err := lb.ClientAddr(r)

		peer, ok := oracleAddr(remote)
		if !ok {
			if err == nil {
				t.Fatalf("no peer address in %q, yet %v", remote, got)
			}
			return
		}
		if !oracleContains(trusted, peer) {
			if err != nil || got != peer {
				t.Fatalf("untrusted peer %v: got %v, %v", peer, got, err)
			}
			return
		}
		// The entries, right to left, as the rule reads them.
		var entries []string
		for i := len(lines) - 1; i >= 0; i-- {
			parts := strings.Split(lines[i], ",")
			for j := len(parts) - 1; j >= 0; j-- {
				if e := strings.TrimSpace(parts[j]); e != "" {
					entries = append(entries, e)
				}
			}
		}
		want, wantErr := peer, false
		for i, e := range entries {
			if i == maxForwardedHops {
				wantErr = true
				break
			}
			a, ok := oracleAddr(e)
			if !ok {
				wantErr = true
				break
			}
			want = a
			if !oracleContains(trusted, a) {
				break
			}
		}
		if (err != nil) != wantErr || (!wantErr && got != want) {
			t.Fatalf("peer %v, X-Forwarded-For %q: got %v, %v; want %v (error %v)", peer, lines, got, err, want, wantErr)
		}
	})
}
