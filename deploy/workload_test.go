package deploy

import (
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/scgate/scgate/deploy/image"
)

// graceMargin is the least time the grace period must leave beyond scgate's
// own shutdown (delay + drain), for the process to exit and the kubelet to
// notice.
const graceMargin = 5 * time.Second

// scgateConfig is the part of config.toml the wiring checks read, decoded
// from the ConfigMap, next to the raw tree that checkConfig rewrites.
type scgateConfig struct {
	Server struct {
		Listen          string   `toml:"listen"`
		TLS             string   `toml:"tls"`
		CertFile        string   `toml:"cert_file"`
		KeyFile         string   `toml:"key_file"`
		ClientCAFile    string   `toml:"client_ca_file"`
		ShutdownDelay   string   `toml:"shutdown_delay"`
		ShutdownTimeout string   `toml:"shutdown_timeout"`
		Hosts           []string `toml:"hosts"`
		ACME            struct {
			CARootsFile string `toml:"ca_roots_file"`
			Storage     string `toml:"storage"`
		} `toml:"acme"`
	} `toml:"server"`
	Admin struct {
		Listen       string `toml:"listen"`
		PasswordFile string `toml:"password_file"`
	} `toml:"admin"`
	Upstream struct {
		URL    string `toml:"url"`
		CAFile string `toml:"ca_file"`
	} `toml:"upstream"`
	Vault struct {
		File            string `toml:"file"`
		AgeIdentityFile string `toml:"age_identity_file"`
	} `toml:"vault"`
	Identity struct {
		MTLS struct {
			TrustDomains []string `toml:"trust_domains"`
		} `toml:"mtls"`
		JWT struct {
			JWKSFile  string `toml:"jwks_file"`
			CAFile    string `toml:"ca_file"`
			TokenFile string `toml:"token_file"`
		} `toml:"jwt"`
	} `toml:"identity"`
	Limits struct {
		Redis struct {
			PasswordFile string `toml:"password_file"`
		} `toml:"redis"`
	} `toml:"limits"`
	Tracing struct {
		Enabled     bool   `toml:"enabled"`
		Endpoint    string `toml:"endpoint"`
		CAFile      string `toml:"ca_file"`
		HeadersFile string `toml:"headers_file"`
	} `toml:"tracing"`
}

// duration reads a config duration; scgate's defaults apply to absent ones.
func (c *scgateConfig) duration(t testing.TB, s string, def time.Duration) time.Duration {
	t.Helper()
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("config duration %q: %v", s, err)
	}
	return d
}

// workload is one pod template that runs scgate, with everything the checks
// need to find about it.
type workload struct {
	name      string
	b         *bundle
	deploy    *appsv1.Deployment
	meta      metav1.ObjectMeta
	spec      corev1.PodSpec
	scgate    corev1.Container
	sidecar   bool
	cfgPath   string // the --config path inside the container
	cfgText   string
	cfg       scgateConfig
	namespace string
}

// workloads finds every Deployment of b whose pod runs scgate, and checks
// that there is at least one.
func workloads(t testing.TB, b *bundle) []*workload {
	t.Helper()
	var out []*workload
	for _, d := range b.deployments {
		w := &workload{name: "Deployment " + d.Name, b: b, deploy: d, meta: d.Spec.Template.ObjectMeta, spec: d.Spec.Template.Spec, namespace: d.Namespace}
		found := 0
		for _, c := range d.Spec.Template.Spec.InitContainers {
			if c.Name == "scgate" {
				w.scgate, w.sidecar = c, true
				found++
			}
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "scgate" {
				w.scgate = c
				found++
			}
		}
		if found > 1 {
			t.Errorf("%s: %d containers named scgate", w.name, found)
		}
		if found == 1 {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no Deployment runs scgate", b)
	}
	return out
}

// load reads the config the container is started with from its ConfigMap.
func (w *workload) load(t testing.TB) {
	t.Helper()
	args := w.scgate.Args
	i := slices.Index(args, "--config")
	if len(args) == 0 || args[0] != "run" || i < 0 || i+1 >= len(args) {
		t.Fatalf("%s: scgate args %q, want run --config FILE", w.name, args)
	}
	w.cfgPath = args[i+1]
	m, vol := w.mountFor(w.cfgPath)
	if m == nil || vol.ConfigMap == nil {
		t.Fatalf("%s: --config %s is not inside a ConfigMap volume", w.name, w.cfgPath)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(w.cfgPath, m.MountPath), "/")
	cm := w.b.configMap(vol.ConfigMap.Name)
	if cm == nil {
		t.Fatalf("%s: ConfigMap %s is not among the manifests", w.name, vol.ConfigMap.Name)
	}
	text, ok := cm.Data[rel]
	if !ok {
		t.Fatalf("%s: ConfigMap %s has no key %q for --config %s", w.name, cm.Name, rel, w.cfgPath)
	}
	w.cfgText = text
	if err := toml.Unmarshal([]byte(text), &w.cfg); err != nil {
		t.Fatalf("%s: config.toml: %v", w.name, err)
	}
}

// mountFor returns the scgate mount whose folder holds p, and its volume.
func (w *workload) mountFor(p string) (*corev1.VolumeMount, *corev1.Volume) {
	for i, m := range w.scgate.VolumeMounts {
		if strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") {
			for j, v := range w.spec.Volumes {
				if v.Name == m.Name {
					return &w.scgate.VolumeMounts[i], &w.spec.Volumes[j]
				}
			}
			return &w.scgate.VolumeMounts[i], nil
		}
	}
	return nil, nil
}

// checkWorkload runs every check on one scgate pod template.
func checkWorkload(t testing.TB, w *workload) {
	t.Helper()
	w.load(t)
	checkSecurity(t, w)
	checkResources(t, w)
	checkProbesAndPorts(t, w)
	checkMounts(t, w)
	checkShutdown(t, w)
	if w.sidecar {
		checkSidecar(t, w)
	}
	checkAdminPortClosed(t, w)
	runCheck(t, w)
}

func checkSecurity(t testing.TB, w *workload) {
	sc, psc := w.scgate.SecurityContext, w.spec.SecurityContext
	if sc == nil {
		t.Errorf("%s: scgate has no securityContext", w.name)
		return
	}
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
	if !nonRoot {
		t.Errorf("%s: scgate may run as root (runAsNonRoot is not true)", w.name)
	}
	if sc.RunAsUser != nil && *sc.RunAsUser != image.UID {
		t.Errorf("%s: runAsUser %d, want the image's user %d (the one its /etc/passwd knows)", w.name, *sc.RunAsUser, image.UID)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem is writable", w.name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", w.name)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", w.name)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities %+v, want drop ALL and add none", w.name, sc.Capabilities)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccomp profile %+v, want RuntimeDefault", w.name, seccomp)
	}
}

func checkResources(t testing.TB, w *workload) {
	r := w.scgate.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := r.Requests[name]; !ok || q.IsZero() {
			t.Errorf("%s: no %s request", w.name, name)
		}
	}
	limit, ok := r.Limits[corev1.ResourceMemory]
	if !ok || limit.IsZero() {
		t.Errorf("%s: no memory limit", w.name)
		return
	}
	if req := r.Requests[corev1.ResourceMemory]; limit.Cmp(req) < 0 {
		t.Errorf("%s: memory limit %s below the request %s", w.name, limit.String(), req.String())
	}
	// The measured idle RSS is 12 MiB: a limit below twice that would kill
	// scgate under its first burst.
	if limit.Cmp(resource.MustParse("24Mi")) < 0 {
		t.Errorf("%s: memory limit %s is below scgate's measured needs", w.name, limit.String())
	}
}

// portOf resolves a probe's or a Service's port (a number or a name) to a
// container port number of the scgate container.
func (w *workload) portOf(p intstr.IntOrString) (int32, bool) {
	for _, cp := range w.scgate.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func listenPort(t testing.TB, what, addr string) int32 {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	return int32(n)
}

func checkProbesAndPorts(t testing.TB, w *workload) {
	admin := listenPort(t, "admin.listen", w.cfg.Admin.Listen)
	if host, _, _ := net.SplitHostPort(w.cfg.Admin.Listen); host == "127.0.0.1" || host == "localhost" {
		t.Errorf("%s: admin.listen %s is loopback: the kubelet's probes cannot reach it", w.name, w.cfg.Admin.Listen)
	}
	probes := map[string]*corev1.Probe{"startup": w.scgate.StartupProbe, "readiness": w.scgate.ReadinessProbe, "liveness": w.scgate.LivenessProbe}
	wantPath := map[string]string{"startup": "/readyz", "readiness": "/readyz", "liveness": "/healthz"}
	for kind, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", w.name, kind)
			continue
		}
		if p.HTTPGet.Path != wantPath[kind] {
			t.Errorf("%s: %s probe path %s, want %s", w.name, kind, p.HTTPGet.Path, wantPath[kind])
		}
		if port, ok := w.portOf(p.HTTPGet.Port); !ok || port != admin {
			t.Errorf("%s: %s probe port %s is not the admin port %d of the config", w.name, kind, p.HTTPGet.Port.String(), admin)
		}
	}
	if port, ok := w.portOf(intstr.FromString("scgate-admin")); !ok || port != admin {
		t.Errorf("%s: container port scgate-admin (%d) is not admin.listen (%d)", w.name, port, admin)
	}
	if w.sidecar {
		return
	}
	if port, ok := w.portOf(intstr.FromString("https")); !ok || port != listenPort(t, "server.listen", w.cfg.Server.Listen) {
		t.Errorf("%s: container port https (%d) is not server.listen %s", w.name, port, w.cfg.Server.Listen)
	}
	if w.cfg.Server.TLS != "files" {
		t.Errorf("%s: a central gateway serves callers over the network: tls = %q, want files", w.name, w.cfg.Server.TLS)
	}
}

// checkMounts: every file the config names lies in a volume mounted into the
// scgate container; Secrets are mounted whole (no subPath: an edit of the
// Secret would never reach a subPath mount); the vault is a Secret.
func checkMounts(t testing.TB, w *workload) {
	for _, m := range w.scgate.VolumeMounts {
		if m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("%s: mount %s uses subPath: updates of its volume would not reach scgate", w.name, m.Name)
		}
		if !m.ReadOnly {
			t.Errorf("%s: mount %s is writable", w.name, m.Name)
		}
	}
	for key, p := range w.configFiles() {
		if p == "" {
			continue
		}
		if !path.IsAbs(p) {
			t.Errorf("%s: %s = %q: give an absolute path inside a mounted volume", w.name, key, p)
			continue
		}
		m, vol := w.mountFor(p)
		if m == nil || vol == nil {
			t.Errorf("%s: %s = %q is in no volume mounted into the scgate container", w.name, key, p)
			continue
		}
		if secretSettings[key] && vol.Secret == nil {
			t.Errorf("%s: %s = %q is on volume %s, which is not a Secret", w.name, key, p, vol.Name)
		}
	}
}

// secretSettings name files that hold secrets: they must come from a Secret.
var secretSettings = map[string]bool{
	"vault.file": true, "vault.age_identity_file": true, "server.key_file": true, "server.cert_file": true,
	"server.client_ca_file": true, "limits.redis.password_file": true, "admin.password_file": true,
}

// configFiles lists the files the config names, by setting (its dotted
// path in the TOML).
func (w *workload) configFiles() map[string]string {
	c := w.cfg
	return map[string]string{
		"server.cert_file": c.Server.CertFile, "server.key_file": c.Server.KeyFile,
		"server.client_ca_file": c.Server.ClientCAFile, "upstream.ca_file": c.Upstream.CAFile,
		"server.acme.ca_roots_file": c.Server.ACME.CARootsFile,
		"vault.file":                c.Vault.File, "vault.age_identity_file": c.Vault.AgeIdentityFile,
		"identity.jwt.jwks_file": c.Identity.JWT.JWKSFile, "identity.jwt.ca_file": c.Identity.JWT.CAFile,
		"identity.jwt.token_file": c.Identity.JWT.TokenFile, "limits.redis.password_file": c.Limits.Redis.PasswordFile,
		"tracing.ca_file": c.Tracing.CAFile, "tracing.headers_file": c.Tracing.HeadersFile,
		"admin.password_file": c.Admin.PasswordFile,
	}
}

// checkShutdown: the grace period covers a preStop sleep (if any) plus
// scgate's shutdown_delay and shutdown_timeout, with a margin. A preStop
// must not need a shell: the image has none.
func checkShutdown(t testing.TB, w *workload) {
	delay := w.cfg.duration(t, w.cfg.Server.ShutdownDelay, 5*time.Second)
	drain := w.cfg.duration(t, w.cfg.Server.ShutdownTimeout, 30*time.Second)
	var preStop time.Duration
	if lc := w.scgate.Lifecycle; lc != nil && lc.PreStop != nil {
		switch {
		case lc.PreStop.Sleep != nil:
			preStop = time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
		default:
			t.Errorf("%s: preStop %+v needs a shell or an HTTP handler; use a sleep action, or none (scgate delays itself)", w.name, lc.PreStop)
		}
	}
	grace := 30 * time.Second
	if w.spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*w.spec.TerminationGracePeriodSeconds) * time.Second
	}
	if need := preStop + delay + drain + graceMargin; grace < need {
		t.Errorf("%s: terminationGracePeriodSeconds %v < preStop %v + shutdown_delay %v + shutdown_timeout %v + margin %v",
			w.name, grace, preStop, delay, drain, graceMargin)
	}
	if !w.sidecar && delay == 0 && preStop == 0 {
		t.Errorf("%s: no shutdown_delay and no preStop: the Service would send requests to a stopping gateway", w.name)
	}
}

// checkSidecar: a native sidecar (restartPolicy Always) with a startupProbe
// (the app starts once scgate is ready), on loopback without TLS, and an app
// told where it is.
func checkSidecar(t testing.TB, w *workload) {
	if w.scgate.RestartPolicy == nil || *w.scgate.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("%s: scgate is an init container without restartPolicy: Always (not a native sidecar)", w.name)
	}
	host, port, err := net.SplitHostPort(w.cfg.Server.Listen)
	if err != nil || host != "127.0.0.1" {
		t.Errorf("%s: server.listen %q: a sidecar listens on 127.0.0.1 only", w.name, w.cfg.Server.Listen)
	}
	if w.cfg.Server.TLS != "off" && w.cfg.Server.TLS != "" {
		t.Errorf("%s: sidecar tls %q, want off (loopback)", w.name, w.cfg.Server.TLS)
	}
	want := "http://127.0.0.1:" + port
	found := false
	for _, c := range w.spec.Containers {
		for _, e := range c.Env {
			if u, err := url.Parse(e.Value); err == nil && u.Scheme == "http" && e.Value == want {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("%s: no app container is given %s", w.name, want)
	}
}

// selects reports whether a label selector picks the pod template.
func selects(t testing.TB, sel *metav1.LabelSelector, pod map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %+v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(pod))
}

// checkGateway checks the objects around a central gateway Deployment:
// replicas and spreading, Service, PDB, HPA, NetworkPolicy, Certificate.
func checkGateway(t testing.TB, w *workload) {
	b, d := w.b, w.deploy
	pod := d.Spec.Template.Labels
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	var hpaMin int32
	for _, h := range b.hpas {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
			hpaMin = 1
			if h.Spec.MinReplicas != nil {
				hpaMin = *h.Spec.MinReplicas
			}
			if h.Spec.MaxReplicas < hpaMin {
				t.Errorf("HPA %s: max %d < min %d", h.Name, h.Spec.MaxReplicas, hpaMin)
			}
		}
	}
	least := replicas
	if hpaMin > 0 {
		least = hpaMin // the HPA owns the replica count
	}
	if least < 2 {
		t.Errorf("%s: at least %d replicas: a central gateway needs 2 or more", w.name, least)
	}
	aff := d.Spec.Template.Spec.Affinity
	spread := false
	if aff != nil && aff.PodAntiAffinity != nil {
		for _, term := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			spread = spread || (term.TopologyKey == "kubernetes.io/hostname" && selects(t, term.LabelSelector, pod))
		}
		for _, wt := range aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			spread = spread || (wt.PodAffinityTerm.TopologyKey == "kubernetes.io/hostname" && selects(t, wt.PodAffinityTerm.LabelSelector, pod))
		}
	}
	if !spread {
		t.Errorf("%s: no pod anti-affinity over nodes that selects its own pods", w.name)
	}

	svcOK := false
	for _, s := range b.services {
		if !selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, pod) {
			continue
		}
		svcOK = true
		for _, p := range s.Spec.Ports {
			if _, ok := w.portOf(p.TargetPort); !ok {
				t.Errorf("Service %s: targetPort %s is no port of scgate", s.Name, p.TargetPort.String())
			}
		}
	}
	if !svcOK {
		t.Errorf("%s: no Service selects the gateway's pods", w.name)
	}
	checkHosts(t, w)
	pdbOK := false
	for _, p := range b.pdbs {
		if selects(t, p.Spec.Selector, pod) {
			pdbOK = true
			if p.Spec.MinAvailable != nil && p.Spec.MinAvailable.IntValue() >= int(least) {
				t.Errorf("PDB %s: minAvailable %s blocks every drain", p.Name, p.Spec.MinAvailable.String())
			}
		}
	}
	if !pdbOK {
		t.Errorf("%s: no PodDisruptionBudget selects the gateway's pods", w.name)
	}
	for _, np := range b.netpols {
		if selects(t, &np.Spec.PodSelector, pod) {
			checkNetworkPolicy(t, w, np.Name, np.Spec.Ingress, np.Spec.Egress)
		}
	}
	for _, c := range b.certificates {
		mounted := false
		for _, v := range w.spec.Volumes {
			mounted = mounted || (v.Secret != nil && v.Secret.SecretName == c.Spec.SecretName)
		}
		if !mounted {
			t.Errorf("Certificate %s: its Secret %s is not mounted by %s", c.Name, c.Spec.SecretName, w.name)
		}
		for _, s := range b.services {
			want := s.Name + "." + s.Namespace + ".svc"
			if !slices.Contains(c.Spec.DNSNames, want) {
				t.Errorf("Certificate %s: dnsNames %v lack the Service's name %s", c.Name, c.Spec.DNSNames, want)
			}
		}
	}
}

// checkHosts: server.hosts (the Host values scgate answers, others get 421)
// holds every name callers reach a Service of the gateway by: NAME,
// NAME.NAMESPACE, NAME.NAMESPACE.svc, NAME.NAMESPACE.svc.cluster.local, each
// with and without the Service's port.
func checkHosts(t testing.TB, w *workload) {
	for _, s := range w.b.services {
		if !selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, w.deploy.Spec.Template.Labels) {
			continue
		}
		base := s.Name + "." + s.Namespace
		for _, name := range []string{s.Name, base, base + ".svc", base + ".svc.cluster.local"} {
			want := []string{name}
			for _, p := range s.Spec.Ports {
				want = append(want, name+":"+strconv.Itoa(int(p.Port)))
			}
			for _, h := range want {
				if !slices.Contains(w.cfg.Server.Hosts, h) {
					t.Errorf("%s: server.hosts %q lacks %q: callers using that name would get 421", w.name, w.cfg.Server.Hosts, h)
				}
			}
		}
	}
}
