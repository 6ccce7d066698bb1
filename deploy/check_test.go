package deploy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// fakeVault stands in for a vault Secret that the manifests name but do not
// contain (ops create it). The key is fake.
const fakeVault = `[callers]
"someone" = "k"

[[keys.k]]
secret = "Test0001.FAKEfakeFAKEfakeFAKEfakeFAKEfake"
`

// testPKI is a CA and a serving pair signed by it, in PEM: what cert-manager
// writes into a Certificate's Secret (ca.crt, tls.crt, tls.key).
type testPKI struct{ ca, cert, key []byte }

func newTestPKI(t testing.TB, dnsNames ...string) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "scgate deploy test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "scgate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		DNSNames: append([]string{"localhost"}, dnsNames...), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caTmpl, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	return testPKI{
		ca:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runCheck lays the scgate container's volumes out under a temporary root
// as the kubelet would (ConfigMaps and Secrets of the manifests with their
// keys as files; a Certificate's Secret as cert-manager writes it; a test
// stand-in for a Secret that ops create), points the config's file paths
// into that root, and runs `scgate check` on it: the config in the ConfigMap
// and the example vault must both be valid.
func runCheck(t testing.TB, w *workload) {
	t.Helper()
	root := t.TempDir()
	pki := newTestPKI(t)
	for _, m := range w.scgate.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		vol := volumeNamed(w.spec, m.Name)
		if vol == nil {
			t.Errorf("%s: mount %s has no volume", w.name, m.Name)
			continue
		}
		switch {
		case vol.ConfigMap != nil:
			if cm := w.b.configMap(vol.ConfigMap.Name); cm != nil {
				for k, v := range cm.Data {
					writeFile(t, filepath.Join(dir, k), []byte(v))
				}
			}
		case vol.Secret != nil:
			if s := w.b.secret(vol.Secret.SecretName); s != nil {
				for k, v := range s.StringData {
					writeFile(t, filepath.Join(dir, k), []byte(v))
				}
				for k, v := range s.Data {
					writeFile(t, filepath.Join(dir, k), v)
				}
			} else if w.b.certificateFor(vol.Secret.SecretName) != nil {
				writeFile(t, filepath.Join(dir, "ca.crt"), pki.ca)
				writeFile(t, filepath.Join(dir, "tls.crt"), pki.cert)
				writeFile(t, filepath.Join(dir, "tls.key"), pki.key)
			}
		default:
			t.Errorf("%s: volume %s is neither a ConfigMap nor a Secret", w.name, vol.Name)
		}
	}

	// Files the config names on volumes whose source the manifests leave to
	// ops (an existing Secret or ConfigMap): test stand-ins.
	stand := map[string][]byte{
		"vault.file": []byte(fakeVault), "server.cert_file": pki.cert, "server.key_file": pki.key,
		"server.client_ca_file": pki.ca, "upstream.ca_file": pki.ca, "server.acme.ca_roots_file": pki.ca,
		"identity.jwt.jwks_file": testJWKS(t), "identity.jwt.ca_file": pki.ca,
		"identity.jwt.token_file": []byte("test-token"), "limits.redis.password_file": []byte("test-password"),
		"tracing.ca_file": pki.ca, "tracing.headers_file": []byte("Authorization: Bearer test-collector-token\n"),
		"admin.password_file": []byte("test-admin-password"),
	}
	var tree map[string]any
	if err := toml.Unmarshal([]byte(w.cfgText), &tree); err != nil {
		t.Fatal(err)
	}
	for key, p := range w.configFiles() {
		if p == "" {
			continue
		}
		local := filepath.Join(root, p)
		if _, err := os.Stat(local); err != nil {
			t.Logf("%s: %s %s comes from a Secret or ConfigMap outside the manifests: using a test stand-in", w.name, key, p)
			writeFile(t, local, stand[key])
		}
		setPath(tree, key, local)
	}
	for _, p := range w.cfg.writablePaths() {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(root, w.cfgPath)
	out, err := scgateCheck(t, cfgPath, tree)
	if err != nil {
		t.Errorf("%s: scgate check on the config of the manifests: %v\n%s", w.name, err, out)
		return
	}
	t.Logf("%s: scgate check:\n%s", w.name, out)
}

// scgateCheck writes tree to cfgPath and runs `scgate check` on it.
func scgateCheck(t testing.TB, cfgPath string, tree map[string]any) ([]byte, error) {
	t.Helper()
	cfg, err := toml.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfgPath, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return exec.CommandContext(ctx, scgateBinary, "check", "--config", cfgPath).CombinedOutput()
}

// setPath sets a dotted key ("identity.jwt.jwks_file") in a TOML tree.
func setPath(tree map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	m := tree
	for _, p := range parts[:len(parts)-1] {
		m = m[p].(map[string]any)
	}
	m[parts[len(parts)-1]] = v
}

// writablePaths are folders scgate writes to (ACME storage).
func (c *scgateConfig) writablePaths() []string {
	if c.Server.ACME.Storage != "" {
		return []string{c.Server.ACME.Storage}
	}
	return nil
}

// testJWKS is a JWKS with one ES256 public key, as the cluster's
// /openid/v1/jwks serves.
func testJWKS(t testing.TB) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return fmt.Appendf(nil, `{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"test","x":%q,"y":%q}]}`,
		enc(pub[1:33]), enc(pub[33:]))
}

func volumeNamed(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// checkNetworkPolicy: ingress ports are ports of scgate, callers reach the
// TLS port and Prometheus the admin port; egress allows DNS and the
// broadcaster's port.
func checkNetworkPolicy(t testing.TB, w *workload, name string, in []networkingv1.NetworkPolicyIngressRule, out []networkingv1.NetworkPolicyEgressRule) {
	open := map[int32]bool{}
	for _, r := range in {
		for _, p := range r.Ports {
			if p.Port == nil {
				continue
			}
			port, ok := w.portOf(*p.Port)
			if !ok {
				t.Errorf("NetworkPolicy %s: ingress port %s is no port of scgate", name, p.Port.String())
			}
			open[port] = true
		}
	}
	for _, pn := range []string{"https", "scgate-admin"} {
		port, _ := w.portOf(intstr.FromString(pn))
		if !open[port] {
			t.Errorf("NetworkPolicy %s: nothing may reach port %s", name, pn)
		}
	}
	u, err := url.Parse(w.cfg.Upstream.URL)
	if err != nil {
		t.Fatalf("upstream.url: %v", err)
	}
	upPort := u.Port()
	if upPort == "" {
		upPort = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	egress := func(port string, proto corev1.Protocol) bool {
		for _, r := range out {
			if len(r.Ports) == 0 {
				return true
			}
			for _, p := range r.Ports {
				pr := corev1.ProtocolTCP
				if p.Protocol != nil {
					pr = *p.Protocol
				}
				if pr == proto && (p.Port == nil || strconv.Itoa(p.Port.IntValue()) == port) {
					return true
				}
			}
		}
		return false
	}
	if !egress("53", corev1.ProtocolUDP) {
		t.Errorf("NetworkPolicy %s: no egress to DNS (53/UDP)", name)
	}
	if !egress(upPort, corev1.ProtocolTCP) {
		t.Errorf("NetworkPolicy %s: no egress to the broadcaster's port %s", name, upPort)
	}
	if w.cfg.Tracing.Enabled {
		cu, err := url.Parse(w.cfg.Tracing.Endpoint)
		if err != nil {
			t.Fatalf("tracing.endpoint: %v", err)
		}
		if !egress(cu.Port(), corev1.ProtocolTCP) {
			t.Errorf("NetworkPolicy %s: tracing is on but there is no egress to the collector's port %s", name, cu.Port())
		}
	}
}
