package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPlainManifests decodes every file of deploy/kubernetes strictly and
// checks each scgate pod: security, resources, probes on the admin port of
// its config, mounts, shutdown timing, and `scgate check` on its config.
func TestPlainManifests(t *testing.T) {
	for _, dir := range []string{"kubernetes/sidecar", "kubernetes/gateway", "kubernetes/examples/sidecar", "kubernetes/examples/gateway"} {
		t.Run(strings.TrimPrefix(dir, "kubernetes/"), func(t *testing.T) {
			b := loadDir(t, dir)
			checkOneNamespace(t, b)
			for _, w := range workloads(t, b) {
				checkWorkload(t, w)
				if wantSidecar := strings.HasSuffix(dir, "sidecar"); w.sidecar != wantSidecar {
					t.Errorf("%s: sidecar = %v, want %v", w.name, w.sidecar, wantSidecar)
				}
				if !w.sidecar {
					checkGateway(t, w)
				}
			}
		})
	}
}

// TestKustomizeBasesHoldNoSecret renders every kustomization with the
// kustomize library: the bases (what `kubectl apply -k` applies again and
// again) hold no Secret, so re-applying one never overwrites a rotated
// vault; the example overlays add exactly the fake example vault to their
// base.
func TestKustomizeBasesHoldNoSecret(t *testing.T) {
	for _, dir := range []string{"kubernetes/sidecar", "kubernetes/gateway", "kubernetes/monitoring", "kubernetes/caller-identity"} {
		if b := loadDir(t, dir); len(b.secrets) > 0 {
			t.Errorf("%s applies Secret %s: re-applying it would overwrite the vault ops rotated", dir, b.secrets[0].Name)
		}
	}
	for _, name := range []string{"sidecar", "gateway"} {
		base, ex := loadDir(t, "kubernetes/"+name), loadDir(t, "kubernetes/examples/"+name)
		if len(ex.secrets) != 1 || ex.count != base.count+1 {
			t.Errorf("%s: %d Secrets and %d objects, want the base's %d objects and the example vault", ex, len(ex.secrets), ex.count, base.count)
			continue
		}
		s := ex.secrets[0]
		if !strings.Contains(s.StringData["keys.toml"], "FAKE") {
			t.Errorf("%s: the example vault's keys must be fake", ex)
		}
		for _, w := range workloads(t, base) {
			w.load(t)
			if _, v := w.mountFor(w.cfg.Vault.File); v == nil || v.Secret == nil || v.Secret.SecretName != s.Name || v.Secret.Optional != nil && *v.Secret.Optional {
				t.Errorf("%s: the vault volume does not name the Secret %s that ops create", w.name, s.Name)
			}
		}
	}
}

// checkOneNamespace: the objects of one folder go to one namespace.
func checkOneNamespace(t *testing.T, b *bundle) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range b.metas() {
		seen[m.Namespace] = true
	}
	if len(seen) != 1 || seen[""] {
		t.Errorf("%s: namespaces %v, want one, named", b, seen)
	}
}

func (b *bundle) metas() []metav1.ObjectMeta {
	var out []metav1.ObjectMeta
	for _, o := range b.deployments {
		out = append(out, o.ObjectMeta)
	}
	for _, o := range b.services {
		out = append(out, o.ObjectMeta)
	}
	for _, o := range b.configMaps {
		out = append(out, o.ObjectMeta)
	}
	for _, o := range b.secrets {
		out = append(out, o.ObjectMeta)
	}
	for _, o := range b.accounts {
		out = append(out, o.ObjectMeta)
	}
	for _, o := range b.pdbs {
		out = append(out, o.ObjectMeta)
	}
	for _, o := range b.hpas {
		out = append(out, o.ObjectMeta)
	}
	for _, o := range b.netpols {
		out = append(out, o.ObjectMeta)
	}
	for _, o := range b.certificates {
		out = append(out, o.ObjectMeta)
	}
	for _, o := range b.podMonitors {
		out = append(out, o.ObjectMeta)
	}
	for _, o := range b.rules {
		out = append(out, o.ObjectMeta)
	}
	return out
}

// TestPodMonitorScrapesEveryScgate: the PodMonitor selects the pods of both
// forms, in any namespace, on the scgate container's admin port.
func TestPodMonitorScrapesEveryScgate(t *testing.T) {
	mon := loadDir(t, "kubernetes/monitoring")
	if len(mon.podMonitors) != 1 || len(mon.rules) != 1 {
		t.Fatalf("%s: %d PodMonitors and %d PrometheusRules, want 1 each", mon, len(mon.podMonitors), len(mon.rules))
	}
	pm := mon.podMonitors[0]
	if !pm.Spec.NamespaceSelector.Any {
		t.Errorf("PodMonitor %s watches only its own namespace; sidecars live in the apps' namespaces", pm.Name)
	}
	for _, dir := range []string{"kubernetes/sidecar", "kubernetes/gateway"} {
		for _, w := range workloads(t, loadDir(t, dir)) {
			if !selects(t, &pm.Spec.Selector, w.meta.Labels) {
				t.Errorf("PodMonitor %s does not select %s (labels %v)", pm.Name, w.name, w.meta.Labels)
			}
			for _, ep := range pm.Spec.PodMetricsEndpoints {
				if ep.Port == nil || !hasPortName(w, *ep.Port) {
					t.Errorf("PodMonitor %s: endpoint port %v is not a port of scgate in %s", pm.Name, ep.Port, w.name)
				}
			}
		}
	}
}

func hasPortName(w *workload, name string) bool {
	for _, p := range w.scgate.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// secretLine finds vault secrets written inline.
var secretLine = regexp.MustCompile(`(?m)^\s*secret\s*=\s*"([^"]*)"`)

// TestNoRealKeysInTheDeployFiles: every key written in the manifests, the
// chart and its values files is an obviously fake example key.
func TestNoRealKeysInTheDeployFiles(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".toml", ".tpl", ".json", ".txt":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range secretLine.FindAllSubmatch(data, -1) {
			n++
			if !strings.Contains(string(m[1]), "FAKE") {
				t.Errorf("%s: secret %.8s… does not look like a fake example key (it must contain FAKE)", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("found no example keys at all: the search is broken")
	}
}
