package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy/tlsconf"
)

// cmdCheck validates a config and its vault without binding anything, and
// lists which key each caller would use now. Only prefixes are printed.
func cmdCheck(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfigArgs("check", args, stderr)
	if err != nil {
		return err
	}
	if _, err := buildIdentity(cfg.Identity); err != nil {
		return err
	}
	if cfg.Server.TLS == "files" {
		if _, err := tlsconf.NewFiles(tlsconf.FilesOptions{CertFile: cfg.Server.CertFile, KeyFile: cfg.Server.KeyFile, PollInterval: -1}); err != nil {
			return fmt.Errorf("server TLS: %w", err)
		}
	}
	if cfg.Server.ClientCAFile != "" {
		if _, err := tlsconf.NewClientCAs(tlsconf.ClientCAOptions{File: cfg.Server.ClientCAFile, PollInterval: -1}); err != nil {
			return fmt.Errorf("server.client_ca_file: %w", err)
		}
	}
	now := time.Now()
	v, warnings, err := keyvault.Load(cfg.Vault.File, keyvault.LoadOptions{Now: func() time.Time { return now }})
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s:%d: %s\n", w.File, w.Line, w.Message)
	}
	if err := checkLimits(cfg, v, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "config %s: ok\nvault %s: ok (%d callers, %d keys)\n\n", cfg.path, cfg.Vault.File, len(v.Callers()), len(v.Keys()))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CALLER\tKEY\tPREFIX\tSTATE\tEXPIRES")
	for _, caller := range v.Callers() {
		k, _ := v.KeyOf(caller)
		active := k.Active(now)
		if active == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\tno valid version\t-\n", caller, k.Name)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", caller, k.Name, active.Secret.Prefix(), k.State(active, now), expiry(active.Expires))
	}
	return tw.Flush()
}

func expiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
