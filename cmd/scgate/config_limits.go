package main

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/scgate/scgate/proxy/ratelimit"
)

// LimitsConfig is [limits]: the defaults for every caller and key, the
// per-caller and per-key overrides, and the backend. Everything but the
// backend and [limits.redis] is applied live on SIGHUP.
type LimitsConfig struct {
	Rate             float64                       `toml:"rate"`
	Burst            int                           `toml:"burst"`
	Concurrency      int                           `toml:"concurrency"`
	Mode             string                        `toml:"mode"`
	MaxWait          Duration                      `toml:"max_wait"`
	KeyRate          float64                       `toml:"key_rate"`
	KeyBurst         int                           `toml:"key_burst"`
	MaxUpstreamPause Duration                      `toml:"max_upstream_pause"`
	Backend          string                        `toml:"backend"`
	Callers          map[string]CallerLimitsConfig `toml:"callers"`
	Keys             map[string]KeyLimitsConfig    `toml:"keys"`
	Redis            RedisConfig                   `toml:"redis"`
}

// CallerLimitsConfig is [limits.callers."ID"]: what is set overrides [limits].
type CallerLimitsConfig struct {
	Rate        *float64  `toml:"rate"`
	Burst       *int      `toml:"burst"`
	Concurrency *int      `toml:"concurrency"`
	Mode        *string   `toml:"mode"`
	MaxWait     *Duration `toml:"max_wait"`
}

// KeyLimitsConfig is [limits.keys."NAME"]: the bucket shared by the callers
// of one vault key.
type KeyLimitsConfig struct {
	Rate  *float64 `toml:"rate"`
	Burst *int     `toml:"burst"`
}

// RedisConfig is [limits.redis], for backend = "redis".
type RedisConfig struct {
	Address       string   `toml:"address"`
	Username      string   `toml:"username"`
	PasswordFile  string   `toml:"password_file"`
	DB            int      `toml:"db"`
	Timeout       Duration `toml:"timeout"`
	KeyPrefix     string   `toml:"key_prefix"`
	FallbackShare float64  `toml:"fallback_share"`
	ProbeInterval Duration `toml:"probe_interval"`
}

const (
	defaultMaxWait          = 5 * time.Second
	defaultMaxUpstreamPause = 5 * time.Minute
)

// validateLimits checks [limits] completely, each problem at its line.
func (c *Config) validateLimits() []error {
	l := c.Limits
	var errs []error
	add := func(msg string, key ...string) { errs = append(errs, c.problem(msg, key...)) }
	checkBucket := func(rate float64, burst int, rateKey, burstKey []string) {
		if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
			add("must be a number >= 0 (requests per second; 0 means no limit)", rateKey...)
		}
		if burst < 0 {
			add("must be >= 0", burstKey...)
		}
	}
	checkBucket(l.Rate, l.Burst, []string{"limits", "rate"}, []string{"limits", "burst"})
	checkBucket(l.KeyRate, l.KeyBurst, []string{"limits", "key_rate"}, []string{"limits", "key_burst"})
	if l.Concurrency < 0 {
		add("must be >= 0 (0 means no cap)", "limits", "concurrency")
	}
	mode := orString(l.Mode, "reject")
	if _, err := ratelimit.ParseMode(mode); err != nil {
		add(fmt.Sprintf("%q: use reject or wait", mode), "limits", "mode")
	}
	if mode == "wait" && l.MaxWait.set && l.MaxWait.Duration == 0 {
		add(`mode "wait" needs a max_wait > 0`, "limits", "max_wait")
	}
	for _, caller := range sortedNames(l.Callers) {
		o := l.Callers[caller]
		at := func(field string) []string { return []string{"limits", "callers", caller, field} }
		rate, burst := 0.0, 0
		if o.Rate != nil {
			rate = *o.Rate
		}
		if o.Burst != nil {
			burst = *o.Burst
		}
		checkBucket(rate, burst, at("rate"), at("burst"))
		if o.Concurrency != nil && *o.Concurrency < 0 {
			add("must be >= 0 (0 means no cap)", at("concurrency")...)
		}
		m := mode
		if o.Mode != nil {
			m = *o.Mode
			if _, err := ratelimit.ParseMode(m); err != nil {
				add(fmt.Sprintf("%q: use reject or wait", m), at("mode")...)
			}
		}
		if m == "wait" && o.MaxWait != nil && o.MaxWait.Duration == 0 {
			add(`mode "wait" needs a max_wait > 0`, at("max_wait")...)
		}
	}
	for _, key := range sortedNames(l.Keys) {
		o := l.Keys[key]
		rate, burst := 0.0, 0
		if o.Rate != nil {
			rate = *o.Rate
		}
		if o.Burst != nil {
			burst = *o.Burst
		}
		checkBucket(rate, burst, []string{"limits", "keys", key, "rate"}, []string{"limits", "keys", key, "burst"})
	}
	return append(errs, c.validateRedis()...)
}

func (c *Config) validateRedis() []error {
	l, r := c.Limits, c.Limits.Redis
	switch orString(l.Backend, "local") {
	case "local":
		if r != (RedisConfig{}) {
			return []error{c.problem(`[limits.redis] is set but backend is "local": set backend = "redis" to use it, or remove it`, "limits", "redis")}
		}
		return nil
	case "redis":
	default:
		return []error{c.problem(fmt.Sprintf("%q: use local or redis", l.Backend), "limits", "backend")}
	}
	var errs []error
	if r.Address == "" {
		errs = append(errs, c.problem(`backend "redis" needs [limits.redis] address = "host:port"`, "limits", "backend"))
	} else if _, port, err := net.SplitHostPort(r.Address); err != nil || port == "" {
		errs = append(errs, c.problem(fmt.Sprintf("%q: write it as host:port", r.Address), "limits", "redis", "address"))
	}
	if !(r.FallbackShare > 0 && r.FallbackShare <= 1) {
		errs = append(errs, c.problem("set fallback_share in (0, 1]: this replica's share of each limit while Redis is unreachable, e.g. 0.5 for two replicas",
			"limits", "redis", "fallback_share"))
	}
	if r.DB < 0 {
		errs = append(errs, c.problem("must be >= 0", "limits", "redis", "db"))
	}
	return errs
}

// rateLimits turns [limits] into the limiter's table: overrides inherit
// what they do not set from [limits], except that an override giving a rate
// without a burst gets the burst of that rate.
func (c *Config) rateLimits() ratelimit.Limits {
	l := c.Limits
	mode, _ := ratelimit.ParseMode(orString(l.Mode, "reject"))
	def := ratelimit.CallerLimits{
		Bucket:      ratelimit.Bucket{Rate: l.Rate, Burst: l.Burst},
		Concurrency: l.Concurrency,
		Mode:        mode,
		MaxWait:     defaultMaxWait,
	}
	if l.MaxWait.set {
		def.MaxWait = l.MaxWait.Duration
	}
	out := ratelimit.Limits{
		Caller:  def,
		Callers: make(map[string]ratelimit.CallerLimits, len(l.Callers)),
		Key:     ratelimit.Bucket{Rate: l.KeyRate, Burst: l.KeyBurst},
		Keys:    make(map[string]ratelimit.Bucket, len(l.Keys)),
	}
	for caller, o := range l.Callers {
		cl := def
		if o.Rate != nil {
			cl.Rate, cl.Burst = *o.Rate, 0
		}
		if o.Burst != nil {
			cl.Burst = *o.Burst
		}
		if o.Concurrency != nil {
			cl.Concurrency = *o.Concurrency
		}
		if o.Mode != nil {
			cl.Mode, _ = ratelimit.ParseMode(*o.Mode)
		}
		if o.MaxWait != nil {
			cl.MaxWait = o.MaxWait.Duration
		}
		out.Callers[caller] = cl
	}
	for key, o := range l.Keys {
		b := out.Key
		if o.Rate != nil {
			b.Rate, b.Burst = *o.Rate, 0
		}
		if o.Burst != nil {
			b.Burst = *o.Burst
		}
		out.Keys[key] = b
	}
	return out
}

// maxUpstreamPause is limits.max_upstream_pause with its default.
func (c *Config) maxUpstreamPause() time.Duration {
	if c.Limits.MaxUpstreamPause.set {
		return c.Limits.MaxUpstreamPause.Duration
	}
	return defaultMaxUpstreamPause
}

// redisOptions builds the Redis backend's options, reading the password
// file (relative to the config's folder). The password never leaves this
// struct: not in errors, logs or output.
func (c *Config) redisOptions() (ratelimit.RedisOptions, error) {
	r := c.Limits.Redis
	o := ratelimit.RedisOptions{
		Addr: r.Address, Username: r.Username, DB: r.DB, KeyPrefix: c.keyPrefix(),
		FallbackShare: r.FallbackShare, Timeout: r.Timeout.Duration, ProbeInterval: r.ProbeInterval.Duration,
	}
	if r.PasswordFile != "" {
		path := r.PasswordFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(c.path), path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return o, fmt.Errorf("%s:%d: limits.redis.password_file: %w", c.path, c.lines.Line("limits", "redis", "password_file"), err)
		}
		o.Password = strings.TrimSuffix(string(b), "\n")
	}
	return o, nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// limitsFor answers "which limits apply to this caller" from the config
// alone, as the running gateway would apply them (default bursts filled in):
// for scgate explain. key is the caller's vault key.
func (c *Config) limitsFor(caller, key string) (ratelimit.Applied, error) {
	l, err := ratelimit.New(ratelimit.Options{Limits: c.rateLimits()})
	if err != nil {
		return ratelimit.Applied{}, err
	}
	a := l.For(caller, key)
	a.Backend = orString(c.Limits.Backend, "local")
	return a, nil
}
