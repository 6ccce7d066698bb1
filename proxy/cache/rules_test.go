package cache

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy/policy"
)

func TestLifetimeFollowsTheDirectives(t *testing.T) {
	route, _ := policy.ParseRule("GET /api/v2/history/")
	perKey, shared := Rule{Route: route, TTL: 10 * time.Second}, Rule{Route: route, TTL: 10 * time.Second, Shared: true}
	cases := []struct {
		cc   string
		rule Rule
		ttl  time.Duration
		why  error
	}{
		{"", perKey, 10 * time.Second, nil},
		{"max-age=3", perKey, 3 * time.Second, nil},
		{"max-age=60", perKey, 10 * time.Second, nil},
		{"max-age=60, s-maxage=2", perKey, 2 * time.Second, nil},
		{`max-age="4"`, perKey, 4 * time.Second, nil},
		{"MAX-AGE=5", perKey, 5 * time.Second, nil},
		{"max-age=99999999999999", perKey, 10 * time.Second, nil},
		{"max-age=-1", perKey, 0, notStoredNoCache},
		{"max-age=abc", perKey, 0, notStoredNoCache},
		{"max-age=0", perKey, 0, notStoredMaxAge},
		{"public, no-store", perKey, 0, notStoredNoStore},
		{`no-cache="Set-Cookie"`, perKey, 0, notStoredNoCache},
		{"private", shared, 0, notStoredPrivate},
		{"private, max-age=4", perKey, 4 * time.Second, nil},
		{"unknown-directive, max-age=7", perKey, 7 * time.Second, nil},
	}
	for _, c := range cases {
		resp := &http.Response{StatusCode: 200, Header: http.Header{}}
		if c.cc != "" {
			resp.Header.Set("Cache-Control", c.cc)
		}
		ttl, why := lifetime(resp, c.rule)
		if ttl != c.ttl || why != c.why {
			t.Errorf("%q shared=%v: %v %v, want %v %v", c.cc, c.rule.Shared, ttl, why, c.ttl, c.why)
		}
	}
}

// The broadcaster's Cache-Control, Age and Vary are untrusted text: no
// value makes the cache panic, store an answer with a negative or longer
// TTL than its rule, or store one that says no-store.
func FuzzLifetime(f *testing.F) {
	for _, s := range []string{"max-age=5", "no-store", "private, s-maxage=0", `max-age="1`, "max-age=,", "s-maxage=4294967296", "\x00"} {
		f.Add(s, "3", "Accept-Language, *")
	}
	route, _ := policy.ParseRule("GET /**")
	rule := Rule{Route: route, TTL: time.Minute, Shared: true}
	f.Fuzz(func(t *testing.T, cc, age, vary string) {
		h := http.Header{"Cache-Control": {cc}, "Age": {age}, "Vary": {vary}}
		ttl, why := lifetime(&http.Response{StatusCode: 200, Header: h}, rule)
		if why == nil && (ttl <= 0 || ttl > rule.TTL) {
			t.Fatalf("ttl %v out of (0, %v]", ttl, rule.TTL)
		}
		if why == nil && strings.Contains(strings.ToLower(cc), "no-store") && parseCacheControl(h).noStore {
			t.Fatal("stored a no-store answer")
		}
		if a := upstreamAge(h); a < 0 {
			t.Fatalf("negative age %v", a)
		}
	})
}
