package gateway

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"time"

	"github.com/scgate/scgate/internal/adminauth"
	"github.com/scgate/scgate/internal/statuspage"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy/tlsconf"
)

// buildAdmin reads what guards the admin listener: the password file and,
// for TLS, the certificate and the client CA bundle. A dry run reads them
// too, so `scgate check` reports a missing file.
func (g *Gateway) buildAdmin() error {
	a := g.cfg.Admin
	if w := a.Warning(); w != "" {
		g.warnings = append(g.warnings, w)
		if !g.opts.DryRun {
			g.log.Warn(w)
		}
	}
	opts := adminauth.Options{Username: a.Username}
	if a.PasswordFile != "" {
		pw, err := adminauth.ReadPassword(a.PasswordFile)
		if err != nil {
			return g.cfg.Wrap(err, "admin", "password_file")
		}
		opts.Password = pw
	}
	if a.TLS() {
		files, err := tlsconf.NewFiles(tlsconf.FilesOptions{
			CertFile: a.CertFile, KeyFile: a.KeyFile, Logger: g.log.Named("admin-tls"),
			OnReload: func(leaf *x509.Certificate, err error) {
				if err == nil && leaf != nil {
					g.certExpiry("admin", leaf.NotAfter)
				}
			},
		})
		if err != nil {
			return g.cfg.Wrap(err, "admin", "cert_file")
		}
		g.adminCerts = files
		so := tlsconf.ServerOptions{GetCertificate: files.GetCertificate, NextProtos: []string{"http/1.1"}}
		if a.ClientCAFile != "" {
			cas, err := tlsconf.NewClientCAs(tlsconf.ClientCAOptions{
				File: a.ClientCAFile, Logger: g.log.Named("admin-client-ca"),
				OnReload: func(certs []*x509.Certificate, err error) {
					if err == nil {
						g.certExpiry("admin_client_ca", earliestExpiry(certs))
					}
				},
			})
			if err != nil {
				return g.cfg.Wrap(err, "admin", "client_ca_file")
			}
			g.adminCAs = cas
			// Verified when given, so the kubelet's probes, which present
			// no certificate, still reach /healthz and /readyz; the guard
			// then requires a verified one for every other page.
			so.ClientCAs, so.ClientAuth = cas, tlsconf.ClientAuthVerifyIfGiven
			opts.RequireClientCert = true
		}
		if g.adminTLS, err = tlsconf.ServerConfig(so); err != nil {
			return g.cfg.Wrap(err, "admin", "cert_file")
		}
	}
	g.adminGuard = adminauth.New(opts)
	return nil
}

// adminHandler is the admin listener's mux: the probes open, /metrics and
// the status page behind the guard.
func (g *Gateway) adminHandler() (http.Handler, error) {
	base := g.metrics.AdminHandler(g.Ready)
	mux := http.NewServeMux()
	mux.Handle("/", base)
	mux.Handle("GET /metrics", g.adminGuard.Wrap(base))
	if !g.cfg.Admin.StatusPageOn() {
		return mux, nil
	}
	page, err := statuspage.New(statuspage.Options{
		Build: statuspage.Build{Version: g.opts.Version, Revision: g.opts.Revision, GoVersion: runtime.Version(), Started: g.started},
		Vault: g.vault.Current, Rejections: g.rejections, Limiter: g.limiter,
		Panels: g.panels, Certificates: g.certificates, Reloads: g.reloads,
		ExpiryWarnBefore: g.cfg.Rotation.ExpiryWarnBefore.Duration, Now: g.opts.Now,
	})
	if err != nil {
		return nil, err
	}
	mux.Handle("GET /status", g.adminGuard.Wrap(page.HTML()))
	mux.Handle("GET /status.json", g.adminGuard.Wrap(page.JSON()))
	return mux, nil
}

// panels lists the panels requests go to, for the status page: each
// [upstreams.NAME], or the one [upstream] (named "default").
func (g *Gateway) panels() []statuspage.PanelTarget {
	var out []statuspage.PanelTarget
	for _, p := range g.cfg.PanelList() {
		out = append(out, statuspage.PanelTarget{Name: p.Name, Origin: p.Upstream.Origin()})
	}
	return out
}

// certExpiry records when a certificate expires: in the metric and for the
// status page.
func (g *Gateway) certExpiry(name string, notAfter time.Time) {
	g.metrics.CertExpiry(name, notAfter)
	g.certMu.Lock()
	defer g.certMu.Unlock()
	if g.certExp == nil {
		g.certExp = map[string]time.Time{}
	}
	g.certExp[name] = notAfter
}

// certificates lists the recorded certificate expiries, soonest first.
func (g *Gateway) certificates() []statuspage.Certificate {
	g.certMu.Lock()
	out := make([]statuspage.Certificate, 0, len(g.certExp))
	for name, t := range g.certExp {
		out = append(out, statuspage.Certificate{Name: name, NotAfter: t})
	}
	g.certMu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NotAfter.Equal(out[j].NotAfter) {
			return out[i].NotAfter.Before(out[j].NotAfter)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// recordLoad adds a vault load to the status page's reload log: for a
// successful one, what changed since the vault before it (prefixes only);
// for a failed one, its problems by file and line.
func (g *Gateway) recordLoad(prev, v *keyvault.Vault, err error) {
	now := g.opts.Now()
	r := statuspage.Reload{At: now, OK: err == nil}
	switch {
	case err != nil:
		r.Summary = "reload failed; the last good vault stays in service"
		for _, pe := range keyvault.Problems(err) {
			r.Lines = append(r.Lines, pe.Error())
		}
	case prev == nil:
		r.Summary = fmt.Sprintf("vault loaded: %d keys, %d callers", len(v.Keys()), len(v.Callers()))
	case prev == v:
		r.Summary = "vault unchanged"
	default:
		r.Summary = fmt.Sprintf("vault reloaded: %d keys, %d callers", len(v.Keys()), len(v.Callers()))
		r.Lines = keyvault.Diff(prev, v, now).Lines()
	}
	g.reloads.Add(r)
}
