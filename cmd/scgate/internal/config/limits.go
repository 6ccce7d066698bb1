package config

import (
	"fmt"
	"math"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

// Limits is [limits]: the defaults for every caller and key, the per-caller
// and per-key overrides, and the backend. The fields tagged reload:"live"
// are applied by SIGHUP; the backend, [limits.redis] and max_upstream_pause
// need a restart.
type Limits struct {
	Rate             float64                 `toml:"rate" reload:"live"`
	Burst            int                     `toml:"burst" reload:"live"`
	Concurrency      int                     `toml:"concurrency" reload:"live"`
	Mode             string                  `toml:"mode" reload:"live"`
	MaxWait          Duration                `toml:"max_wait" reload:"live"`
	KeyRate          float64                 `toml:"key_rate" reload:"live"`
	KeyBurst         int                     `toml:"key_burst" reload:"live"`
	MaxUpstreamPause Duration                `toml:"max_upstream_pause"`
	Backend          string                  `toml:"backend"`
	Callers          map[string]CallerLimits `toml:"callers" reload:"live"`
	Keys             map[string]KeyLimits    `toml:"keys" reload:"live"`
	Redis            Redis                   `toml:"redis"` // limits_redis.go
}

// CallerLimits is [limits.callers."ID"]: what is set overrides [limits].
type CallerLimits struct {
	Rate        *float64  `toml:"rate"`
	Burst       *int      `toml:"burst"`
	Concurrency *int      `toml:"concurrency"`
	Mode        *string   `toml:"mode"`
	MaxWait     *Duration `toml:"max_wait"`
}

// KeyLimits is [limits.keys."NAME"]: the bucket shared by the callers of
// one vault key.
type KeyLimits struct {
	Rate  *float64 `toml:"rate"`
	Burst *int     `toml:"burst"`
}

func (l *Limits) defaults() {
	l.Mode = orString(l.Mode, "reject")
	l.Backend = orString(l.Backend, "local")
	l.MaxUpstreamPause.orDefault(proxy.DefaultMaxUpstreamPause)
	l.MaxWait.orDefault(ratelimit.DefaultMaxWait)
}

// validate checks [limits] completely, each problem at its line.
func (l Limits) validate(p *problems) {
	checkBucket := func(rate float64, burst int, rateKey, burstKey []string) {
		if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
			p.add("must be a number >= 0 (requests per second; 0 means no limit)", rateKey...)
		}
		if burst < 0 {
			p.add("must be >= 0", burstKey...)
		}
	}
	checkBucket(l.Rate, l.Burst, []string{"limits", "rate"}, []string{"limits", "burst"})
	checkBucket(l.KeyRate, l.KeyBurst, []string{"limits", "key_rate"}, []string{"limits", "key_burst"})
	if l.Concurrency < 0 {
		p.add("must be >= 0 (0 means no cap)", "limits", "concurrency")
	}
	if _, err := ratelimit.ParseMode(l.Mode); err != nil {
		p.add(fmt.Sprintf("%q: use reject or wait", l.Mode), "limits", "mode")
	}
	if l.Mode == "wait" && l.MaxWait.set && l.MaxWait.Duration == 0 {
		p.add(`mode "wait" needs a max_wait > 0`, "limits", "max_wait")
	}
	for _, caller := range SortedNames(l.Callers) {
		o := l.Callers[caller]
		at := func(field string) []string { return []string{"limits", "callers", caller, field} }
		checkBucket(deref(o.Rate), deref(o.Burst), at("rate"), at("burst"))
		if o.Concurrency != nil && *o.Concurrency < 0 {
			p.add("must be >= 0 (0 means no cap)", at("concurrency")...)
		}
		m := l.Mode
		if o.Mode != nil {
			m = *o.Mode
			if _, err := ratelimit.ParseMode(m); err != nil {
				p.add(fmt.Sprintf("%q: use reject or wait", m), at("mode")...)
			}
		}
		if m == "wait" && o.MaxWait != nil && o.MaxWait.Duration == 0 {
			p.add(`mode "wait" needs a max_wait > 0`, at("max_wait")...)
		}
	}
	for _, key := range SortedNames(l.Keys) {
		o := l.Keys[key]
		checkBucket(deref(o.Rate), deref(o.Burst), []string{"limits", "keys", key, "rate"}, []string{"limits", "keys", key, "burst"})
	}
	l.Redis.validate(p, l.Backend)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// RateLimits turns [limits] into the limiter's table: overrides inherit
// what they do not set from [limits], except that an override giving a rate
// without a burst gets the burst of that rate.
func (l Limits) RateLimits() ratelimit.Limits {
	mode, _ := ratelimit.ParseMode(l.Mode)
	def := ratelimit.CallerLimits{
		Bucket:      ratelimit.Bucket{Rate: l.Rate, Burst: l.Burst},
		Concurrency: l.Concurrency,
		Mode:        mode,
		MaxWait:     l.MaxWait.Duration,
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
