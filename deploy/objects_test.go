package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// bundle is a set of decoded manifests: one folder of plain files, or one
// rendering of the chart.
type bundle struct {
	name         string
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	configMaps   []*corev1.ConfigMap
	secrets      []*corev1.Secret
	accounts     []*corev1.ServiceAccount
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	netpols      []*networkingv1.NetworkPolicy
	certificates []*certmanagerv1.Certificate
	podMonitors  []*monitoringv1.PodMonitor
	rules        []*monitoringv1.PrometheusRule
	issuers      []*certmanagerv1.ClusterIssuer
	clusterRoles []*rbacv1.ClusterRole
	bindings     []*rbacv1.ClusterRoleBinding
	// approver-policy's CertificateRequestPolicies, decoded as unstructured
	// objects (its Go types would pull in a controller's dependencies).
	requestPolicies []*unstructured.Unstructured
	count           int
}

// strictDecoder decodes YAML into the registered API types and fails on
// unknown or duplicate fields, as `kubectl apply --validate=strict` does.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, monitoringv1.AddToScheme, certmanagerv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
}

// splitYAML returns the non-empty documents of a multi-document YAML stream.
func splitYAML(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		if v != nil {
			docs = append(docs, doc)
		}
	}
}

// add decodes every document of data strictly into b.
func (b *bundle) add(t *testing.T, dec runtime.Decoder, source string, data []byte) {
	t.Helper()
	docs, err := splitYAML(data)
	if err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	for i, doc := range docs {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &head); err == nil && strings.HasPrefix(head.APIVersion, "policy.cert-manager.io/") {
			u := &unstructured.Unstructured{}
			if err := yaml.UnmarshalStrict(doc, &u.Object); err != nil {
				t.Errorf("%s (document %d): %v", source, i+1, err)
				continue
			}
			if head.APIVersion != "policy.cert-manager.io/v1alpha1" || head.Kind != "CertificateRequestPolicy" {
				t.Errorf("%s (document %d): %s %s is not a kind these tests check", source, i+1, head.APIVersion, head.Kind)
				continue
			}
			b.count++
			b.requestPolicies = append(b.requestPolicies, u)
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Errorf("%s (document %d): %v", source, i+1, err)
			continue
		}
		b.count++
		switch o := obj.(type) {
		case *appsv1.Deployment:
			b.deployments = append(b.deployments, o)
		case *corev1.Service:
			b.services = append(b.services, o)
		case *corev1.ConfigMap:
			b.configMaps = append(b.configMaps, o)
		case *corev1.Secret:
			b.secrets = append(b.secrets, o)
		case *corev1.ServiceAccount:
			b.accounts = append(b.accounts, o)
		case *policyv1.PodDisruptionBudget:
			b.pdbs = append(b.pdbs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			b.hpas = append(b.hpas, o)
		case *networkingv1.NetworkPolicy:
			b.netpols = append(b.netpols, o)
		case *certmanagerv1.Certificate:
			b.certificates = append(b.certificates, o)
		case *monitoringv1.PodMonitor:
			b.podMonitors = append(b.podMonitors, o)
		case *monitoringv1.PrometheusRule:
			b.rules = append(b.rules, o)
		case *certmanagerv1.ClusterIssuer:
			b.issuers = append(b.issuers, o)
		case *rbacv1.ClusterRole:
			b.clusterRoles = append(b.clusterRoles, o)
		case *rbacv1.ClusterRoleBinding:
			b.bindings = append(b.bindings, o)
		default:
			t.Errorf("%s (document %d): %s is not a kind these tests check; add it to bundle", source, i+1, gvk)
		}
	}
}

// loadDir renders a kustomization with the kustomize library (what
// `kubectl apply -k DIR` applies) and decodes every object strictly. It also
// checks that the kustomization lists every manifest of its folder, so that
// no file there is silently left out.
func loadDir(t *testing.T, dir string) *bundle {
	t.Helper()
	b := &bundle{name: dir}
	b.add(t, strictDecoder(t), dir, kustomizeBuild(t, dir))
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(k.Resources, base) {
			t.Errorf("%s/kustomization.yaml does not list %s", dir, base)
		}
	}
	return b
}

// kustomization is the part of a kustomization.yaml these folders use.
type kustomization struct {
	Resources []string `json:"resources"`
}

// kustomizeBuild is `kustomize build DIR`, with the kustomize library.
func kustomizeBuild(t *testing.T, dir string) []byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return out
}

func (b *bundle) configMap(name string) *corev1.ConfigMap {
	for _, c := range b.configMaps {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (b *bundle) secret(name string) *corev1.Secret {
	for _, s := range b.secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (b *bundle) certificateFor(secretName string) *certmanagerv1.Certificate {
	for _, c := range b.certificates {
		if c.Spec.SecretName == secretName {
			return c
		}
	}
	return nil
}

func (b *bundle) String() string { return fmt.Sprintf("%s (%d objects)", b.name, b.count) }
