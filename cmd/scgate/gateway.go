package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/metrics"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/identity"
	"github.com/scgate/scgate/proxy/policy"
	"github.com/scgate/scgate/proxy/ratelimit"
	"github.com/scgate/scgate/proxy/tlsconf"
)

// gateway is one running scgate: everything built from a Config.
type gateway struct {
	cfg      *Config
	log      *zap.Logger
	metrics  *metrics.Metrics
	vault    *keyvault.Watcher
	limiter  *ratelimit.Limiter
	redis    *ratelimit.Redis // backend = "redis" only
	policy   *policy.Holder
	rotation rotation // rejections and expiry warnings (rotation.go)
	// liveLimits and livePolicy are the [limits] and [policy] in force, for
	// SIGHUP to tell what changed.
	liveLimits ratelimit.Limits
	livePolicy PolicyConfig
	certs      *tlsconf.Files                // tls = "files"
	clientCAs  atomic.Pointer[tlsconf.Trust] // mTLS: client CA file and trust bundles
	acme       *tlsconf.ACME                 // tls = "acme"; see acme.go
	challenge  *proxy.Server                 // the HTTP-01 listener, with acme
	certReady  atomic.Bool                   // acme: every domain has a certificate
	server     *proxy.Server
	admin      *proxy.Server
	ready      atomic.Bool
	draining   atomic.Bool
}

// accessLogFlush is how late an access-log line may reach the log: the
// access log is written in batches (one write per batch instead of one per
// request, which was about 4% of the gateway's CPU under load); every other
// line is written at once.
const accessLogFlush = time.Second

// newLogger builds the zap logger. With accessFlush > 0, the lines of the
// "access" logger are buffered for at most accessFlush; stop flushes them and
// ends the flushing goroutine, and must be called before exit.
func newLogger(c LogConfig, w io.Writer, accessFlush time.Duration) (_ *zap.Logger, stop func(), _ error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, nil, err
	}
	ecfg := zap.NewProductionEncoderConfig()
	ecfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if c.Format == "console" {
		ecfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ecfg)
	} else {
		enc = zapcore.NewJSONEncoder(ecfg)
	}
	// One lock for every writer of w, so that a batch of access lines and
	// a line written at once never interleave.
	ws := zapcore.Lock(zapcore.AddSync(w))
	core := zapcore.NewCore(enc, ws, level)
	if accessFlush <= 0 {
		return zap.New(core), func() {}, nil
	}
	buf := &zapcore.BufferedWriteSyncer{WS: ws, Size: 256 << 10, FlushInterval: accessFlush}
	access := zapcore.NewCore(enc.Clone(), buf, level)
	return zap.New(accessSplit{Core: core, access: access}), func() { _ = buf.Stop() }, nil
}

// accessSplit sends the entries of the "access" logger to its own core and
// every other entry to the embedded one.
type accessSplit struct {
	zapcore.Core
	access zapcore.Core
}

func (s accessSplit) With(fields []zapcore.Field) zapcore.Core {
	return accessSplit{Core: s.Core.With(fields), access: s.access.With(fields)}
}

func (s accessSplit) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.LoggerName == "access" {
		return s.access.Check(e, ce)
	}
	return s.Core.Check(e, ce)
}

func (s accessSplit) Sync() error { return errors.Join(s.access.Sync(), s.Core.Sync()) }

// newGateway loads everything the config names and binds the listeners. Any
// failure leaves nothing running.
func newGateway(cfg *Config, logger *zap.Logger) (_ *gateway, err error) {
	// g is not the named result: "return nil, err" must not hide it from the
	// cleanups deferred below.
	g := &gateway{cfg: cfg, log: logger, metrics: metrics.New(), liveLimits: cfg.rateLimits(), livePolicy: cfg.Policy}
	defer func() {
		if err != nil && g.redis != nil {
			_ = g.redis.Close()
		}
	}()
	if err := g.buildLimits(); err != nil {
		return nil, err
	}
	g.rotation, err = newRotation(cfg, logger)
	if err != nil {
		return nil, err
	}
	g.vault, err = keyvault.NewWatcher(keyvault.WatcherOptions{
		Path:         cfg.Vault.File,
		PollInterval: cfg.Vault.PollInterval.Duration,
		Logger:       logger.Named("vault"),
		OnReload:     g.vaultReloaded,
		Identities:   g.rotation.identities,
	})
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	g.metrics.VaultReloads.WithLabelValues("success").Inc()
	g.metrics.VaultLastSuccess.SetToCurrentTime()
	g.metrics.SetKeySource(g.keyStates)

	handler, err := g.newHandler()
	if err != nil {
		return nil, err
	}
	tlsConfig, err := g.serverTLS()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && g.acme != nil {
			g.acme.Stop()
		}
	}()
	s := cfg.Server
	for _, r := range proxy.TLSErrorReasons() {
		g.metrics.TLSHandshakeErrors.WithLabelValues(r) // 0 rather than nothing on dashboards
	}
	g.server, err = proxy.Listen(handler, proxy.ServerOptions{
		Name: "gateway", Addr: s.Listen, TLSConfig: tlsConfig,
		ReadHeaderTimeout: s.ReadHeaderTimeout.Duration, ReadTimeout: s.ReadTimeout.Duration,
		WriteTimeout: s.WriteTimeout.Duration, IdleTimeout: s.IdleTimeout.Duration,
		MaxHeaderBytes: s.MaxHeaderBytes, Logger: logger,
		MaxConnectionAge:    s.maxConnectionAge(),
		Conns:               cfg.connLimits(func(r string) { g.metrics.ConnectionsRefused.WithLabelValues(r).Inc() }),
		OnTLSHandshakeError: func(r string) { g.metrics.TLSHandshakeErrors.WithLabelValues(r).Inc() },
	})
	if err != nil {
		return nil, err
	}
	g.admin, err = proxy.Listen(g.metrics.AdminHandler(g.readiness), proxy.ServerOptions{
		Name: "admin", Addr: cfg.Admin.Listen, Logger: logger,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
	})
	if err != nil {
		_ = g.server.Close()
		return nil, err
	}
	if err = g.listenACMEChallenge(); err != nil {
		_ = g.server.Close()
		_ = g.admin.Close()
		return nil, err
	}
	return g, nil
}

// upstreamTransport builds the transport towards the broadcaster from the
// [upstream] settings (the gateway's, and `scgate keys verify`'s).
func upstreamTransport(u UpstreamConfig) (*http.Transport, error) {
	var roots *x509.CertPool
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream.ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream.ca_file %s: no PEM certificate found", u.CAFile)
		}
	}
	return proxy.NewTransport(proxy.TransportOptions{
		RootCAs: roots, ServerName: u.ServerName, DangerouslySkipVerify: u.DangerouslySkipTLSVerify,
		DialTimeout: u.DialTimeout.Duration, TLSHandshakeTimeout: u.TLSHandshakeTimeout.Duration,
		ResponseHeaderTimeout: u.ResponseHeaderTimeout.Duration, IdleConnTimeout: u.IdleConnTimeout.Duration,
		MaxIdleConns: u.MaxIdleConns,
	}), nil
}

func (g *gateway) newHandler() (*proxy.Handler, error) {
	cfg := g.cfg
	upstream, _ := url.Parse(cfg.Upstream.URL) // validated with the config
	upstream.Path = ""
	if cfg.Upstream.DangerouslySkipTLSVerify {
		g.log.Warn("upstream.dangerously_skip_tls_verify is set: the broadcaster's certificate is NOT verified, so anyone on the path can read every key scgate sends; set upstream.ca_file instead")
	}
	if w := cfg.hostsWarning(); w != "" {
		g.log.Warn(w)
	}
	if cfg.Server.AllowBrowsers {
		g.log.Warn("server.allow_browsers is set: web pages on other sites can send requests through a browser that reaches this gateway")
	}
	transport, err := upstreamTransport(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.identityWarnings() {
		g.log.Warn(w)
	}
	anchors := newAnchorSource(g.clientCAs.Load)
	resolver, err := buildIdentity(context.Background(), cfg.Identity, g.log.Named("identity"), anchors.Anchors)
	if err != nil {
		return nil, err
	}
	proxies, err := buildTrustedProxies(cfg.Identity.TrustedProxies)
	if err != nil {
		return nil, err
	}
	var proxyHeaders []string
	if cfg.Identity.Header.Name != "" {
		proxyHeaders = []string{cfg.Identity.Header.Name}
	}
	var public *url.URL
	if cfg.Server.PublicURL != "" {
		public, _ = url.Parse(cfg.Server.PublicURL)
	}
	return proxy.New(proxy.Options{
		Upstream: upstream, Transport: transport, Identity: resolver, Vault: g.vault,
		Limiter: g.limiter, Policy: g.policy, MaxUpstreamPause: cfg.maxUpstreamPause(),
		Metrics: g.metrics, Logger: g.log.Named("access"),
		MaxBodyBytes: cfg.Server.MaxBodyBytes, PublicURL: public, BufferBudget: cfg.Server.MaxBufferedBytes,
		Rejections: g.rotation.rejections, ReplayBodyBytes: cfg.Rotation.replayBodyBytes(),
		RejectionCheck: cfg.Rotation.rejectionCheck(),
		TrustedProxies: proxies, ProxyHeaders: proxyHeaders, StripBearer: cfg.Identity.JWT.set(),
		Hosts: cfg.Server.Hosts, LoopbackHosts: cfg.loopbackListener(), AllowBrowsers: cfg.Server.AllowBrowsers,
	})
}

func buildIdentity(ctx context.Context, c IdentityConfig, log *zap.Logger, anchors func() *identity.Anchors) (identity.Resolver, error) {
	proxies, err := buildTrustedProxies(c.TrustedProxies)
	if err != nil {
		return nil, err
	}
	var chain identity.Chain
	for _, name := range c.Order {
		var r identity.Resolver
		var err error
		switch name {
		case "static":
			r, err = identity.Static(c.Static)
		case "cidr":
			rules := make([]identity.CIDRRule, 0, len(c.CIDR))
			for network, id := range c.CIDR {
				p, perr := netip.ParsePrefix(network)
				if perr != nil {
					return nil, fmt.Errorf("identity.cidr %q: %w", network, perr)
				}
				rules = append(rules, identity.CIDRRule{Prefix: p, Identity: id})
			}
			sort.Slice(rules, func(i, j int) bool { return rules[i].Prefix.String() < rules[j].Prefix.String() })
			r, err = identity.NewCIDR(identity.CIDROptions{Rules: rules, TrustedProxies: proxies})
		case "mtls":
			r, err = identity.NewMTLS(identity.MTLSOptions{Source: c.MTLS.Source, TrustDomains: c.MTLS.TrustDomains, Anchors: anchors})
		case "jwt":
			r, err = buildJWT(ctx, c.JWT, log)
		case "header":
			r, err = identity.NewHeader(identity.HeaderOptions{Name: c.Header.Name, Format: c.Header.Format,
				TrustedProxies: proxies, TrustDomains: c.Header.TrustDomains})
		}
		if err != nil {
			return nil, fmt.Errorf("identity.%s: %w", name, err)
		}
		chain = append(chain, r)
	}
	return chain, nil
}

// serverTLS builds the listener's TLS configuration, or nil for tls = "off".
func (g *gateway) serverTLS() (*tls.Config, error) {
	s := g.cfg.Server
	var getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	switch s.TLS {
	case "off":
		return nil, nil
	case "files":
		files, err := tlsconf.NewFiles(tlsconf.FilesOptions{
			CertFile: s.CertFile, KeyFile: s.KeyFile, Logger: g.log.Named("tls"),
			OnReload: func(leaf *x509.Certificate, err error) {
				if err == nil && leaf != nil {
					g.metrics.TLSCertExpiry.WithLabelValues("server").Set(float64(leaf.NotAfter.Unix()))
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("server TLS: %w", err)
		}
		g.certs = files
		g.metrics.TLSCertExpiry.WithLabelValues("server").Set(float64(files.Leaf().NotAfter.Unix()))
		getCert = files.GetCertificate
	case "self-signed":
		cert, fingerprint, err := tlsconf.SelfSigned(s.SelfSignedHosts, time.Now())
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate: %w", err)
		}
		g.log.Warn("serving a self-signed certificate: for development only",
			zap.String("sha256_fingerprint", fingerprint))
		if cert.Leaf != nil {
			g.metrics.TLSCertExpiry.WithLabelValues("server").Set(float64(cert.Leaf.NotAfter.Unix()))
		}
		getCert = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }
	case "acme":
		if err := g.newACME(); err != nil {
			return nil, err
		}
		getCert = g.acme.GetCertificate
	}
	opts := tlsconf.ServerOptions{GetCertificate: getCert}
	if g.acme != nil {
		opts.NextProtos = g.acme.NextProtos()
	}
	cas, err := newTrust(g.cfg, g.log.Named("client-ca"), true, func(name string, certs []*x509.Certificate, err error) {
		if err == nil {
			if name != "client_ca" {
				name = "trust_bundle:" + name
			}
			g.metrics.TLSCertExpiry.WithLabelValues(name).Set(float64(earliestExpiry(certs).Unix()))
		}
	})
	if err != nil {
		return nil, err
	}
	if cas != nil {
		g.clientCAs.Store(cas)
		// client_auth defaults to "require" and only means something with
		// a client CA; without one, TLS serves without client certificates.
		opts.ClientCAs, opts.ClientAuth = cas, s.ClientAuth
	}
	return tlsconf.ServerConfig(opts)
}

func earliestExpiry(certs []*x509.Certificate) time.Time {
	var t time.Time
	for _, c := range certs {
		if t.IsZero() || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}

// vaultReloaded records a reload attempt that read the file.
func (g *gateway) vaultReloaded(v *keyvault.Vault, _ []keyvault.Warning, err error) {
	if err != nil {
		g.metrics.VaultReloads.WithLabelValues("error").Inc()
		return
	}
	g.metrics.VaultReloads.WithLabelValues("success").Inc()
	g.metrics.VaultLastSuccess.SetToCurrentTime()
	g.limiter.Forget(func(caller string) bool { _, ok := v.KeyOf(caller); return ok },
		func(key string) bool { return v.Key(key) != nil })
	g.rotation.expiry.Check(v)
}

// keyStates lists every key version of the live vault for the key gauges.
func (g *gateway) keyStates() []metrics.KeyState {
	v := g.vault.Current()
	now := time.Now()
	var out []metrics.KeyState
	for _, k := range v.Keys() {
		active := k.Pick(now, g.rotation.rejections) // what requests carry
		for _, ver := range k.Versions {
			out = append(out, metrics.KeyState{Key: k.Name, Prefix: ver.Secret.Prefix(), Expires: ver.Expires, Active: ver == active})
		}
	}
	return out
}

func (g *gateway) readiness() error {
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

// run serves until ctx is done, reloading on every value from hup.
func (g *gateway) run(ctx context.Context, hup <-chan os.Signal) error {
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
	watch("vault", g.vault.Run)
	watch("expiry", func(ctx context.Context) error { return g.rotation.expiry.Run(ctx, g.vault.Current) })
	watch("ratelimit-redis", g.runRedisProbe)
	if g.certs != nil {
		watch("certificate", g.certs.Run)
	}
	if cas := g.clientCAs.Load(); cas != nil {
		watch("client-ca", cas.Run)
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
		zap.String("tls", g.cfg.Server.TLS), zap.String("upstream", g.cfg.Upstream.URL),
		zap.Int("callers", len(g.vault.Current().Callers())), zap.String("version", version))
	gateways := []*proxy.Server{g.server}
	if g.challenge != nil {
		gateways = append(gateways, g.challenge)
	}
	err := proxy.Run(runCtx, proxy.LifecycleOptions{
		Gateways: gateways, Admin: g.admin,
		OnDrain:         func() { g.draining.Store(true) },
		ShutdownDelay:   g.cfg.Server.ShutdownDelay.Duration,
		ShutdownTimeout: g.cfg.Server.ShutdownTimeout.Duration,
		Logger:          g.log,
	})
	stopWatchers()
	wg.Wait()
	if g.acme != nil {
		g.acme.Stop()
	}
	if g.redis != nil {
		_ = g.redis.Close()
	}
	if cause := context.Cause(runCtx); err == nil && ctx.Err() == nil && cause != nil {
		err = cause // a failure that stopped the gateway, not a signal
	}
	g.log.Info("scgate stopped")
	return err
}

// reload is SIGHUP: vault and certificates now; other config changes need a
// restart, which it says when it sees them.
func (g *gateway) reload() {
	g.log.Info("SIGHUP: reloading")
	// The watcher logs every reload problem itself (file, line, reason).
	_ = g.vault.Reload()
	if g.certs != nil {
		if err := g.certs.Reload(); err != nil {
			g.log.Error("certificate reload failed; the previous certificate keeps serving", zap.Error(err))
		}
	}
	if cas := g.clientCAs.Load(); cas != nil {
		if err := cas.Reload(); err != nil {
			g.log.Error("client CA reload failed; the previous bundle keeps serving", zap.Error(err))
		}
	}
	cfg, err := loadConfig(g.cfg.path)
	if err != nil {
		g.log.Error("config file is now invalid; the running config is unchanged", zap.Error(err))
		return
	}
	g.reloadLimits(cfg)
	if !sameConfig(cfg, g.cfg) {
		g.log.Warn("config file changed: vault, certificates, limits and route policy were reloaded; restart scgate to apply the other settings")
	}
}

func sameConfig(a, b *Config) bool {
	x, y := withoutLiveSettings(*a), withoutLiveSettings(*b)
	x.lines, y.lines = nil, nil
	return reflect.DeepEqual(x, y)
}
