package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/keyvault"
)

func newCheckCmd() *cobra.Command {
	var path string
	var failOn dayDuration
	cmd := &cobra.Command{
		Use:   "check --config FILE [--fail-on-expiry DURATION]",
		Short: "Validate the config and the vault; list callers and their keys",
		Long: `Build the gateway exactly as run does, without binding a port or starting
anything, and print which key (prefix, state, expiry) each caller would use
now. Exit 0 when valid, 1 when not, with the message run would fail with.
Only secret prefixes are printed.

With --fail-on-expiry, also exit 1 when a key that callers use has no valid
version at some moment within that time: a CI step that blocks a vault about
to lapse.`,
		Example: `  scgate check --config /etc/scgate/config.toml
  scgate check --config config.toml --fail-on-expiry 14d`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			return cmdCheck(cfg, time.Duration(failOn), cmd.OutOrStdout(), cmd.ErrOrStderr())
		}),
	}
	addConfigFlag(cmd, &path)
	cmd.Flags().Var(&failOn, "fail-on-expiry", `fail (exit 1) if a key used by a caller has no valid version at some moment within this time from now, e.g. "14d" or "336h"`)
	return cmd
}

// dayDuration is a flag's duration that also takes whole days ("14d"), as
// ops think of expiries.
type dayDuration time.Duration

func (d *dayDuration) String() string { return roundDuration(time.Duration(*d)) }
func (d *dayDuration) Type() string   { return "duration" }

func (d *dayDuration) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		// At most 100 years: more would overflow time.Duration.
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 36500 {
			return fmt.Errorf("%q: write whole days (14d) or a Go duration (336h)", s)
		}
		*d = dayDuration(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: write whole days (14d) or a Go duration (336h)", s)
	}
	if v < 0 {
		return fmt.Errorf("%q must not be negative", s)
	}
	*d = dayDuration(v)
	return nil
}

// cmdCheck validates a config and its vault without binding anything, and
// lists which key each caller would use now. Only prefixes are printed. With
// failOn > 0 it also fails when a key in use would be left without a valid
// version within that time.
func cmdCheck(cfg *config.Config, failOn time.Duration, stdout, stderr io.Writer) error {
	now := time.Now()
	// The same Build as scgate run, without listeners or watchers: what it
	// accepts, run accepts (but for a taken port or an unreachable Redis).
	g, err := gateway.Build(cfg, gateway.Options{DryRun: true, Now: func() time.Time { return now }})
	if err != nil {
		return err
	}
	defer g.Close()
	for _, w := range g.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if w := cfg.KeyPrefixWarning(); w != "" {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	for _, p := range cfg.PanelList() {
		if p.Upstream.DangerouslySkipTLSVerify {
			fmt.Fprintf(stderr, "warning: %s is set: the broadcaster's certificate is not verified\n", p.Setting("dangerously_skip_tls_verify"))
		}
	}
	v := g.Vault()
	for _, w := range g.VaultWarnings() {
		fmt.Fprintf(stderr, "warning: %s:%d: %s\n", w.File, w.Line, w.Message)
	}
	unusedNames(cfg, v, stderr)
	fmt.Fprintf(stdout, "config %s: ok\nvault %s: ok (%d callers, %d keys)\n\n", cfg.Path(), cfg.Vault.File, len(v.Callers()), len(v.Keys()))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	// The PANEL column only when there are several panels, so that a
	// one-panel gateway's output stays as scripts know it.
	several := len(v.Panels()) > 1
	if several {
		fmt.Fprint(tw, "PANEL\t")
	}
	fmt.Fprintln(tw, "CALLER\tKEY\tPREFIX\tSTATE\tEXPIRES")
	for _, caller := range v.Callers() {
		for _, panel := range v.PanelsOf(caller) {
			k, _ := v.KeyFor(caller, panel)
			if several {
				fmt.Fprint(tw, panel+"\t")
			}
			active := k.Active(now)
			if active == nil {
				fmt.Fprintf(tw, "%s\t%s\t-\tno valid version\t-\n", caller, k.Name)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", caller, k.Name, active.Secret.Prefix(), k.State(active, now), expiry(active.Expires))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failOn > 0 {
		return lapsingKeys(v, now, failOn)
	}
	return nil
}

// unusedNames reports the names in [limits] and [policy] that match nothing
// in the vault (probably a typo, or a caller not added yet).
func unusedNames(cfg *config.Config, v *keyvault.Vault, stderr io.Writer) {
	warn := func(what, name string, key ...string) {
		fmt.Fprintf(stderr, "warning: %s:%d: %s %q is not in the vault; the setting has no effect until it is\n",
			cfg.Path(), cfg.Line(key...), what, name)
	}
	for _, caller := range config.SortedNames(cfg.Limits.Callers) {
		if _, ok := v.KeyOf(caller); !ok {
			warn("caller", caller, "limits", "callers", caller)
		}
	}
	for _, key := range config.SortedNames(cfg.Limits.Keys) {
		if v.Key(key) == nil {
			warn("key", key, "limits", "keys", key)
		}
	}
	for _, caller := range config.SortedNames(cfg.Policy.Callers) {
		if _, ok := v.KeyOf(caller); !ok {
			warn("caller", caller, "policy", "callers", caller)
		}
	}
}

// lapsingKeys reports every key used by a caller that has no valid version
// at some moment before now+within, as one error per key.
func lapsingKeys(v *keyvault.Vault, now time.Time, within time.Duration) error {
	var errs []error
	for _, k := range v.Keys() {
		callers := v.CallersOf(k.Name)
		if len(callers) == 0 {
			continue // not in use: nothing lapses
		}
		gap := k.CoveredUntil(now)
		if gap.IsZero() || !gap.Before(now.Add(within)) {
			continue
		}
		when := "now"
		if gap.After(now) {
			when = "from " + gap.UTC().Format(time.RFC3339) + " (in " + roundDuration(gap.Sub(now)) + ")"
		}
		errs = append(errs, fmt.Errorf("%s: key %q (callers: %s) has no valid version %s, within --fail-on-expiry %s: add a version valid from before then, or extend one's expires",
			v.Path(), k.Name, strings.Join(callers, ", "), when, roundDuration(within)))
	}
	return errors.Join(errs...)
}

// roundDuration prints d in days and hours, as ops think of expiries.
func roundDuration(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Minute).String()
	}
	d = d.Round(time.Hour)
	days, hours := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	switch {
	case days == 0:
		return fmt.Sprintf("%dh", hours)
	case hours == 0:
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, hours)
}

func expiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
