package deploy

import (
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/release"
	"sigs.k8s.io/yaml"
)

const chartDir = "helm/scgate"

// kubeVersion is the cluster the chart is rendered for: native sidecars are
// on by default from 1.29 and GA in 1.33.
var kubeVersion = &chartutil.KubeVersion{Version: "v1.33.0", Major: "1", Minor: "33"}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// examplesDir holds the documented values files; each is rendered and checked.
const examplesDir = chartDir + "/examples"

// render is `helm template`: Helm's install action in client-only dry-run
// mode, which also validates the values against values.schema.json.
func render(t *testing.T, ch *chart.Chart, namespace string, vals map[string]any) (string, error) {
	t.Helper()
	rel, err := renderRelease(t, ch, namespace, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

func renderRelease(t *testing.T, ch *chart.Chart, namespace string, vals map[string]any) (*release.Release, error) {
	t.Helper()
	cfg := &action.Configuration{Log: func(format string, v ...any) { t.Logf("helm: "+format, v...) }}
	install := action.NewInstall(cfg)
	install.ClientOnly, install.DryRun, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = "scgate", namespace
	install.KubeVersion = kubeVersion
	return install.Run(ch, vals)
}

// exampleFiles are the values files under examples/.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(examplesDir, "*-values.yaml"))
	if err != nil || len(files) < 6 {
		t.Fatalf("values files under %s: %v %v", examplesDir, files, err)
	}
	return files
}

func valuesFile(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestChartRendersBothForms renders the chart with every values file under
// examples/, decodes the output strictly, and runs the same checks as on the
// plain manifests (`scgate check` on the rendered config included).
func TestChartRendersBothForms(t *testing.T) {
	ch := loadChart(t)
	cases := map[string]map[string]any{}
	for _, f := range exampleFiles(t) {
		cases[strings.TrimSuffix(filepath.Base(f), "-values.yaml")] = valuesFile(t, f)
	}
	modes := map[bool]int{}
	for name, vals := range cases {
		t.Run(name, func(t *testing.T) {
			// A gateway gets a namespace of its own, apart from its callers'.
			ns := "radio"
			if vals["mode"] == "gateway" {
				ns = "scgate"
			}
			manifest, err := render(t, ch, ns, vals)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			b := &bundle{name: "chart with " + name}
			b.add(t, strictDecoder(t), b.name, []byte(manifest))
			if len(b.deployments) == 0 {
				// sidecar.app.enabled=false: config only, for an app chart.
				if b.configMap("scgate") == nil {
					t.Fatalf("%s: neither a Deployment nor scgate's ConfigMap", b)
				}
				return
			}
			for _, w := range workloads(t, b) {
				modes[w.sidecar]++
				checkWorkload(t, w)
				if !w.sidecar {
					checkGateway(t, w)
					checkCallerIdentity(t, b, w)
				}
			}
			checkMonitoringObjects(t, b)
		})
	}
	if modes[true] == 0 || modes[false] == 0 {
		t.Errorf("rendered %d sidecar and %d gateway workloads; want both forms", modes[true], modes[false])
	}
}

// checkMonitoringObjects: a rendered PodMonitor selects the scgate pods on
// the admin port; a rendered PrometheusRule holds the alerts of
// deploy/monitoring; a dashboard ConfigMap holds the dashboard.
func checkMonitoringObjects(t *testing.T, b *bundle) {
	t.Helper()
	for _, pm := range b.podMonitors {
		for _, w := range workloads(t, b) {
			if !selects(t, &pm.Spec.Selector, w.meta.Labels) {
				t.Errorf("PodMonitor %s does not select %s", pm.Name, w.name)
			}
			for _, ep := range pm.Spec.PodMetricsEndpoints {
				if ep.Port == nil || !hasPortName(w, *ep.Port) {
					t.Errorf("PodMonitor %s: port %v is not a port of scgate", pm.Name, ep.Port)
				}
			}
		}
	}
	for _, r := range b.rules {
		sameRules(t, "chart PrometheusRule "+r.Name, r.Spec, parseRules(t, alertsFile, readFile(t, alertsFile)))
	}
	for _, cm := range b.configMaps {
		if d, ok := cm.Data["scgate-dashboard.json"]; ok && d != string(readFile(t, dashboardFile)) {
			t.Errorf("ConfigMap %s: the dashboard differs from %s", cm.Name, dashboardFile)
		}
	}
}

// TestChartSchemaRefusesBadValues: values.schema.json (and the chart's own
// checks) refuse values that would deploy something broken.
func TestChartSchemaRefusesBadValues(t *testing.T) {
	ch := loadChart(t)
	base := valuesFile(t, filepath.Join(examplesDir, "gateway-values.yaml"))
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"unknown mode", map[string]any{"mode": "daemonset"}, "mode"},
		{"unknown value", map[string]any{"replicaCount": 3}, "replicaCount"},
		{"one gateway replica", map[string]any{"gateway": map[string]any{"replicas": 1, "autoscaling": map[string]any{"enabled": false}}}, "replicas"},
		{"autoscaling below two", map[string]any{"gateway": map[string]any{"autoscaling": map[string]any{"minReplicas": 1}}}, "minReplicas"},
		{"upstream with a path", map[string]any{"upstream": map[string]any{"url": "https://radio.example.com/api/v2"}}, "url"},
		{"sidecar without identity", map[string]any{"mode": "sidecar"}, "static"},
		{"vault.create without content", map[string]any{"vault": map[string]any{"create": true, "content": ""}}, "content"},
		{"negative shutdown delay", map[string]any{"shutdown": map[string]any{"delaySeconds": -1}}, "delaySeconds"},
		{"duration without unit", map[string]any{"vault": map[string]any{"pollInterval": "2"}}, "pollInterval"},
		{"bad log level", map[string]any{"log": map[string]any{"level": "verbose"}}, "level"},
		{"no image repository", map[string]any{"image": map[string]any{"repository": ""}}, "image.repository is required"},
		{"no upstream", map[string]any{"upstream": map[string]any{"url": ""}}, "upstream.url is required"},
		{"gateway without caller namespaces", map[string]any{"gateway": map[string]any{"callerNamespaces": []any{}}}, "gateway.callerNamespaces is required"},
		{"gateway without trust domains", map[string]any{"identity": map[string]any{"mtls": map[string]any{"trustDomains": []any{}}}}, "identity.mtls.trustDomains is required"},
		{"sidecar config only without the app's labels", map[string]any{"mode": "sidecar", "identity": map[string]any{"static": "stats"},
			"sidecar": map[string]any{"app": map[string]any{"enabled": false}}}, "networkPolicy.podSelector"},
		{"unknown structured setting", map[string]any{"limits": map[string]any{"ratePerSecond": 3}}, "ratePerSecond"},
		{"bad limit mode", map[string]any{"limits": map[string]any{"callers": map[string]any{"c": map[string]any{"mode": "queue"}}}}, "mode"},
		{"redis share above one", map[string]any{"limits": map[string]any{"redis": map[string]any{"fallbackShare": 2}}}, "fallbackShare"},
		{"unknown resolver", map[string]any{"identity": map[string]any{"order": []any{"ldap"}}}, "order"},
		{"bad caller namespace", map[string]any{"gateway": map[string]any{"callerNamespaces": []any{"Radio NS"}}}, "callerNamespaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals := chartutil.CoalesceTables(copyValues(t, tc.vals), copyValues(t, base))
			_, err := render(t, ch, "radio", vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// TestChartLints runs Helm's linter (`helm lint --strict`) with each values file.
func TestChartLints(t *testing.T) {
	for _, f := range exampleFiles(t) {
		res := lint.AllWithKubeVersion(chartDir, valuesFile(t, f), "radio", kubeVersion)
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev { // what --strict fails on
				t.Errorf("helm lint (values %q): %s", f, m)
			}
		}
	}
}

// TestAppChartIncludesTheSidecar: an app chart that depends on this chart
// (mode sidecar, app disabled) puts scgate into its own pod with the named
// templates; the result passes the same checks as the example app.
func TestAppChartIncludesTheSidecar(t *testing.T) {
	sc := loadChart(t)
	app := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: "v2", Name: "stats", Version: "1.0.0",
			Dependencies: []*chart.Dependency{{Name: "scgate", Version: sc.Metadata.Version, Repository: "file://../scgate"}}},
		Values: map[string]any{"scgate": map[string]any{
			"mode":          "sidecar",
			"identity":      map[string]any{"static": "stats"},
			"vault":         map[string]any{"create": true, "content": "[callers]\n\"stats\" = \"ro\"\n\n[[keys.ro]]\nsecret = \"Exmpl0r1.FAKEfakeFAKEfakeFAKEfakeFAKEfake\"\n"},
			"sidecar":       map[string]any{"app": map[string]any{"enabled": false}},
			"image":         map[string]any{"repository": "ghcr.io/scgate/scgate"},
			"upstream":      map[string]any{"url": "https://radio.example.com:1030"},
			"networkPolicy": map[string]any{"podSelector": map[string]any{"app": "stats"}},
		}},
		Templates: []*chart.File{{Name: "templates/deployment.yaml", Data: []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: stats
  namespace: {{ .Release.Namespace }}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: stats
  template:
    metadata:
      labels:
        app: stats
    spec:
      terminationGracePeriodSeconds: 60
      securityContext:
        runAsNonRoot: true
        fsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      initContainers:
        {{- include "scgate.sidecar.container" .Subcharts.scgate | nindent 8 }}
      containers:
        - name: stats
          image: registry.example.com/radio/stats:2.0.0
          env:
            - name: STREAMING_CENTER_URL
              value: http://127.0.0.1:8080
      volumes:
        {{- include "scgate.sidecar.volumes" .Subcharts.scgate | nindent 8 }}
`)}},
	}
	app.AddDependency(sc)
	manifest, err := render(t, app, "radio", nil)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	b := &bundle{name: "app chart"}
	b.add(t, strictDecoder(t), b.name, []byte(manifest))
	ws := workloads(t, b)
	if len(ws) != 1 || !ws[0].sidecar {
		t.Fatalf("want the app's Deployment with scgate as a sidecar, got %d workloads", len(ws))
	}
	checkWorkload(t, ws[0])
}

// copyValues deep-copies values (CoalesceTables writes into its first argument).
func copyValues(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := yaml.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestChartDefaultsNeedTheRequiredValues: the defaults alone do not render,
// and the message says which value to set (no placeholder image or
// broadcaster is ever deployed).
func TestChartDefaultsNeedTheRequiredValues(t *testing.T) {
	ch := loadChart(t)
	_, err := render(t, ch, "radio", nil)
	if err == nil || !strings.Contains(err.Error(), "is required") {
		t.Fatalf("render with the defaults = %v, want a required-value error", err)
	}
	for _, v := range []string{"image.repository", "upstream.url"} {
		if !strings.Contains(err.Error(), v) {
			t.Logf("render with the defaults names %v first", err)
		}
	}
}

// TestChartNotes: NOTES tell how to create the vault Secret once and how to
// check the keys against the broadcaster, with the release's names.
func TestChartNotes(t *testing.T) {
	ch := loadChart(t)
	for _, f := range []string{"gateway-fixed-values.yaml", "sidecar-values.yaml"} {
		rel, err := renderRelease(t, ch, "radio", valuesFile(t, filepath.Join(examplesDir, f)))
		if err != nil {
			t.Fatal(err)
		}
		notes := rel.Info.Notes
		vals := valuesFile(t, filepath.Join(examplesDir, f))
		if create, _ := vals["vault"].(map[string]any)["create"].(bool); !create {
			if !strings.Contains(notes, "kubectl -n radio create secret generic radio-keys --from-file=vault.toml=./keys.toml") {
				t.Errorf("%s: NOTES lack the kubectl create secret line:\n%s", f, notes)
			}
		}
		if !strings.Contains(notes, "-c scgate -- scgate keys verify --config /etc/scgate/config/config.toml") {
			t.Errorf("%s: NOTES lack the scgate keys verify check:\n%s", f, notes)
		}
	}
}
