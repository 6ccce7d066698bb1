package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/keyvault"
	"github.com/scgate/scgate/proxy"
)

// keyRow is one key version as `scgate keys` shows it. It holds the prefix,
// never the secret.
type keyRow struct {
	Panel      string     `json:"panel"` // the panel the key belongs to
	Key        string     `json:"key"`
	Index      int        `json:"index"` // position among the key's versions in the file
	Prefix     string     `json:"prefix"`
	NotBefore  *time.Time `json:"not_before"` // null: unbounded
	Expires    *time.Time `json:"expires"`    // null: never
	State      string     `json:"state"`
	Callers    []string   `json:"callers"`
	Line       int        `json:"line"`
	SecretFile string     `json:"secret_file,omitempty"`
	// Upstream is what `keys verify` learnt: accepted, rejected or error.
	Upstream string `json:"upstream,omitempty"`
	Detail   string `json:"detail,omitempty"` // why, for an error
}

// keyRows lists every version of v, sorted by key name and file order.
func keyRows(v *keyvault.Vault, now time.Time) []keyRow {
	var rows []keyRow
	for _, k := range v.Keys() {
		callers := v.CallersOf(k.Name)
		if callers == nil {
			callers = []string{}
		}
		for _, ver := range k.Versions {
			rows = append(rows, keyRow{
				Panel: k.Panel, Key: k.Name, Index: ver.Index, Prefix: ver.Secret.Prefix(),
				NotBefore: timeOrNil(ver.NotBefore), Expires: timeOrNil(ver.Expires),
				State: string(k.State(ver, now)), Callers: callers, Line: ver.Line, SecretFile: ver.SecretFile,
			})
		}
	}
	return rows
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func newKeysCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "keys --config FILE [--json]",
		Short: "List every key version: prefix, bounds, state, callers",
		Long: `List every version of every key in the vault: key, prefix, not_before,
expires, state (active, standby, expired, pending) and the callers that use
it. Only prefixes are printed, never a secret. "scgate keys verify" asks the
broadcaster which versions it accepts.`,
		Example: `  scgate keys --config /etc/scgate/config.toml
  scgate keys --config config.toml --json | jq '.[] | select(.state == "active")'`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			now := time.Now()
			v, _, err := gateway.LoadVault(cfg, func() time.Time { return now })
			if err != nil {
				return err
			}
			return printKeys(cmd.OutOrStdout(), keyRows(v, now), asJSON, len(v.Panels()) > 1)
		}),
	}
	addConfigFlag(cmd, &path)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (for scripts) instead of a table")
	cmd.AddCommand(newKeysVerifyCmd())
	return cmd
}

// printKeys prints rows; several adds the PANEL column (a one-panel
// gateway's table stays as scripts know it).
func printKeys(w io.Writer, rows []keyRow, asJSON, several bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []keyRow{}
		}
		return enc.Encode(rows)
	}
	verified := len(rows) > 0 && rows[0].Upstream != ""
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "KEY\tPREFIX\tNOT_BEFORE\tEXPIRES\tSTATE\tCALLERS"
	if several {
		head = "PANEL\t" + head
	}
	if verified {
		head += "\tUPSTREAM"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows {
		callers := strings.Join(r.Callers, ",")
		if callers == "" {
			callers = "-"
		}
		line := ""
		if several {
			line = r.Panel + "\t"
		}
		line += fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", r.Key, r.Prefix, bound(r.NotBefore, "-"), bound(r.Expires, "never"), r.State, callers)
		if verified {
			line += "\t" + r.Upstream
			if r.Detail != "" {
				line += " (" + r.Detail + ")"
			}
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func bound(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Format(time.RFC3339)
}

// defaultVerifyPath is a cheap GET that needs a key on the current
// Streaming.Center docs (docs/design.md, The broadcaster API).
const defaultVerifyPath = "/api/v2/playlists/?server=1"

// verifyOptions are the flags of `scgate keys verify`.
type verifyOptions struct {
	asJSON  bool
	path    string
	timeout time.Duration
}

func newKeysVerifyCmd() *cobra.Command {
	var path string
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify --config FILE [--path P] [--timeout D] [--json]",
		Short: "Ask the broadcaster whether it accepts each key version",
		Long: `Ask the broadcaster, with each key version in turn, for a resource that needs
a key (a made-up key first, to prove --path needs one), and add accepted or
rejected per prefix. Exit 1 if an active version is rejected or cannot be
checked: a pipeline can test a new key before it goes live and catch a
revoked one.`,
		Example: `  scgate keys verify --config /etc/scgate/config.toml
  scgate keys verify --config config.toml --path '/api/v2/history/?limit=1&server=1' --json`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			return cmdKeysVerify(cmd.Context(), cfg, o, cmd.OutOrStdout())
		}),
	}
	addConfigFlag(cmd, &path)
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON (for scripts) instead of a table")
	cmd.Flags().StringVar(&o.path, "path", defaultVerifyPath, "a cheap GET that needs a key, path and query")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline of each request")
	return cmd
}

// cmdKeysVerify asks the broadcaster, with each key version in turn, for a
// key-protected resource, and reports which versions it accepts. It exits 1
// when an active version is refused (or cannot be checked), so a pipeline
// can test a new key before it goes live and catch a revoked one.
func cmdKeysVerify(ctx context.Context, cfg *config.Config, o verifyOptions, stdout io.Writer) error {
	now := time.Now()
	v, _, err := gateway.LoadVault(cfg, func() time.Time { return now })
	if err != nil {
		return err
	}
	// One asker per panel, each with its own transport: a key is only ever
	// sent to its own panel, also here.
	asks := make(map[string]func(string) (int, error))
	for _, p := range cfg.PanelList() {
		target, err := verifyURL(p.Upstream.URL, o.path)
		if err != nil {
			return err
		}
		to, err := cfg.TransportOptions(p)
		if err != nil {
			return err
		}
		transport := proxy.NewTransport(to)
		defer transport.CloseIdleConnections()
		ask := func(key string) (int, error) {
			rctx, cancel := context.WithTimeout(ctx, o.timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(rctx, http.MethodGet, target, nil)
			if err != nil {
				return 0, err
			}
			req.Header["SC-API-KEY"] = []string{key}
			req.Header.Set("User-Agent", "scgate-keys-verify")
			resp, err := transport.RoundTrip(req)
			if err != nil {
				return 0, err
			}
			_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
			_ = resp.Body.Close()
			return resp.StatusCode, nil
		}
		if err := checkVerifyPath(ask, o.path); err != nil {
			if len(cfg.Upstreams) > 0 {
				return fmt.Errorf("panel %q: %w", p.Name, err)
			}
			return err
		}
		asks[p.Name] = ask
	}
	rows := keyRows(v, now)
	i := 0
	var failed []error
	for _, k := range v.Keys() {
		for _, ver := range k.Versions {
			row := &rows[i]
			i++
			status, err := asks[k.Panel](ver.Secret.Value())
			switch {
			case err != nil:
				row.Upstream, row.Detail = "error", requestFailure(err)
			case status >= 200 && status < 300:
				row.Upstream = "accepted"
			case status == http.StatusForbidden || status == http.StatusUnauthorized:
				row.Upstream = "rejected"
			default:
				row.Upstream, row.Detail = "error", fmt.Sprintf("answered %d", status)
			}
			switch {
			case row.State != string(keyvault.StateActive) || row.Upstream == "accepted":
			case row.Upstream == "rejected":
				failed = append(failed, fmt.Errorf("the broadcaster rejects the active version of key %q (prefix %s): replace it in the vault with an accepted version", k.Name, row.Prefix))
			default:
				failed = append(failed, fmt.Errorf("the active version of key %q (prefix %s) could not be verified: %s", k.Name, row.Prefix, row.Detail))
			}
		}
	}
	if err := printKeys(stdout, rows, o.asJSON, len(v.Panels()) > 1); err != nil {
		return err
	}
	return errors.Join(failed...)
}

// verifyURL joins the upstream origin and a path with its query.
func verifyURL(upstream, path string) (string, error) {
	u, err := url.Parse(path)
	if err != nil || !strings.HasPrefix(path, "/") || u.Host != "" {
		return "", usageError{fmt.Sprintf("--path %q: give an absolute path such as %s", path, defaultVerifyPath)}
	}
	return strings.TrimSuffix(upstream, "/") + path, nil
}

// checkVerifyPath asks with a made-up key first: if the broadcaster answers
// that with success, the path does not need a key, and every version would
// look accepted.
func checkVerifyPath(ask func(string) (int, error), path string) error {
	var b [16]byte
	_, _ = rand.Read(b[:])
	status, err := ask("scgateVf." + hex.EncodeToString(b[:]))
	switch {
	case err != nil:
		return fmt.Errorf("cannot reach the broadcaster: %s", requestFailure(err))
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return nil
	case status >= 200 && status < 300:
		return fmt.Errorf("the broadcaster answered %s with %d to a made-up key, so it cannot tell keys apart: give a GET that needs a key with --path", path, status)
	}
	return fmt.Errorf("the broadcaster answered %s with %d to a made-up key (a 403 was expected): give a GET that needs a key with --path", path, status)
}

// requestFailure describes a failed request without the URL, which
// url.Error repeats.
func requestFailure(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within --timeout"
	}
	return err.Error()
}
