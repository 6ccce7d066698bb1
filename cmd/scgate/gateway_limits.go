package main

import (
	"context"
	"fmt"
	"io"
	"reflect"

	"go.uber.org/zap"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy/policy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

// buildLimits makes the limiter (with its backend) and the route policy.
func (g *gateway) buildLimits() error {
	cfg := g.cfg
	var backend ratelimit.Backend
	if cfg.Limits.Backend == "redis" {
		ratelimit.InstallRedisLogger(g.log.Named("ratelimit"), 0)
		o, err := cfg.redisOptions()
		if err != nil {
			return err
		}
		o.Logger = g.log.Named("ratelimit")
		o.OnStateChange = func(up bool) { g.metrics.RateLimitBackend.Set(boolGauge(up)) }
		rb, err := ratelimit.NewRedis(o)
		if err != nil {
			return fmt.Errorf("limits.redis: %w", err)
		}
		g.redis, backend = rb, rb
	} else {
		g.metrics.RateLimitBackend.Set(1)
	}
	lim, err := ratelimit.New(ratelimit.Options{Limits: cfg.rateLimits(), Backend: backend})
	if err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	g.limiter = lim
	pol, err := cfg.routePolicy()
	if err != nil {
		return err
	}
	g.policy = &policy.Holder{}
	g.policy.Store(pol)
	return nil
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// runRedisProbe is the watcher that brings the fleet back to shared limits
// after a Redis outage (a no-op with the local backend).
func (g *gateway) runRedisProbe(ctx context.Context) error {
	if g.redis == nil {
		return nil
	}
	return g.redis.Run(ctx)
}

// reloadLimits applies the live parts of a new, valid config: the limit
// table and the route policy. Callers whose limits did not change keep
// their buckets.
func (g *gateway) reloadLimits(cfg *Config) {
	if !reflect.DeepEqual(cfg.rateLimits(), g.liveLimits) {
		if err := g.limiter.SetLimits(cfg.rateLimits()); err != nil {
			g.log.Error("new limits refused; the running limits are unchanged", zap.Error(err))
		} else {
			g.liveLimits = cfg.rateLimits()
			g.log.Info("limits reloaded")
		}
	}
	if !reflect.DeepEqual(cfg.Policy, g.livePolicy) {
		pol, err := cfg.routePolicy()
		if err != nil {
			g.log.Error("new route policy refused; the running policy is unchanged", zap.Error(err))
			return
		}
		g.policy.Store(pol)
		g.livePolicy = cfg.Policy
		g.log.Info("route policy reloaded", zap.Int("rule_sets", len(pol.Sets())))
	}
}

// withoutLiveSettings blanks what reloadLimits applies live, so that
// comparing two configs finds only the changes that need a restart.
func withoutLiveSettings(c Config) Config {
	backend, redis, pause := c.Limits.Backend, c.Limits.Redis, c.Limits.MaxUpstreamPause
	c.Limits = LimitsConfig{Backend: backend, Redis: redis, MaxUpstreamPause: pause}
	c.Policy = PolicyConfig{}
	return c
}

// checkLimits is scgate check's part for [limits] and [policy]: the Redis
// password file must be readable, and names that match nothing in the vault
// are reported (probably a typo, or a caller not added yet).
func checkLimits(cfg *Config, v *keyvault.Vault, stderr io.Writer) error {
	if cfg.Limits.Backend == "redis" {
		if _, err := cfg.redisOptions(); err != nil {
			return err
		}
		warnDefaultKeyPrefix(cfg, stderr)
	}
	warn := func(what, name string, key ...string) {
		fmt.Fprintf(stderr, "warning: %s:%d: %s %q is not in the vault; the setting has no effect until it is\n",
			cfg.path, cfg.lines.Line(key...), what, name)
	}
	for _, caller := range sortedNames(cfg.Limits.Callers) {
		if _, ok := v.KeyOf(caller); !ok {
			warn("caller", caller, "limits", "callers", caller)
		}
	}
	for _, key := range sortedNames(cfg.Limits.Keys) {
		if v.Key(key) == nil {
			warn("key", key, "limits", "keys", key)
		}
	}
	for _, caller := range sortedNames(cfg.Policy.Callers) {
		if _, ok := v.KeyOf(caller); !ok {
			warn("caller", caller, "policy", "callers", caller)
		}
	}
	return nil
}
