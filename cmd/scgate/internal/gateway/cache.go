package gateway

import (
	"github.com/scgate/scgate/proxy/cache"
)

// buildCache makes the response cache of [cache], when it has routes, after
// buildLimits: store = "redis" uses the limiter's Redis connection. A dry
// run gets a memory store whatever the setting: it forwards nothing.
func (g *Gateway) buildCache() error {
	cfg := g.cfg
	if !cfg.Cache.Enabled() {
		return nil
	}
	o, err := cfg.CacheOptions()
	if err != nil {
		return err
	}
	o.Metrics, o.Logger, o.Now = g.metrics, g.log.Named("cache"), g.opts.Now
	if cfg.Cache.Store == "redis" && g.redis != nil {
		timeout := cfg.Limits.Redis.Timeout.Duration
		if timeout <= 0 {
			timeout = cache.DefaultRedisTimeout
		}
		if o.Store, err = cache.NewRedis(cache.RedisOptions{
			Client: g.redis.Client(), Prefix: cfg.CacheKeyPrefix(), Timeout: timeout, Up: g.redis.Up,
		}); err != nil {
			return cfg.Wrap(err, "cache", "store")
		}
	}
	c, err := cache.New(o)
	if err != nil {
		return cfg.Wrap(err, "cache")
	}
	g.cache = c
	return nil
}

// closeCache waits for the cache's fetches and stops its memory store.
func (g *Gateway) closeCache() {
	if g.cache != nil {
		_ = g.cache.Close()
		g.cache = nil
	}
}
