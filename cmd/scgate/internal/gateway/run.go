package gateway

import (
	"context"
	"errors"
	"os"
	"reflect"
	"sync"

	"go.uber.org/zap"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/proxy"
)

// errDryRun is Run on a dry-run Gateway.
var errDryRun = errors.New("gateway: a dry-run gateway cannot run")

// Run serves until ctx is done, reloading on every value from hup (nil: no
// reloads). It closes everything Build opened before it returns.
func (g *Gateway) Run(ctx context.Context, hup <-chan os.Signal) error {
	if g.opts.DryRun {
		return errDryRun
	}
	wctx, stopWatchers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	watch := func(name string, run func(context.Context) error) {
		wg.Go(func() {
			if err := run(wctx); err != nil && !errors.Is(err, context.Canceled) {
				g.log.Error("watcher stopped", zap.String("watcher", name), zap.Error(err))
			}
		})
	}
	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	if g.acme != nil {
		wg.Go(func() { g.manageCertificates(wctx, fail) })
	}
	watch("vault", g.watcher.Run)
	watch("expiry", func(ctx context.Context) error { return g.expiry.Run(ctx, g.watcher.Current) })
	if g.redis != nil {
		watch("ratelimit-redis", g.redis.Run)
	}
	if g.certs != nil {
		watch("certificate", g.certs.Run)
	}
	if cas := g.clientCAs.Load(); cas != nil {
		watch("client-ca", cas.Run)
	}
	if g.adminCerts != nil {
		watch("admin-certificate", g.adminCerts.Run)
	}
	if g.adminCAs != nil {
		watch("admin-client-ca", g.adminCAs.Run)
	}
	wg.Go(func() {
		for {
			select {
			case <-wctx.Done():
				return
			case <-hup:
				g.reload()
			}
		}
	})
	g.ready.Store(true)
	g.log.Info("scgate is ready",
		zap.String("listen", g.server.Addr().String()), zap.String("admin", g.admin.Addr().String()),
		zap.String("tls", g.cfg.Server.TLS), zap.Strings("panels", g.cfg.PanelNames()),
		zap.Int("callers", len(g.watcher.Current().Callers())), zap.String("version", g.opts.Version))
	gateways := []*proxy.Server{g.server}
	if g.challenge != nil {
		gateways = append(gateways, g.challenge)
	}
	err := proxy.Run(runCtx, proxy.LifecycleOptions{
		Gateways: gateways, Admin: g.admin,
		OnDrain:         func() { g.draining.Store(true) },
		ShutdownDelay:   g.cfg.Server.ShutdownDelay.Duration,
		SkipDelay:       g.opts.SkipDelay,
		ShutdownTimeout: g.cfg.Server.ShutdownTimeout.Duration,
		Logger:          g.log,
	})
	stopWatchers()
	wg.Wait()
	if g.acme != nil {
		g.acme.Stop()
	}
	g.closeCache()
	if g.redis != nil {
		_ = g.redis.Close()
	}
	g.shutdownTracing()
	if cause := context.Cause(runCtx); err == nil && ctx.Err() == nil && cause != nil {
		err = cause // a failure that stopped the gateway, not a signal
	}
	g.log.Info("scgate stopped")
	return err
}

// reload is SIGHUP: the vault and the certificates are read again; the
// config file is read and built again with the same Build (as a dry run), and
// what can change without a restart is swapped in. Which settings those are
// is declared in package config (reload:"live"); the others that changed
// are named in one log line.
func (g *Gateway) reload() {
	g.log.Info("SIGHUP: reloading")
	// The watcher logs every reload problem itself (file, line, reason).
	_ = g.watcher.Reload()
	if g.certs != nil {
		if err := g.certs.Reload(); err != nil {
			g.log.Error("certificate reload failed; the previous certificate keeps serving", zap.Error(err))
		}
	}
	if g.adminCerts != nil {
		if err := g.adminCerts.Reload(); err != nil {
			g.log.Error("admin certificate reload failed; the previous certificate keeps serving", zap.Error(err))
		}
	}
	if cas := g.clientCAs.Load(); cas != nil {
		if err := cas.Reload(); err != nil {
			g.log.Error("client CA reload failed; the previous bundle keeps serving", zap.Error(err))
		}
	}
	cfg, err := config.Load(g.cfg.Path())
	if err != nil {
		g.log.Error("config file is now invalid; the running config is unchanged", zap.Error(err))
		return
	}
	next, err := Build(cfg, Options{DryRun: true, Now: g.opts.Now})
	if err != nil {
		g.log.Error("config file cannot be applied; the running config is unchanged", zap.Error(err))
		return
	}
	next.Close()
	g.swap(next)
	if restart := config.RestartNeeded(g.cfg, cfg); len(restart) > 0 {
		g.log.Warn("config file changed: restart scgate to apply these settings; the vault, certificates, limits and route policy were reloaded",
			zap.Strings("settings", restart))
	}
}

// swap takes the live parts of next: the limit table and the route policy.
// Callers whose limits did not change keep their buckets.
func (g *Gateway) swap(next *Gateway) {
	newLimits := next.cfg.Limits.RateLimits()
	if !reflect.DeepEqual(newLimits, g.live.limits) {
		if err := g.limiter.SetLimits(newLimits); err != nil {
			g.log.Error("new limits refused; the running limits are unchanged", zap.Error(err))
		} else {
			g.live.limits = newLimits
			g.log.Info("limits reloaded")
		}
	}
	if !reflect.DeepEqual(next.cfg.Policy, g.live.policy) {
		pol := next.policy.Current()
		g.policy.Store(pol)
		g.live.policy = next.cfg.Policy
		g.log.Info("route policy reloaded", zap.Int("rule_sets", len(pol.Sets())))
	}
}
