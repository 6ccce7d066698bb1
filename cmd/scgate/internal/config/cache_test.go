package config

import (
	"strings"
	"testing"
	"time"

	"github.com/scgate/scgate/proxy/cache"
)

func TestCacheRoutesAreReadInTheFilesWords(t *testing.T) {
	c, err := Parse("cfg.toml", []byte(minimal+`[cache]
stale_if_error = "30s"
[cache.routes]
"GET /api/v2/**" = "1s"
"GET /api/v2/history/" = "2s"
"GET /api/v2/channels/" = { ttl = "10s", shared = true }
`))
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.CacheOptions()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range o.Rules {
		got = append(got, r.Route.String()+" "+r.TTL.String()+map[bool]string{true: " shared"}[r.Shared])
	}
	want := "GET /api/v2/channels/ 10s shared|GET /api/v2/history/ 2s|GET /api/v2/** 1s"
	if strings.Join(got, "|") != want {
		t.Fatalf("rules %q, want %q (most specific first)", strings.Join(got, "|"), want)
	}
	if o.MaxBytes != cache.DefaultMaxBytes || o.MaxEntryBytes != cache.DefaultMaxEntryBytes || o.StaleIfError != 30*time.Second {
		t.Fatalf("options %+v", o)
	}
	if c.Cache.Store != "memory" {
		t.Fatalf("store %q", c.Cache.Store)
	}
}

func TestCacheProblemsNameLineAndFix(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"a POST route", `[cache.routes]
"POST /api/v2/playlists/" = "1s"`, `cfg.toml:8: cache.routes."POST /api/v2/playlists/": only GET answers are cached`},
		{"a bad TTL", `[cache.routes]
"GET /api/v2/history/" = "soon"`, `cfg.toml:8: cache.routes."GET /api/v2/history/": "soon" is not a positive duration`},
		{"a zero TTL", `[cache.routes]
"GET /api/v2/history/" = "0s"`, `is not a positive duration`},
		{"a typo in a route table", `[cache.routes]
"GET /api/v2/history/" = { ttl = "1s", shard = true }`, `unknown setting "shard"`},
		{"shared not a bool", `[cache.routes]
"GET /api/v2/history/" = { ttl = "1s", shared = "yes" }`, `shared must be true or false`},
		{"a bad pattern", `[cache.routes]
"GET api/v2" = "1s"`, `cache.routes."GET api/v2"`},
		{"redis without the limiter's", `[cache]
store = "redis"`, `cache.store: store "redis" shares the rate limiter's Redis connection`},
		{"an unknown store", `[cache]
store = "disk"`, `cache.store: "disk": use memory or redis`},
		{"an entry larger than the store", `[cache]
max_bytes = 1000
max_entry_bytes = 2000`, `cache.max_entry_bytes: must not be larger than cache.max_bytes`},
		{"a typo in [cache]", `[cache]
stale_if_eror = "1s"`, `did you mean "cache.stale_if_error"?`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("cfg.toml", []byte(minimal+tc.file+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
