package config

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/scgate/scgate/proxy/cache"
	"github.com/scgate/scgate/proxy/policy"
)

// Cache is [cache]: the response cache for the reads the operator marks
// cacheable. Without routes nothing is cached. Changes need a restart.
type Cache struct {
	// Routes maps "GET PATTERN" to a TTL ("2s") or to a table
	// { ttl = "2s", shared = true }.
	Routes               map[string]any `toml:"routes"`
	MaxBytes             int64          `toml:"max_bytes"`
	MaxEntryBytes        int64          `toml:"max_entry_bytes"`
	StaleWhileRevalidate Duration       `toml:"stale_while_revalidate"`
	StaleIfError         Duration       `toml:"stale_if_error"`
	// Store is "memory" (each replica its own) or "redis" (one for the
	// fleet, on the limiter's [limits.redis] connection).
	Store string `toml:"store"`
	// KeyPrefix prefixes the cache's Redis keys (default: the limiter's
	// key prefix and "cache:").
	KeyPrefix string `toml:"key_prefix"`
}

func (ca *Cache) defaults() {
	ca.Store = orString(ca.Store, "memory")
	if ca.MaxBytes == 0 {
		ca.MaxBytes = cache.DefaultMaxBytes
	}
	if ca.MaxEntryBytes == 0 {
		ca.MaxEntryBytes = cache.DefaultMaxEntryBytes
	}
}

// Enabled reports whether any route is cached.
func (ca Cache) Enabled() bool { return len(ca.Routes) > 0 }

// validate checks [cache] completely, each problem at its line.
func (ca Cache) validate(p *problems, c *Config) {
	if _, err := ca.rules(c); err != nil {
		p.errs = append(p.errs, err...)
	}
	if ca.MaxBytes < 0 {
		p.add("must be positive, like 67108864 (64 MiB)", "cache", "max_bytes")
	}
	switch {
	case ca.MaxEntryBytes < 0:
		p.add("must be positive, like 1048576 (1 MiB)", "cache", "max_entry_bytes")
	case ca.Store == "memory" && ca.MaxEntryBytes > ca.MaxBytes && ca.MaxBytes > 0:
		p.add(fmt.Sprintf("must not be larger than cache.max_bytes (%d): no answer that large could be kept", ca.MaxBytes), "cache", "max_entry_bytes")
	}
	switch ca.Store {
	case "memory":
		if ca.KeyPrefix != "" {
			p.add(`is only used with store = "redis"`, "cache", "key_prefix")
		}
	case "redis":
		if c.Limits.Backend != "redis" {
			p.add(`store "redis" shares the rate limiter's Redis connection: set [limits] backend = "redis" and [limits.redis]`, "cache", "store")
		}
	default:
		p.add(fmt.Sprintf("%q: use memory or redis", ca.Store), "cache", "store")
	}
}

// rules reads [cache.routes], the most specific pattern first (the first
// rule that matches a path applies): patterns without ** before those
// with it, then those with fewer * segments, then longer ones.
func (ca Cache) rules(c *Config) ([]cache.Rule, []error) {
	var errs []error
	at := func(route, msg string) {
		errs = append(errs, fmt.Errorf("%s:%d: cache.routes.%q: %s", c.path, c.Line("cache", "routes", route), route, msg))
	}
	routes := make([]string, 0, len(ca.Routes))
	for r := range ca.Routes {
		routes = append(routes, r)
	}
	sort.Slice(routes, func(i, j int) bool {
		a, b := routes[i], routes[j]
		if x, y := strings.Contains(a, "**"), strings.Contains(b, "**"); x != y {
			return y
		}
		if x, y := strings.Count(a, "*"), strings.Count(b, "*"); x != y {
			return x < y
		}
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
	var rules []cache.Rule
	for _, route := range routes {
		r, err := policy.ParseRule(route)
		if err != nil {
			at(route, err.Error())
			continue
		}
		if r.Method != "GET" {
			at(route, "only GET answers are cached: write \"GET "+r.Pattern+"\"")
			continue
		}
		ttl, shared, msg := routeValue(ca.Routes[route])
		if msg != "" {
			at(route, msg)
			continue
		}
		rules = append(rules, cache.Rule{Route: r, TTL: ttl, Shared: shared})
	}
	return rules, errs
}

// routeValue reads one [cache.routes] value: "2s" or { ttl = "2s", shared = true }.
func routeValue(v any) (ttl time.Duration, shared bool, msg string) {
	const how = `write a TTL like "2s", or a table like { ttl = "2s", shared = true }`
	var raw any
	switch v := v.(type) {
	case string:
		raw = v
	case map[string]any:
		for k, x := range v {
			switch k {
			case "ttl":
				raw = x
			case "shared":
				b, ok := x.(bool)
				if !ok {
					return 0, false, "shared must be true or false"
				}
				shared = b
			default:
				return 0, false, fmt.Sprintf("unknown setting %q: %s", k, how)
			}
		}
	default:
		return 0, false, how
	}
	s, ok := raw.(string)
	if !ok {
		return 0, false, "the TTL is missing or not a string: " + how
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, false, fmt.Sprintf("%q is not a positive duration: %s", s, how)
	}
	return d, shared, ""
}

// CacheOptions is [cache] as cache.New takes it, without a store: the
// gateway adds the Redis store for store = "redis".
func (c *Config) CacheOptions() (cache.Options, error) {
	ca := c.Cache
	rules, errs := ca.rules(c)
	if len(errs) > 0 {
		return cache.Options{}, errs[0]
	}
	return cache.Options{
		Rules: rules, MaxBytes: ca.MaxBytes, MaxEntryBytes: ca.MaxEntryBytes,
		StaleWhileRevalidate: ca.StaleWhileRevalidate.Duration, StaleIfError: ca.StaleIfError.Duration,
	}, nil
}

// CacheKeyPrefix is the prefix of the cache's Redis keys.
func (c *Config) CacheKeyPrefix() string {
	if c.Cache.KeyPrefix != "" {
		return c.Cache.KeyPrefix
	}
	return c.KeyPrefix() + "cache:"
}
