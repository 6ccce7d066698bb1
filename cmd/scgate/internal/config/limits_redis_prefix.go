package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// defaultKeyPrefix is limits.redis.key_prefix when none is written: it
// carries a hash of the upstream's origin, so that fleets in front of
// different broadcasters never share buckets or upstream pauses on one
// Redis by accident. Fleets in front of the same broadcaster still share
// them unless each sets its own key_prefix; `scgate check` says so.
func defaultKeyPrefix(upstream string) string {
	origin := upstream
	if u, err := url.Parse(upstream); err == nil {
		origin = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	sum := sha256.Sum256([]byte(origin))
	return "scgate:rl:" + hex.EncodeToString(sum[:4]) + ":"
}

// KeyPrefix is the Redis key prefix in force.
func (c *Config) KeyPrefix() string {
	if p := c.Limits.Redis.KeyPrefix; p != "" {
		return p
	}
	return defaultKeyPrefix(c.PanelList()[0].Upstream.URL)
}

// KeyPrefixWarning is scgate check's warning for a Redis backend without
// its own key_prefix, or "" when there is nothing to say.
func (cfg *Config) KeyPrefixWarning() string {
	if cfg.Limits.Backend != "redis" || cfg.Limits.Redis.KeyPrefix != "" {
		return ""
	}
	return fmt.Sprintf("%s:%d: limits.redis.key_prefix is not set: the prefix %q is derived from the upstream's origin, so every fleet in front of the same broadcaster on this Redis shares caller and key buckets and upstream pauses; give each fleet its own key_prefix",
		cfg.path, cfg.lines.Line("limits", "redis"), cfg.KeyPrefix())
}
