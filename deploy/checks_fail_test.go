package deploy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// recorder collects a check's failures instead of failing the test, so a
// test can assert that a broken manifest is caught.
type recorder struct {
	testing.TB
	errs []string
}

var errStop = errors.New("check stopped (Fatalf)")

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}
func (r *recorder) Fatalf(format string, a ...any) {
	r.Errorf(format, a...)
	panic(errStop)
}

// run calls f, turning a Fatalf into a return.
func (r *recorder) run(f func()) {
	defer func() {
		if v := recover(); v != nil && v != errStop {
			panic(v)
		}
	}()
	f()
}

// TestChecksCatchBrokenManifests breaks the plain manifests one way at a
// time and expects the workload checks to say so: the checks that pass on
// the real manifests are able to fail.
func TestChecksCatchBrokenManifests(t *testing.T) {
	setConfig := func(t *testing.T, b *bundle, old, new string) {
		for _, cm := range b.configMaps {
			if c, ok := cm.Data["config.toml"]; ok {
				if !strings.Contains(c, old) {
					t.Fatalf("ConfigMap %s: no %q to replace", cm.Name, old)
				}
				cm.Data["config.toml"] = strings.Replace(c, old, new, 1)
			}
		}
	}
	mount := func(t *testing.T, w *workload, name string) *corev1.VolumeMount {
		for i := range w.scgate.VolumeMounts {
			if w.scgate.VolumeMounts[i].Name == name {
				return &w.scgate.VolumeMounts[i]
			}
		}
		t.Fatalf("no mount %s", name)
		return nil
	}
	for _, tc := range []struct {
		name, dir, want string
		mutate          func(*testing.T, *bundle, *workload)
	}{
		{"vault mounted with subPath", "gateway", "subPath", func(t *testing.T, _ *bundle, w *workload) { mount(t, w, "vault").SubPath = "keys.toml" }},
		{"readiness probe on the TLS port", "gateway", "readiness probe port", func(t *testing.T, _ *bundle, w *workload) {
			w.scgate.ReadinessProbe.HTTPGet.Port = intstr.FromString("https")
		}},
		{"liveness probe on /readyz", "gateway", "liveness probe path", func(t *testing.T, _ *bundle, w *workload) { w.scgate.LivenessProbe.HTTPGet.Path = "/readyz" }},
		{"admin port not the container's", "gateway", "scgate-admin", func(t *testing.T, b *bundle, _ *workload) { setConfig(t, b, `listen = ":9090"`, `listen = ":9091"`) }},
		{"admin on loopback", "sidecar", "loopback", func(t *testing.T, b *bundle, _ *workload) {
			setConfig(t, b, `listen = ":9090"`, `listen = "127.0.0.1:9090"`)
		}},
		{"grace shorter than delay and drain", "gateway", "terminationGracePeriodSeconds", func(t *testing.T, _ *bundle, w *workload) {
			g := int64(30)
			w.spec.TerminationGracePeriodSeconds = &g
		}},
		{"preStop needing a shell", "gateway", "needs a shell", func(t *testing.T, _ *bundle, w *workload) {
			w.scgate.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "sleep 5"}}}}
		}},
		{"writable root filesystem", "gateway", "writable", func(t *testing.T, _ *bundle, w *workload) {
			f := false
			w.scgate.SecurityContext.ReadOnlyRootFilesystem = &f
		}},
		{"capabilities kept", "sidecar", "capabilities", func(t *testing.T, _ *bundle, w *workload) { w.scgate.SecurityContext.Capabilities = nil }},
		{"root user", "gateway", "runAsUser", func(t *testing.T, _ *bundle, w *workload) {
			u := int64(0)
			w.scgate.SecurityContext.RunAsUser = &u
		}},
		{"no memory limit", "sidecar", "memory limit", func(t *testing.T, _ *bundle, w *workload) { delete(w.scgate.Resources.Limits, corev1.ResourceMemory) }},
		{"vault outside every mount", "gateway", "no volume mounted", func(t *testing.T, b *bundle, _ *workload) {
			setConfig(t, b, `file = "/etc/scgate/vault/keys.toml"`, `file = "/etc/scgate/keys/keys.toml"`)
		}},
		{"config that scgate refuses", "sidecar", "scgate check", func(t *testing.T, b *bundle, _ *workload) { setConfig(t, b, `tls = "off"`, `tls = "acme"`) }},
		{"example vault that scgate refuses", "examples/gateway", "scgate check", func(t *testing.T, b *bundle, _ *workload) {
			s := b.secret("scgate-vault")
			s.StringData["keys.toml"] = strings.Replace(s.StringData["keys.toml"], `"legacy-reporting" = "readonly"`, `"legacy-reporting" = "missing"`, 1)
		}},
		{"init container that is no native sidecar", "sidecar", "native sidecar", func(t *testing.T, _ *bundle, w *workload) { w.scgate.RestartPolicy = nil }},
		{"sidecar on every interface", "sidecar", "127.0.0.1 only", func(t *testing.T, b *bundle, _ *workload) {
			setConfig(t, b, `listen = "127.0.0.1:8080"`, `listen = ":8080"`)
		}},
		{"one replica", "gateway", "2 or more", func(t *testing.T, b *bundle, _ *workload) {
			one := int32(1)
			b.hpas[0].Spec.MinReplicas = &one
		}},
		{"no anti-affinity", "gateway", "anti-affinity", func(t *testing.T, _ *bundle, w *workload) { w.deploy.Spec.Template.Spec.Affinity = nil }},
		{"Service to a port scgate lacks", "gateway", "targetPort", func(t *testing.T, b *bundle, _ *workload) {
			b.services[0].Spec.Ports[0].TargetPort = intstr.FromString("http")
		}},
		{"NetworkPolicy without DNS", "gateway", "DNS", func(t *testing.T, b *bundle, _ *workload) {
			b.netpols[0].Spec.Egress = b.netpols[0].Spec.Egress[:1]
		}},
		{"Certificate without the Service's name", "gateway", "dnsNames", func(t *testing.T, b *bundle, _ *workload) {
			b.certificates[0].Spec.DNSNames = []string{"scgate"}
		}},
		{"admin port open to every namespace", "sidecar", "admin port", func(t *testing.T, b *bundle, _ *workload) {
			b.netpols[0].Spec.Ingress[0].From = nil
		}},
		{"no NetworkPolicy on the sidecar's pod", "sidecar", "admin port", func(t *testing.T, b *bundle, _ *workload) { b.netpols = nil }},
		{"gateway admin port in the callers' rule", "gateway", "admin port", func(t *testing.T, b *bundle, _ *workload) {
			b.netpols[0].Spec.Ingress[0].Ports = append(b.netpols[0].Spec.Ingress[0].Ports, b.netpols[0].Spec.Ingress[1].Ports...)
		}},
		{"a Service name missing from server.hosts", "gateway", "server.hosts", func(t *testing.T, b *bundle, _ *workload) {
			setConfig(t, b, `"scgate.scgate.svc", "scgate.scgate.svc:443",`, `"scgate.scgate.svc",`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := loadDir(t, "kubernetes/"+tc.dir)
			w := workloads(t, b)[0]
			tc.mutate(t, b, w)
			rec := &recorder{TB: t}
			rec.run(func() {
				checkWorkload(rec, w)
				if !w.sidecar {
					checkGateway(rec, w)
				}
			})
			for _, e := range rec.errs {
				if strings.Contains(e, tc.want) {
					return
				}
			}
			t.Errorf("no failure about %q; the checks said: %q", tc.want, rec.errs)
		})
	}
}
