package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scgate/scgate/cmd/scgate/internal/config"
	"github.com/scgate/scgate/cmd/scgate/internal/gateway"
	"github.com/scgate/scgate/proxy"
	"github.com/scgate/scgate/proxy/ratelimit"
)

// explanation is what `scgate explain` reports: the gateway's stages for one
// request, decided from the config and vault alone, without the upstream.
type explanation struct {
	Caller  string `json:"caller"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	Host    string `json:"host,omitempty"`
	Verdict string `json:"verdict"` // "forwarded", or the gateway error code (proxy.Code...)
	Status  int    `json:"status"`  // the status the caller would get from scgate; 0 when forwarded
	Reason  string `json:"reason,omitempty"`

	// Panel is the panel the request goes to, and Upstream its origin.
	Panel     string  `json:"panel,omitempty"`
	Upstream  string  `json:"upstream,omitempty"`
	PanelRate float64 `json:"panel_rate,omitempty"` // the panel's rate cap; 0: none

	Key       string `json:"key,omitempty"`
	KeyPrefix string `json:"key_prefix,omitempty"`
	KeyState  string `json:"key_state,omitempty"`
	Expires   string `json:"expires,omitempty"`

	RuleSet string `json:"rule_set"` // "" when the caller has no allow-list (everything allowed)
	Rule    string `json:"rule,omitempty"`

	Limits *explainedLimits `json:"limits,omitempty"`

	Station *explainedStation `json:"station,omitempty"` // nil when the caller is not scoped to stations
	// Cache says how the answer would be cached; nil when it would not.
	Cache *explainedCache `json:"cache,omitempty"`
}

// explainedStation is the station stage's decision (proxy.StationDecision).
type explainedStation struct {
	Stations []int  `json:"stations"` // the stations the caller may touch
	Rule     string `json:"rule"`     // query, body or refused: how the route is governed
	Result   string `json:"result,omitempty"`
	Station  int    `json:"station,omitempty"` // the station the request named
}

type explainedCache struct {
	Rule   string `json:"rule"`
	TTL    string `json:"ttl"`
	Shared bool   `json:"shared"` // one entry for every key of the panel; else per key
}

type explainedLimits struct {
	Backend        string  `json:"backend"`
	CallerRate     float64 `json:"caller_rate"` // requests per second; 0: no limit
	CallerBurst    int     `json:"caller_burst"`
	Concurrency    int     `json:"concurrency"` // 0: no cap
	Mode           string  `json:"mode"`
	MaxWait        string  `json:"max_wait,omitempty"`
	KeyRate        float64 `json:"key_rate"` // shared by every caller of the key; 0: no limit
	KeyBurst       int     `json:"key_burst"`
	SharedByCaller int     `json:"key_callers"`
}

func newExplainCmd() *cobra.Command {
	var path, caller, method, reqPath, host, body, contentType string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "explain --config FILE --caller ID [--method M] --path P [--json]",
		Short: "Say what scgate would do with a request, without calling the broadcaster",
		Long: `Answer "why does scgate refuse me?" without calling the broadcaster: whether
the path is safe, which key (name and prefix) the request would carry, which
limits apply, and whether the route is allowed and by which rule. It asks the
gateway's own decision function. Exit 0 if the request would be forwarded,
1 if refused (with the status and error code the caller would get).`,
		Example: `  scgate explain --config config.toml --caller playlist-sync --path '/api/v2/playlists/?server=1'
  scgate explain --config config.toml --caller stats --method POST --path /api/v2/playlists/ --json
  scgate explain --config config.toml --caller city-sync --method POST --path /api/v2/playlists/ --body '{"name": "x", "server": 3}'
  scgate explain --config config.toml --caller reporting --path /panels/north/api/v2/history/`,
		Args: noArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if caller == "" || reqPath == "" {
				return usageError{"--caller and --path are required"}
			}
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			req := explainRequest{caller: caller, method: strings.ToUpper(method), path: reqPath, contentType: contentType, host: host}
			if cmd.Flags().Changed("body") {
				req.body = []byte(body)
				if !cmd.Flags().Changed("content-type") {
					req.contentType = "application/json"
				}
			}
			return cmdExplainRequest(cfg, req, asJSON, cmd.OutOrStdout())
		}),
	}
	addConfigFlag(cmd, &path)
	cmd.Flags().StringVar(&caller, "caller", "", "the caller's identity, as the resolvers produce it (required)")
	cmd.Flags().StringVar(&method, "method", "GET", "the request method")
	cmd.Flags().StringVar(&reqPath, "path", "", "the request path as the caller sends it, e.g. /api/v2/playlists/?server=1 (required)")
	cmd.Flags().StringVar(&host, "host", "", "the Host the request is sent to (chooses the panel when [panels] by = \"host\")")
	cmd.Flags().StringVar(&body, "body", "", "the request body, for the station check of a create request (JSON unless --content-type says otherwise)")
	cmd.Flags().StringVar(&contentType, "content-type", "", "the body's Content-Type (default with --body: application/json)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// explainRequest is the request explain decides.
type explainRequest struct {
	caller, method, path, contentType string
	host                              string // chooses the panel with [panels] by = "host"
	body                              []byte
}

// cmdExplain answers "why does scgate refuse me?" without calling the
// upstream: which key the request would carry, which limits apply, and
// whether the route is allowed and by which rule. Exit 0 when the request
// would be forwarded, 1 when scgate would refuse it.
func cmdExplain(cfg *config.Config, caller, method, path string, asJSON bool, stdout io.Writer) error {
	return cmdExplainRequest(cfg, explainRequest{caller: caller, method: strings.ToUpper(method), path: path}, asJSON, stdout)
}

func cmdExplainRequest(cfg *config.Config, req explainRequest, asJSON bool, stdout io.Writer) error {
	e, err := explainReq(cfg, req, time.Now())
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(e); err != nil {
			return err
		}
	} else {
		printExplanation(stdout, e)
	}
	if e.Verdict != verdictForwarded {
		return errExplainedRefusal
	}
	return nil
}

// verdictForwarded is the verdict of a request the gateway would forward.
const verdictForwarded = "forwarded"

// errExplainedRefusal makes explain exit 1 once the refusal has been printed.
var errExplainedRefusal = errors.New("the request would be refused (see above)")

// explain asks the gateway's own decision (proxy.Handler.Explain, the
// function ServeHTTP runs: path, identity, vault, route rule, limits, key
// version) of a gateway built as scgate run builds it, without listeners.
func explain(cfg *config.Config, caller, method, rawPath string, now time.Time) (*explanation, error) {
	return explainReq(cfg, explainRequest{caller: caller, method: method, path: rawPath}, now)
}

func explainReq(cfg *config.Config, req explainRequest, now time.Time) (*explanation, error) {
	caller, method, rawPath := req.caller, req.method, req.path
	g, err := gateway.Build(cfg, gateway.Options{DryRun: true, Now: func() time.Time { return now }})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	d := g.Handler().ExplainRequest(context.Background(), proxy.ExplainInput{
		Caller: caller, Method: method, Host: req.host, Target: rawPath, ContentType: req.contentType, Body: req.body})
	e := &explanation{Caller: caller, Method: method, Path: rawPath, Host: req.host, Verdict: verdictForwarded, Key: d.Key, RuleSet: d.Route.Set, Panel: d.Panel}
	for _, p := range cfg.PanelList() {
		if p.Name == d.Panel {
			e.Upstream, e.PanelRate = p.Upstream.Origin().String(), p.Upstream.Rate
		}
	}
	if s := d.Station; s.Scoped {
		e.Station = &explainedStation{Stations: s.Stations, Rule: s.Rule, Result: s.Result, Station: s.Station}
	}
	if d.Route.Rule != nil {
		e.Rule = d.Route.Rule.String()
	}
	if d.Key != "" {
		e.Limits = describeLimits(g.Limits(caller, d.Key), len(g.Vault().CallersOf(d.Key)))
	}
	if d.Code != "" {
		e.Verdict, e.Status, e.Reason = d.Code, d.Status, d.Message
		return e, nil
	}
	if d.Cache != nil {
		e.Cache = &explainedCache{Rule: d.Cache.Route.String(), TTL: d.Cache.TTL.String(), Shared: d.Cache.Shared}
	}
	k := g.Vault().Key(d.Key)
	e.KeyPrefix, e.KeyState, e.Expires = d.Version.Secret.Prefix(), string(k.State(d.Version, now)), expiry(d.Version.Expires)
	return e, nil
}

func describeLimits(a ratelimit.Applied, keyCallers int) *explainedLimits {
	l := &explainedLimits{
		Backend: a.Backend, CallerRate: a.Caller.Rate, CallerBurst: a.Caller.Burst,
		Concurrency: a.Caller.Concurrency, Mode: a.Caller.Mode.String(),
		KeyRate: a.Key.Rate, KeyBurst: a.Key.Burst, SharedByCaller: keyCallers,
	}
	if a.Caller.Mode == ratelimit.Wait {
		l.MaxWait = a.Caller.MaxWait.String()
	}
	return l
}

func printExplanation(w io.Writer, e *explanation) {
	fmt.Fprintf(w, "request   %s %s from caller %q (identity as given; not resolved)\n", e.Method, e.Path, e.Caller)
	if e.Host != "" {
		fmt.Fprintf(w, "host      %s\n", e.Host)
	}
	if e.Panel != "" {
		fmt.Fprintf(w, "panel     %q at %s", e.Panel, e.Upstream)
		if e.PanelRate > 0 {
			fmt.Fprintf(w, ", at most %g req/s from this gateway", e.PanelRate)
		}
		fmt.Fprintln(w)
	}
	if e.Key != "" {
		fmt.Fprintf(w, "vault     caller uses key %q\n", e.Key)
	}
	switch {
	case e.Key == "":
	case e.RuleSet == "":
		fmt.Fprintln(w, "route     allowed: the caller has no rule set (every route)")
	case e.Rule != "":
		fmt.Fprintf(w, "route     allowed by %q in rule set %q\n", e.Rule, e.RuleSet)
	default:
		fmt.Fprintf(w, "route     refused: no rule of set %q matches\n", e.RuleSet)
	}
	if l := e.Limits; l != nil {
		fmt.Fprintf(w, "limits    caller: %s, concurrency %s, mode %s", rateText(l.CallerRate, l.CallerBurst), capText(l.Concurrency), l.Mode)
		if l.MaxWait != "" {
			fmt.Fprintf(w, " (max_wait %s)", l.MaxWait)
		}
		fmt.Fprintf(w, "\n          key %q: %s, shared by %d caller(s); backend %s\n", e.Key, rateText(l.KeyRate, l.KeyBurst), l.SharedByCaller, l.Backend)
	}
	if s := e.Station; s != nil {
		fmt.Fprintf(w, "station   caller scoped to stations %v; route: %s", s.Stations, stationRuleText(s.Rule))
		switch {
		case s.Result == "":
		case s.Station != 0:
			fmt.Fprintf(w, "; names station %d: %s", s.Station, s.Result)
		default:
			fmt.Fprintf(w, ": %s", s.Result)
		}
		fmt.Fprintln(w)
	}
	if e.KeyPrefix != "" {
		fmt.Fprintf(w, "key       version %s (%s, expires %s)\n", e.KeyPrefix, e.KeyState, e.Expires)
	}
	if c := e.Cache; c != nil {
		scope := fmt.Sprintf("per key (entries of key %q)", e.Key)
		if c.Shared {
			scope = "shared by every key of the panel"
		}
		fmt.Fprintf(w, "cache     answered from the cache for up to %s, %s, by %q; a hit still passes the stages above\n", c.TTL, scope, c.Rule)
	}
	if e.Verdict == verdictForwarded {
		fmt.Fprintf(w, "verdict   forwarded with SC-API-KEY of key %q, prefix %s\n", e.Key, e.KeyPrefix)
		return
	}
	fmt.Fprintf(w, "verdict   refused: %d %s: %s\n", e.Status, e.Verdict, e.Reason)
}

func stationRuleText(rule string) string {
	switch rule {
	case "query":
		return "a read, the station is ?server=<id>"
	case "body":
		return `a create, the station is the body's "server"`
	}
	return "refused to scoped callers (names no station)"
}

func rateText(rate float64, burst int) string {
	if rate <= 0 {
		return "no rate limit"
	}
	return fmt.Sprintf("%g req/s, burst %d", rate, burst)
}

func capText(n int) string {
	if n <= 0 {
		return "no cap"
	}
	return strconv.Itoa(n)
}
