package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/scgate/scgate/deploy/internal/scgatebin"
)

var update = flag.Bool("update", false, "rewrite the copies of monitoring/alerts.yaml and monitoring/scgate-dashboard.json (the chart's files/, kubernetes/monitoring/prometheusrule.yaml)")

const (
	alertsFile       = "monitoring/alerts.yaml"
	dashboardFile    = "monitoring/scgate-dashboard.json"
	ruleManifestFile = "kubernetes/monitoring/prometheusrule.yaml"
)

// requiredAlerts are the alerts an SRE expects of scgate.
var requiredAlerts = []string{
	"ScgateDown",                    // a scgate that cannot be scraped
	"ScgateAbsent",                  // no scgate scraped at all
	"ScgateRateLimitBackendDown",    // the Redis limit backend unreachable
	"ScgateUpstreamErrors",          // the broadcaster's own 5xx ratio
	"ScgateUpstreamSlow",            // the broadcaster's p99 latency
	"ScgateKeyExpiringSoon",         // a key expiring within 14 days
	"ScgateUpstreamKeyRejected",     // upstream key rejections
	"ScgateVaultReloadFailing",      // vault reloads failing
	"ScgateVaultStale",              // not reloaded successfully for a long time
	"ScgateGatewayErrors",           // gateway 5xx rate
	"ScgateCallerRateLimited",       // rate limiting saturating a caller
	"ScgateCertificateExpiringSoon", // certificate expiring
}

var promqlParser = parser.NewParser(parser.Options{})

// parseRules parses a rule file with Prometheus's own parser, strictly
// (unknown fields are errors), which also parses every expression and
// checks every template.
func parseRules(t *testing.T, source string, data []byte) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.Parse(data, false, model.UTF8Validation, promqlParser, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%s: %v", source, err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// metricNames returns the metric names an expression selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := promqlParser.ParseExpr(expr)
	if err != nil {
		t.Errorf("%q: %v", expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("%q: a selector without a metric name", expr)
		}
		names = append(names, name)
		return nil
	})
	return names
}

// runbookAnchors returns the GitHub anchors of the headings of
// docs/operations.md, where the runbooks are.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	root, err := scgatebin.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(readFile(t, filepath.Join(root, "docs", "operations.md"))), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		anchors[b.String()] = true
	}
	return anchors
}

const runbookPrefix = "https://github.com/scgate/scgate/blob/main/docs/operations.md#"

// TestAlertRules: the rule file parses with Prometheus's parsers, has every
// alert the issue asks for, each with a severity, a summary, a description
// and a runbook that is a section of docs/operations.md.
func TestAlertRules(t *testing.T) {
	groups := parseRules(t, alertsFile, readFile(t, alertsFile))
	anchors := runbookAnchors(t)
	var names []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name (recording rules are not expected here)", g.Name)
				continue
			}
			names = append(names, r.Alert)
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookPrefix)
			if !ok || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q is not a section of docs/operations.md", r.Alert, r.Annotations["runbook_url"])
			}
		}
	}
	for _, want := range requiredAlerts {
		if !slices.Contains(names, want) {
			t.Errorf("alert %s is missing", want)
		}
	}
}

// ruleManifest is kubernetes/monitoring/prometheusrule.yaml, made from the
// rule file: the same groups under spec.
func ruleManifest(alerts []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`# The alerts of deploy/monitoring/alerts.yaml for the Prometheus Operator.
# Generated: edit deploy/monitoring/alerts.yaml, then run
# (cd deploy && go test -run TestMonitoringCopies -update .)
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: scgate
  namespace: monitoring
  labels:
    app.kubernetes.io/name: scgate
spec:
`)
	inHeader := true
	for _, line := range strings.SplitAfter(string(alerts), "\n") {
		if inHeader && strings.HasPrefix(line, "#") {
			continue
		}
		inHeader = false
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.Bytes()
}

// TestMonitoringCopies: the chart's files and the PrometheusRule manifest
// are exact copies of deploy/monitoring's sources (-update rewrites them).
func TestMonitoringCopies(t *testing.T) {
	alerts, dash := readFile(t, alertsFile), readFile(t, dashboardFile)
	for path, want := range map[string][]byte{
		"helm/scgate/files/alerts.yaml":           alerts,
		"helm/scgate/files/scgate-dashboard.json": dash,
		ruleManifestFile:                          ruleManifest(alerts),
	} {
		if *update {
			writeFile(t, path, want)
			continue
		}
		if !bytes.Equal(readFile(t, path), want) {
			t.Errorf("%s differs from its source in deploy/monitoring; run (cd deploy && go test -run TestMonitoringCopies -update .)", path)
		}
	}
	mon := loadDir(t, "kubernetes/monitoring")
	if len(mon.rules) != 1 {
		t.Fatalf("%s: %d PrometheusRules, want 1", mon, len(mon.rules))
	}
	sameRules(t, ruleManifestFile, mon.rules[0].Spec, parseRules(t, alertsFile, alerts))
}

// sameRules compares a PrometheusRule's groups with the rule file's.
func sameRules(t *testing.T, source string, spec monitoringv1.PrometheusRuleSpec, want *rulefmt.RuleGroups) {
	t.Helper()
	type flat struct {
		Group, Alert, Expr, For string
		Labels, Annotations     map[string]string
	}
	var got, exp []flat
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			f := flat{Group: g.Name, Alert: r.Alert, Expr: strings.TrimSpace(r.Expr.String()), Labels: r.Labels, Annotations: r.Annotations}
			if r.For != nil {
				d, err := model.ParseDuration(string(*r.For))
				if err != nil {
					t.Errorf("%s: %s: for %q: %v", source, r.Alert, *r.For, err)
				}
				f.For = d.String()
			}
			got = append(got, f)
		}
	}
	for _, g := range want.Groups {
		for _, r := range g.Rules {
			f := flat{Group: g.Name, Alert: r.Alert, Expr: strings.TrimSpace(r.Expr), Labels: r.Labels, Annotations: r.Annotations}
			if r.For != 0 {
				f.For = r.For.String()
			}
			exp = append(exp, f)
		}
	}
	g, _ := json.Marshal(got)
	e, _ := json.Marshal(exp)
	if !bytes.Equal(g, e) {
		t.Errorf("%s: the rules differ from %s:\n got %s\nwant %s", source, alertsFile, g, e)
	}
}

// dashboard is the part of a Grafana dashboard these tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// grafanaVars are Grafana's interval variables, replaced by durations
// before parsing (the dashboard's own variables only appear inside label
// matcher strings, where they parse as they are).
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// dashboardQueries returns every PromQL query of the dashboard (targets and
// template variables), ready to parse, by where it is.
func dashboardQueries(t *testing.T, d dashboard) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out[fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID)] = grafanaVars.Replace(tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, s)
			continue
		}
		out["variable "+v.Name] = m[1]
	}
	return out
}

// TestDashboard: the dashboard is valid JSON with unique panel ids and a
// sane layout, every query parses as PromQL, and it shows what the issue
// asks for: requests, latency, errors by code, rate limiting, a key expiry
// table and reloads.
func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("uid %q title %q schemaVersion %d", d.UID, d.Title, d.SchemaVersion)
	}
	ids := map[int]bool{}
	shown := map[string][]string{} // metric → panel types showing it
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %d %q: gridPos %+v outside the 24-column grid", p.ID, p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no query", p.ID, p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("panel %d %q: refId %q missing or repeated", p.ID, p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			for _, m := range metricNames(t, grafanaVars.Replace(tg.Expr)) {
				shown[m] = append(shown[m], p.Type)
			}
		}
	}
	for _, q := range dashboardQueries(t, d) {
		metricNames(t, q) // parse errors are reported there
	}
	// Several panels: the broadcaster's latency and the requests sent to it
	// are shown per panel, with a panel variable to pick some.
	perPanel := 0
	for _, q := range dashboardQueries(t, d) {
		if strings.Contains(q, "by (panel") && strings.Contains(q, `panel=~"$panel"`) {
			perPanel++
		}
	}
	if perPanel < 3 {
		t.Errorf("%d queries are per panel (by (panel...) with panel=~\"$panel\"); want the latency, rejections and requests sent", perPanel)
	}
	if _, ok := dashboardQueries(t, d)["variable panel"]; !ok {
		t.Error("no panel variable")
	}
	for metric, panelType := range map[string]string{
		"scgate_requests_total":                  "timeseries",
		"scgate_request_duration_seconds_bucket": "timeseries",
		"scgate_gateway_errors_total":            "timeseries",
		"scgate_rate_limited_total":              "timeseries",
		"scgate_key_expiry_timestamp_seconds":    "table",
		"scgate_vault_reloads_total":             "timeseries",
	} {
		if !slices.Contains(shown[metric], panelType) {
			t.Errorf("no %s panel shows %s", panelType, metric)
		}
	}
}

// TestEveryMetricUsedIsExported: every metric the alerts and the dashboard
// name is one scgate exports: seen on the /metrics of a live gateway driven
// through its paths, or (for series that only an event the stand-in cannot
// provoke creates) documented in docs/reference.md's metrics table, the contract.
func TestEveryMetricUsedIsExported(t *testing.T) {
	used := map[string][]string{} // metric → where
	for _, g := range parseRules(t, alertsFile, readFile(t, alertsFile)).Groups {
		for _, r := range g.Rules {
			for _, m := range metricNames(t, r.Expr) {
				used[m] = append(used[m], "alert "+r.Alert)
			}
		}
	}
	for where, q := range dashboardQueries(t, readDashboard(t)) {
		for _, m := range metricNames(t, q) {
			used[m] = append(used[m], "dashboard "+where)
		}
	}
	live := liveMetricNames(t)
	readme := readmeMetricNames(t)
	for _, must := range []string{"scgate_requests_total", "scgate_gateway_errors_total", "scgate_rate_limited_total",
		"scgate_key_expiry_timestamp_seconds", "scgate_tls_cert_expiry_timestamp_seconds", "process_resident_memory_bytes",
		"scgate_upstream_key_rejections_total"} {
		if !live[must] {
			t.Errorf("the live gateway did not export %s: the scenario no longer exercises it", must)
		}
	}
	for m, where := range used {
		switch {
		case m == "up": // Prometheus's own, per scrape target
		case live[m]:
		case readme[m]:
			t.Logf("%s: documented in docs/reference.md; the live scenario does not produce a sample of it", m)
		default:
			t.Errorf("%s is not a metric scgate exports (used by %s)", m, strings.Join(where, "; "))
		}
	}
}

// TestAlertsFire evaluates the trickier alert expressions on synthetic
// series with Prometheus's own engine, as promtool test rules would.
func TestAlertsFire(t *testing.T) {
	exprs := map[string]string{}
	for _, g := range parseRules(t, alertsFile, readFile(t, alertsFile)).Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = strings.TrimSpace(r.Expr)
		}
	}
	for _, tc := range alertCases {
		t.Run(tc.name, func(t *testing.T) {
			runPromQLTest(t, strings.ReplaceAll(tc.script, "%s", oneLine(exprs[tc.alert])))
		})
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
