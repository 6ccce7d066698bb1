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

// render is `helm template`: Helm's install action in client-only dry-run
// mode, which also validates the values against values.schema.json.
func render(t *testing.T, ch *chart.Chart, namespace string, vals map[string]any) (string, error) {
	t.Helper()
	cfg := &action.Configuration{Log: func(format string, v ...any) { t.Logf("helm: "+format, v...) }}
	install := action.NewInstall(cfg)
	install.ClientOnly, install.DryRun, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = "scgate", namespace
	install.KubeVersion = kubeVersion
	rel, err := install.Run(ch, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

func valuesFile(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestChartRendersBothForms renders the chart with its defaults and with
// every values file under ci/, decodes the output strictly, and runs the
// same checks as on the plain manifests.
func TestChartRendersBothForms(t *testing.T) {
	ch := loadChart(t)
	cases := map[string]map[string]any{"defaults": nil}
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("values files under %s/ci: %v %v", chartDir, files, err)
	}
	for _, f := range files {
		cases[strings.TrimSuffix(filepath.Base(f), "-values.yaml")] = valuesFile(t, f)
	}
	modes := map[bool]int{}
	for name, vals := range cases {
		t.Run(name, func(t *testing.T) {
			manifest, err := render(t, ch, "radio", vals)
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
		{"vault.create without content", map[string]any{"vault": map[string]any{"create": true}}, "content"},
		{"negative shutdown delay", map[string]any{"shutdown": map[string]any{"delaySeconds": -1}}, "delaySeconds"},
		{"duration without unit", map[string]any{"vault": map[string]any{"pollInterval": "2"}}, "pollInterval"},
		{"bad log level", map[string]any{"log": map[string]any{"level": "verbose"}}, "level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, ch, "radio", tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// TestChartLints runs Helm's linter (`helm lint --strict`) with each values file.
func TestChartLints(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append([]string{""}, files...) {
		vals := map[string]any{}
		if f != "" {
			vals = valuesFile(t, f)
		}
		res := lint.AllWithKubeVersion(chartDir, vals, "radio", kubeVersion)
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
			"mode":     "sidecar",
			"identity": map[string]any{"static": "stats"},
			"vault":    map[string]any{"create": true, "content": "[callers]\n\"stats\" = \"ro\"\n\n[[keys.ro]]\nsecret = \"Exmpl0r1.FAKEfakeFAKEfakeFAKEfakeFAKEfake\"\n"},
			"sidecar":  map[string]any{"app": map[string]any{"enabled": false}},
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
