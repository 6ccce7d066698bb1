package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/internal/adminauth"
	"github.com/scgate/scgate/internal/statuspage"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/metrics"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/cache"
	"github.com/scgate/scgate/proxy/policy"
	"github.com/scgate/scgate/proxy/ratelimit"
	"github.com/scgate/scgate/proxy/tlsconf"
	"github.com/scgate/scgate/tracing"
)

// Options configures Build.
type Options struct {
	// Logger receives the gateway's log; nil discards it.
	Logger *zap.Logger
	// DryRun builds everything but binds no listener and starts no watcher
	// or goroutine: for `scgate check`, `scgate explain` and the validation
	// of a reloaded config. A dry-run Gateway cannot Run.
	DryRun bool
	// Version and Revision are written in the "ready" log line and in
	// scgate_build_info.
	Version, Revision string
	// Now is the clock for key validity; nil means time.Now.
	Now func() time.Time
	// SkipDelay, when it is closed or receives, ends the shutdown delay
	// early: `scgate run` sends on it at a second SIGTERM or Ctrl-C.
	SkipDelay <-chan struct{}
}

// Gateway is one scgate built from a Config.
type Gateway struct {
	cfg  *config.Config
	opts Options
	log  *zap.Logger

	metrics    *metrics.Metrics
	watcher    *keyvault.Watcher // nil in a dry run
	vault      proxy.VaultSource
	warnings   []string           // about the config: Warnings
	vaultWarns []keyvault.Warning // the vault's, in a dry run
	identities []age.Identity
	rejections *keyvault.Rejections
	expiry     *keyvault.ExpiryWarner
	limiter    *ratelimit.Limiter
	redis      *ratelimit.Redis // backend = "redis", not in a dry run
	policy     *policy.Holder
	handler    *proxy.Handler
	tracing    *tracing.Provider // tracing.enabled, not in a dry run
	cache      *cache.Cache      // [cache] with routes; nil without

	tlsConfig *tls.Config
	certs     *tlsconf.Files                // tls = "files"
	clientCAs atomic.Pointer[tlsconf.Trust] // mTLS: the client CA file and the trust bundles
	acme      *tlsconf.ACME                 // tls = "acme", not in a dry run
	certReady atomic.Bool                   // acme: every domain has a certificate

	// The admin listener's guard and TLS (admin.cert_file), and the status
	// page's state: start time, vault loads, certificate expiries.
	adminGuard *adminauth.Guard
	adminTLS   *tls.Config
	adminCerts *tlsconf.Files
	adminCAs   *tlsconf.ClientCAs
	started    time.Time
	reloads    *statuspage.ReloadLog
	prevVault  *keyvault.Vault // the vault before a reload; only the watcher's OnReload touches it
	certMu     sync.Mutex
	certExp    map[string]time.Time // certificate name → expiry

	server, admin, challenge *proxy.Server // nil in a dry run; challenge: ACME HTTP-01 only
	ready, draining          atomic.Bool

	// live is what SIGHUP last applied of the live settings, to tell what
	// changed. Only the reload goroutine touches it.
	live struct {
		limits ratelimit.Limits
		policy config.Policy
	}
}

// staticVault serves one vault: a dry run's, which follows no file.
type staticVault struct{ v *keyvault.Vault }

func (s staticVault) Current() *keyvault.Vault { return s.v }

// Build makes the gateway cfg describes. Every part that reads a file is
// built even when another failed, so that one run reports every problem; any
// failure leaves nothing running.
func Build(cfg *config.Config, opts Options) (_ *Gateway, err error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// g is not the named result: "return nil, err" must not hide it from the
	// cleanup deferred below.
	g := &Gateway{cfg: cfg, opts: opts, log: opts.Logger, metrics: metrics.New(),
		started: opts.Now(), reloads: &statuspage.ReloadLog{}}
	g.metrics.SetBuildInfo(opts.Version, opts.Revision, runtime.Version())
	g.live.limits, g.live.policy = cfg.Limits.RateLimits(), cfg.Policy
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	// Key material that others can write refuses the start (keyperms.go);
	// what others can read is warned about, as are settings that are
	// allowed but weaken the gateway.
	warnings, err := cfg.CheckKeyFiles()
	g.warnings = append(g.warnings, warnings...)
	g.warnings = append(g.warnings, cfg.IdentityWarnings()...)
	if w := cfg.HostsWarning(); w != "" {
		g.warnings = append(g.warnings, w)
	}
	if cfg.Server.AllowBrowsers {
		g.warnings = append(g.warnings, "server.allow_browsers is set: web pages on other sites can send requests through a browser that reaches this gateway")
	}
	if !opts.DryRun {
		for _, w := range g.warnings {
			g.log.Warn(w)
		}
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(g.buildLimits())
	add(g.buildCache())
	add(g.buildVault())
	panels, terr := g.buildPanels()
	add(terr)
	resolver, ierr := g.buildIdentity(context.Background())
	add(ierr)
	add(g.buildTLS())
	add(g.buildAdmin())
	trace, trerr := g.buildTracing()
	add(trerr)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	proxies, err := cfg.Identity.TrustedProxySet()
	if err != nil {
		return nil, err
	}
	var proxyHeaders []string
	if cfg.Identity.Header.Name != "" {
		proxyHeaders = []string{cfg.Identity.Header.Name}
	}
	g.handler, err = proxy.New(proxy.Options{
		Panels: panels, PanelRouting: cfg.PanelRouting(), Identity: resolver, Vault: g.vault,
		Limiter: g.limiter, Policy: g.policy, MaxUpstreamPause: cfg.Limits.MaxUpstreamPause.Duration,
		Metrics: g.metrics, Logger: g.log.Named("access"), Now: opts.Now,
		MaxBodyBytes: cfg.Server.MaxBodyBytes, PublicURL: cfg.Server.PublicOrigin(), BufferBudget: cfg.Server.MaxBufferedBytes,
		Rejections: g.rejections, ReplayBodyBytes: cfg.Rotation.ReplayBody(),
		RejectionCheck: cfg.Rotation.RejectionCheck(),
		TrustedProxies: proxies, ProxyHeaders: proxyHeaders, StripBearer: cfg.Identity.JWT.Set(),
		Hosts: cfg.Server.Hosts, LoopbackHosts: cfg.LoopbackListener(), AllowBrowsers: cfg.Server.AllowBrowsers,
		Trace: trace,
		Cache: g.cache,
	})
	if err != nil {
		return nil, err
	}
	if opts.DryRun {
		return g, nil
	}
	if err := g.listen(); err != nil {
		return nil, err
	}
	return g, nil
}

// buildLimits makes the limiter (with its backend) and the route policy.
func (g *Gateway) buildLimits() error {
	cfg := g.cfg
	var backend ratelimit.Backend
	if cfg.Limits.Backend == "redis" {
		if !g.opts.DryRun {
			ratelimit.InstallRedisLogger(g.log.Named("ratelimit"), 0)
		}
		o, err := cfg.RedisOptions()
		if err != nil {
			return err
		}
		if !g.opts.DryRun {
			o.Logger = g.log.Named("ratelimit")
			o.OnStateChange = g.metrics.RateLimitBackendUp
			rb, err := ratelimit.NewRedis(o)
			if err != nil {
				return cfg.Wrap(err, "limits", "redis")
			}
			g.redis, backend = rb, rb
		}
	} else {
		g.metrics.RateLimitBackendUp(true)
	}
	lim, err := ratelimit.New(ratelimit.Options{Limits: cfg.Limits.RateLimits(), Backend: backend})
	if err != nil {
		return cfg.Wrap(err, "limits")
	}
	g.limiter = lim
	pol, err := policy.New(cfg.Policy.Options())
	if err != nil {
		return cfg.Wrap(err, "policy")
	}
	g.policy = &policy.Holder{}
	g.policy.Store(pol)
	return nil
}

// buildVault loads the vault (with the age identity of an encrypted one)
// and what key rotation keeps: rejections and the expiry warner.
func (g *Gateway) buildVault() error {
	cfg := g.cfg
	var err error
	if g.identities, err = cfg.AgeIdentities(); err != nil {
		return err
	}
	if g.rejections, err = keyvault.NewRejections(cfg.Rotation.RejectionsOptions()); err != nil {
		return cfg.Wrap(err, "rotation", "rejection_cooldown")
	}
	eo := cfg.Rotation.ExpiryWarnerOptions()
	eo.Logger = g.log.Named("vault")
	if g.expiry, err = keyvault.NewExpiryWarner(eo); err != nil {
		return cfg.Wrap(err, "rotation", "expiry_warn_before")
	}
	if g.opts.DryRun {
		v, warnings, err := loadVault(cfg, g.identities, g.opts.Now)
		if err != nil {
			return err
		}
		g.vault, g.vaultWarns = staticVault{v}, warnings
		return nil
	}
	wo := cfg.WatcherOptions(g.identities)
	wo.Logger, wo.OnReload, wo.Now = g.log.Named("vault"), g.vaultReloaded, g.opts.Now
	g.watcher, err = keyvault.NewWatcher(wo)
	if err != nil {
		return err
	}
	g.vault = g.watcher
	g.metrics.VaultReload(true)
	g.metrics.SetKeySource(g.keyStates)
	prepareMetrics(g.metrics, g.watcher.Current())
	g.prevVault = g.watcher.Current()
	g.recordLoad(nil, g.prevVault, nil)
	return nil
}

// LoadVault loads the config's vault once, with the age identity of an
// encrypted one, as a dry-run Build does: for `scgate keys`.
func LoadVault(cfg *config.Config, now func() time.Time) (*keyvault.Vault, []keyvault.Warning, error) {
	ids, err := cfg.AgeIdentities()
	if err != nil {
		return nil, nil, err
	}
	return loadVault(cfg, ids, now)
}

func loadVault(cfg *config.Config, ids []age.Identity, now func() time.Time) (*keyvault.Vault, []keyvault.Warning, error) {
	return keyvault.Load(cfg.Vault.File, keyvault.LoadOptions{Now: now, Identities: ids, Panels: cfg.PanelNames()})
}

// buildTracing makes the tracer provider of [tracing] (none in a dry run,
// which only reads and checks its files and settings).
func (g *Gateway) buildTracing() (proxy.TraceOptions, error) {
	cfg := g.cfg
	to := cfg.Tracing.TraceOptions()
	if !cfg.Tracing.Enabled {
		return to, nil
	}
	o, err := cfg.TracingOptions()
	if err != nil {
		return to, err
	}
	if g.opts.DryRun {
		return to, nil
	}
	o.Version, o.Logger = g.opts.Version, g.log.Named("tracing")
	o.Dropped = g.metrics.TraceSpansDropped
	g.metrics.TraceSpansDropped(tracing.DroppedQueueFull, 0)
	g.metrics.TraceSpansDropped(tracing.DroppedExportFailed, 0)
	if g.tracing, err = tracing.New(o); err != nil {
		return to, cfg.Wrap(err, "tracing")
	}
	to.Provider = g.tracing.TracerProvider()
	return to, nil
}

// shutdownTracing exports the spans still queued, for at most a few
// seconds: a collector that is down must not hold the exit.
func (g *Gateway) shutdownTracing() {
	if g.tracing == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
	defer cancel()
	if err := g.tracing.Shutdown(ctx); err != nil {
		g.log.Warn("spans still queued at exit were not all exported", zap.Error(err))
	}
	g.tracing = nil
}

// tracingShutdownTimeout bounds the last export at exit.
const tracingShutdownTimeout = 5 * time.Second

// buildPanels makes each panel with its own transport (and so its own
// connection pool) towards its broadcaster.
func (g *Gateway) buildPanels() ([]proxy.Panel, error) {
	var panels []proxy.Panel
	var errs []error
	for _, p := range g.cfg.PanelList() {
		o, err := g.cfg.TransportOptions(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p.Upstream.DangerouslySkipTLSVerify {
			g.log.Warn(p.Setting("dangerously_skip_tls_verify") + " is set: the broadcaster's certificate is NOT verified, so anyone on the path can read every key scgate sends; set " + p.Setting("ca_file") + " instead")
		}
		panels = append(panels, proxy.Panel{
			Name: p.Name, Upstream: p.Upstream.Origin(), Transport: proxy.NewTransport(o),
			Rate: p.Upstream.Rate, Burst: p.Upstream.Burst,
		})
	}
	return panels, errors.Join(errs...)
}

// listen binds the gateway's, the admin and the ACME challenge listeners.
func (g *Gateway) listen() error {
	so := g.cfg.Server.ServerOptions()
	so.TLSConfig, so.Logger = g.tlsConfig, g.log
	g.metrics.PrepareTLSHandshakeErrors(proxy.TLSErrorReasons())
	so.Conns = g.cfg.ConnLimits(g.metrics.ConnectionRefused)
	so.OnTLSHandshakeError = g.metrics.TLSHandshakeError
	var err error
	// A listener that cannot bind (a port in use) names its setting, so the
	// fatal log line says what to change.
	if g.server, err = proxy.Listen(g.handler, so); err != nil {
		return g.cfg.Wrap(err, "server", "listen")
	}
	ao := g.cfg.Admin.ServerOptions()
	ao.Logger, ao.TLSConfig = g.log, g.adminTLS
	admin, err := g.adminHandler()
	if err != nil {
		return err
	}
	if g.admin, err = proxy.Listen(admin, ao); err != nil {
		return g.cfg.Wrap(err, "admin", "listen")
	}
	return g.listenACMEChallenge()
}

// Close releases what Build made without running it: the listeners, the
// Redis client and the ACME manager. Run closes them itself.
func (g *Gateway) Close() {
	for _, s := range []*proxy.Server{g.server, g.admin, g.challenge} {
		if s != nil {
			_ = s.Close()
		}
	}
	if g.acme != nil {
		g.acme.Stop()
	}
	g.closeCache()
	if g.redis != nil {
		_ = g.redis.Close()
	}
	g.shutdownTracing()
}

// Config is the config the gateway was built from.
func (g *Gateway) Config() *config.Config { return g.cfg }

// Handler is the gateway's handler: its Explain answers `scgate explain`.
func (g *Gateway) Handler() *proxy.Handler { return g.handler }

// Vault is the vault in service.
func (g *Gateway) Vault() *keyvault.Vault { return g.vault.Current() }

// VaultWarnings are the warnings of a dry run's vault load (a running
// gateway logs them instead).
func (g *Gateway) VaultWarnings() []keyvault.Warning { return g.vaultWarns }

// Warnings are the warnings about the config (files others can read,
// settings that weaken the gateway); a running gateway has logged them.
func (g *Gateway) Warnings() []string { return g.warnings }

// Limits are the limits the gateway applies to a caller of key.
func (g *Gateway) Limits(caller, key string) ratelimit.Applied {
	a := g.limiter.For(caller, key)
	a.Backend = g.cfg.Limits.Backend
	return a
}

// Metrics is the gateway's metrics.
func (g *Gateway) Metrics() *metrics.Metrics { return g.metrics }

// Addr is the gateway listener's address (nil in a dry run).
func (g *Gateway) Addr() net.Addr { return addrOf(g.server) }

// AdminAddr is the admin listener's address (nil in a dry run).
func (g *Gateway) AdminAddr() net.Addr { return addrOf(g.admin) }

// ChallengeAddr is the ACME HTTP-01 listener's address, or nil.
func (g *Gateway) ChallengeAddr() net.Addr { return addrOf(g.challenge) }

func addrOf(s *proxy.Server) net.Addr {
	if s == nil {
		return nil
	}
	return s.Addr()
}

// Ready is /readyz: nil once the gateway serves and until it drains.
func (g *Gateway) Ready() error {
	switch {
	case g.draining.Load():
		return errors.New("draining")
	case !g.ready.Load():
		return errors.New("starting")
	case g.acme != nil && !g.certReady.Load():
		return errors.New("obtaining certificates from the ACME CA")
	}
	return nil
}

// vaultReloaded records a reload attempt that read the file.
func (g *Gateway) vaultReloaded(v *keyvault.Vault, _ []keyvault.Warning, err error) {
	g.metrics.VaultReload(err == nil)
	g.recordLoad(g.prevVault, v, err)
	if err != nil {
		return
	}
	g.prevVault = v
	prepareMetrics(g.metrics, v)
	g.limiter.Forget(func(caller string) bool { _, ok := v.KeyOf(caller); return ok },
		func(key string) bool { return v.Key(key) != nil })
	g.expiry.Check(v)
}

// prepareMetrics creates the counters' series for every caller and key
// version of v at 0, so that the first rejection or 429 is an increase.
func prepareMetrics(m *metrics.Metrics, v *keyvault.Vault) {
	var versions []metrics.KeyVersion
	for _, k := range v.Keys() {
		for _, ver := range k.Versions {
			versions = append(versions, metrics.KeyVersion{Panel: k.Panel, Key: k.Name, Prefix: ver.Secret.Prefix()})
		}
	}
	m.Prepare(v.Callers(), versions)
}

// keyStates lists every key version of the live vault for the key gauges.
func (g *Gateway) keyStates() []metrics.KeyState {
	v := g.vault.Current()
	now := g.opts.Now()
	var out []metrics.KeyState
	for _, k := range v.Keys() {
		active := k.Pick(now, g.rejections) // what requests carry
		for _, ver := range k.Versions {
			out = append(out, metrics.KeyState{Key: k.Name, Prefix: ver.Secret.Prefix(), Expires: ver.Expires, Active: ver == active})
		}
	}
	return out
}
