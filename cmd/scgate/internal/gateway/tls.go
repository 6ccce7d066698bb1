package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/tlsconf"
)

// buildTLS builds the listener's TLS configuration (none for tls = "off"):
// the certificate source and the client CA bundle.
func (g *Gateway) buildTLS() error {
	cfg := g.cfg
	s := cfg.Server
	var getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	switch s.TLS {
	case "off":
		return nil
	case "files":
		files, err := tlsconf.NewFiles(tlsconf.FilesOptions{
			CertFile: s.CertFile, KeyFile: s.KeyFile, Logger: g.log.Named("tls"),
			OnReload: func(leaf *x509.Certificate, err error) {
				if err == nil && leaf != nil {
					g.certExpiry("server", leaf.NotAfter)
				}
			},
		})
		if err != nil {
			return cfg.Wrap(err, "server", "cert_file")
		}
		g.certs = files
		g.certExpiry("server", files.Leaf().NotAfter)
		getCert = files.GetCertificate
	case "self-signed":
		cert, fingerprint, err := tlsconf.SelfSigned(s.SelfSignedHosts, g.opts.Now())
		if err != nil {
			return cfg.Wrap(err, "server", "self_signed_hosts")
		}
		if !g.opts.DryRun {
			g.log.Warn("serving a self-signed certificate: for development only",
				zap.String("sha256_fingerprint", fingerprint))
		}
		if cert.Leaf != nil {
			g.certExpiry("server", cert.Leaf.NotAfter)
		}
		getCert = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }
	case "acme":
		if err := g.buildACME(); err != nil {
			return err
		}
		if g.acme != nil {
			getCert = g.acme.GetCertificate
		}
	}
	opts := tlsconf.ServerOptions{GetCertificate: getCert}
	if g.acme != nil {
		opts.NextProtos = g.acme.NextProtos()
	}
	cas, err := newTrust(cfg, g.log.Named("client-ca"), !g.opts.DryRun, func(name string, certs []*x509.Certificate, err error) {
		if err == nil {
			if name != "client_ca" {
				name = "trust_bundle:" + name
			}
			g.certExpiry(name, earliestExpiry(certs))
		}
	})
	if err != nil {
		return err
	}
	if cas != nil {
		g.clientCAs.Store(cas)
		// client_auth defaults to "require" and only means something with
		// a client CA; without one, TLS serves without client certificates.
		opts.ClientCAs, opts.ClientAuth = cas, s.ClientAuth
	}
	if getCert == nil {
		return nil // a dry run of tls = "acme"
	}
	g.tlsConfig, err = tlsconf.ServerConfig(opts)
	return err
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

// buildACME builds the ACME certificate source; the certificates are
// obtained by manageCertificates once the listeners serve. A dry run builds
// it (so that the options and storage are checked) and stops it at once.
func (g *Gateway) buildACME() error {
	opts, err := g.cfg.ACMEOptions()
	if err != nil {
		return err
	}
	opts.Logger = g.log.Named("acme")
	opts.OnCertificate = func(domain string, leaf *x509.Certificate) {
		g.certExpiry(domain, leaf.NotAfter)
	}
	a, err := tlsconf.NewACME(opts)
	if err != nil {
		return g.cfg.Wrap(err, "server", "acme")
	}
	if g.opts.DryRun {
		a.Stop()
		return nil
	}
	g.acme = a
	return nil
}

// listenACMEChallenge binds the HTTP-01 listener when one is configured.
// It answers only challenges; anything else gets 404, since gateway
// traffic never goes over plain HTTP here.
func (g *Gateway) listenACMEChallenge() error {
	if g.acme == nil || g.cfg.Server.ACME.HTTPChallengeListen == "" {
		return nil
	}
	var err error
	g.challenge, err = proxy.Listen(g.acme.HTTPHandler(http.NotFoundHandler()), proxy.ServerOptions{
		Name: "acme-http", Addr: g.cfg.Server.ACME.HTTPChallengeListen, Logger: g.log,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		IdleTimeout: 30 * time.Second, MaxHeaderBytes: 8 << 10,
	})
	if err != nil {
		return g.cfg.Wrap(err, "server", "acme", "http_challenge_listen")
	}
	return nil
}

// manageCertificates obtains (or loads from storage) every domain's
// certificate while the listeners serve the challenges, then marks the
// gateway ready; certmagic renews in the background from then on. A
// failure stops the gateway through fail: without a certificate it cannot
// serve, and a restart (by Kubernetes) retries with backoff.
func (g *Gateway) manageCertificates(ctx context.Context, fail context.CancelCauseFunc) {
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
