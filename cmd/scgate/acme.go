package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/tlsconf"
)

// acmeOptions turns [server.acme] into tlsconf's options.
func acmeOptions(a ACMEConfig) (tlsconf.ACMEOptions, error) {
	opts := tlsconf.ACMEOptions{
		Domains: a.Domains, CA: a.CA, Email: a.Email, Storage: a.Storage,
		HTTPChallenge: a.HTTPChallengeListen != "", TLSALPNChallenge: a.tlsALPN(),
	}
	if a.CARootsFile != "" {
		pem, err := os.ReadFile(a.CARootsFile)
		if err != nil {
			return opts, fmt.Errorf("server.acme.ca_roots_file: %w", err)
		}
		opts.TrustedRoots = x509.NewCertPool()
		if !opts.TrustedRoots.AppendCertsFromPEM(pem) {
			return opts, fmt.Errorf("server.acme.ca_roots_file %s: no PEM certificate found", a.CARootsFile)
		}
	}
	return opts, nil
}

// newACME builds the ACME certificate source; the certificates are
// obtained by manageCertificates once the listeners serve.
func (g *gateway) newACME() error {
	opts, err := acmeOptions(g.cfg.Server.ACME)
	if err != nil {
		return err
	}
	opts.Logger = g.log.Named("acme")
	opts.OnCertificate = func(domain string, leaf *x509.Certificate) {
		g.metrics.TLSCertExpiry.WithLabelValues(domain).Set(float64(leaf.NotAfter.Unix()))
	}
	g.acme, err = tlsconf.NewACME(opts)
	if err != nil {
		return fmt.Errorf("server TLS: %w", err)
	}
	return nil
}

// listenACMEChallenge binds the HTTP-01 listener when one is configured.
// It answers only challenges; anything else gets 404, since gateway
// traffic never goes over plain HTTP here.
func (g *gateway) listenACMEChallenge() error {
	if g.acme == nil || g.cfg.Server.ACME.HTTPChallengeListen == "" {
		return nil
	}
	var err error
	g.challenge, err = proxy.Listen(g.acme.HTTPHandler(http.NotFoundHandler()), proxy.ServerOptions{
		Name: "acme-http", Addr: g.cfg.Server.ACME.HTTPChallengeListen, Logger: g.log,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10,
	})
	return err
}

// manageCertificates obtains (or loads from storage) every domain's
// certificate while the listeners serve the challenges, then marks the
// gateway ready; certmagic renews in the background from then on. A
// failure stops the gateway through fail: without a certificate it cannot
// serve, and a restart (by Kubernetes) retries with backoff.
func (g *gateway) manageCertificates(ctx context.Context, fail context.CancelCauseFunc) {
	var httpAddr net.Addr
	if g.challenge != nil {
		httpAddr = g.challenge.Addr()
	}
	start := time.Now()
	if err := g.acme.Manage(ctx, httpAddr, g.server.Addr()); err != nil {
		if ctx.Err() == nil {
			g.log.Error("could not obtain TLS certificates; stopping (check the domains' DNS, that the CA reaches the challenge ports, and server.acme.ca)", zap.Error(err))
			fail(err)
		}
		return
	}
	g.certReady.Store(true)
	g.log.Info("TLS certificates ready", zap.Strings("domains", g.cfg.Server.ACME.Domains), zap.Duration("took", time.Since(start)))
}

// checkCentral is scgate check's part for this file's settings: the ACME
// options and storage, and the upstream verification warning.
func checkCentral(cfg *Config, stderr io.Writer) error {
	if cfg.Upstream.DangerouslySkipTLSVerify {
		fmt.Fprintln(stderr, "warning: upstream.dangerously_skip_tls_verify is set: the broadcaster's certificate is not verified")
	}
	if cfg.Server.TLS != "acme" {
		return nil
	}
	opts, err := acmeOptions(cfg.Server.ACME)
	if err != nil {
		return err
	}
	a, err := tlsconf.NewACME(opts)
	if err != nil {
		return fmt.Errorf("server TLS: %w", err)
	}
	a.Stop()
	return nil
}
