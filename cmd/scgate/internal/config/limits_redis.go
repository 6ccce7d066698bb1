package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/scgate/scgate/proxy/ratelimit"
)

// Redis is [limits.redis], for backend = "redis".
type Redis struct {
	Address       string   `toml:"address"`
	Username      string   `toml:"username"`
	PasswordFile  string   `toml:"password_file"`
	DB            int      `toml:"db"`
	Timeout       Duration `toml:"timeout"`
	KeyPrefix     string   `toml:"key_prefix"`
	FallbackShare float64  `toml:"fallback_share"`
	ProbeInterval Duration `toml:"probe_interval"`
}

func (r Redis) validate(p *problems, backend string) {
	switch backend {
	case "local":
		if r != (Redis{}) {
			p.add(`[limits.redis] is set but backend is "local": set backend = "redis" to use it, or remove it`, "limits", "redis")
		}
		return
	case "redis":
	default:
		p.add(fmt.Sprintf("%q: use local or redis", backend), "limits", "backend")
		return
	}
	if r.Address == "" {
		p.add(`backend "redis" needs [limits.redis] address = "host:port"`, "limits", "backend")
	} else if _, port, err := net.SplitHostPort(r.Address); err != nil || port == "" {
		p.add(fmt.Sprintf("%q: write it as host:port", r.Address), "limits", "redis", "address")
	}
	if !(r.FallbackShare > 0 && r.FallbackShare <= 1) {
		p.add("set fallback_share in (0, 1]: this replica's share of each limit while Redis is unreachable, e.g. 0.5 for two replicas",
			"limits", "redis", "fallback_share")
	}
	if r.DB < 0 {
		p.add("must be >= 0", "limits", "redis", "db")
	}
}

// RedisOptions builds the Redis backend's options, reading the password
// file. The password never leaves this struct: not in errors, logs or
// output. (Logger and OnStateChange are the gateway's to set.)
func (c *Config) RedisOptions() (ratelimit.RedisOptions, error) {
	r := c.Limits.Redis
	o := ratelimit.RedisOptions{
		Addr: r.Address, Username: r.Username, DB: r.DB, KeyPrefix: c.KeyPrefix(),
		FallbackShare: r.FallbackShare, Timeout: r.Timeout.Duration, ProbeInterval: r.ProbeInterval.Duration,
	}
	if r.PasswordFile != "" {
		b, err := os.ReadFile(r.PasswordFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = fmt.Errorf("cannot read %s: %w", r.PasswordFile, pe.Err)
			}
			return o, c.Wrap(err, "limits", "redis", "password_file")
		}
		o.Password = strings.TrimSuffix(string(b), "\n")
	}
	return o, nil
}
