package deploy

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// peer is a client of a pod: its namespace and address.
type peer struct {
	namespace string
	addr      netip.Addr
}

// admits reports whether the NetworkPolicies of b let p reach the scgate
// pod w on port/proto, as a conformant CNI applies them: a pod selected by
// no Ingress policy admits everyone; else some rule of a selecting policy
// must match both the peer and the port. A rule's pod selector is taken to
// match any pod of a matching namespace (an attacker picks their labels).
func admits(t testing.TB, w *workload, p peer, port int32, proto corev1.Protocol) bool {
	t.Helper()
	selected := false
	for _, np := range w.b.netpols {
		if np.Namespace != w.namespace || !selectsPod(t, &np.Spec.PodSelector, w.meta.Labels) || !hasIngress(np) {
			continue
		}
		selected = true
		for _, r := range np.Spec.Ingress {
			if portMatches(w, r.Ports, port, proto) && peerMatches(t, np.Namespace, r.From, p) {
				return true
			}
		}
	}
	return !selected
}

// selectsPod is selects, except that an empty selector picks every pod.
func selectsPod(t testing.TB, sel *metav1.LabelSelector, pod map[string]string) bool {
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return true
	}
	return selects(t, sel, pod)
}

func hasIngress(np *networkingv1.NetworkPolicy) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return true
	}
	for _, pt := range np.Spec.PolicyTypes {
		if pt == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

func portMatches(w *workload, ports []networkingv1.NetworkPolicyPort, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, pp := range ports {
		pr := corev1.ProtocolTCP
		if pp.Protocol != nil {
			pr = *pp.Protocol
		}
		if pr != proto {
			continue
		}
		if pp.Port == nil {
			return true
		}
		lo, ok := w.portOf(*pp.Port)
		if !ok {
			lo = pp.Port.IntVal
		}
		hi := lo
		if pp.EndPort != nil {
			hi = *pp.EndPort
		}
		if port >= lo && port <= hi {
			return true
		}
	}
	return false
}

func peerMatches(t testing.TB, policyNS string, from []networkingv1.NetworkPolicyPeer, p peer) bool {
	if len(from) == 0 {
		return true
	}
	for _, f := range from {
		switch {
		case f.IPBlock != nil:
			pfx, err := netip.ParsePrefix(f.IPBlock.CIDR)
			if err != nil {
				t.Errorf("ipBlock %q: %v", f.IPBlock.CIDR, err)
				continue
			}
			if !pfx.Contains(p.addr) {
				continue
			}
			excluded := false
			for _, e := range f.IPBlock.Except {
				if ex, err := netip.ParsePrefix(e); err == nil && ex.Contains(p.addr) {
					excluded = true
				}
			}
			if !excluded {
				return true
			}
		case f.NamespaceSelector != nil:
			if selectsPod(t, f.NamespaceSelector, map[string]string{"kubernetes.io/metadata.name": p.namespace}) {
				return true
			}
		case f.PodSelector != nil:
			if p.namespace == policyNS {
				return true
			}
		}
	}
	return false
}

// checkAdminPortClosed: scgate's admin port (its /metrics names callers,
// keys, prefixes and expiry) admits the monitoring namespace and nobody
// else: not the pod's own namespace, not a caller's namespace, not an
// address outside the cluster. A gateway's TLS port admits its callers'
// namespaces only; a sidecar's app keeps its other ports.
func checkAdminPortClosed(t testing.TB, w *workload) {
	t.Helper()
	admin := listenPort(t, "admin.listen", w.cfg.Admin.Listen)
	pod := netip.MustParseAddr("10.244.7.9")
	outside := netip.MustParseAddr("198.51.100.7")
	for _, p := range []peer{{w.namespace, pod}, {"radio", pod}, {"attacker", pod}, {"", outside}} {
		if admits(t, w, p, admin, corev1.ProtocolTCP) {
			t.Errorf("%s: the admin port %d admits %s (%s): only the monitoring namespace may scrape it", w.name, admin, p.namespace, p.addr)
		}
	}
	if !admits(t, w, peer{"monitoring", pod}, admin, corev1.ProtocolTCP) {
		t.Errorf("%s: the admin port %d does not admit the monitoring namespace: Prometheus cannot scrape it", w.name, admin)
	}
	if w.sidecar {
		if !admits(t, w, peer{"radio", pod}, 8081, corev1.ProtocolTCP) {
			t.Errorf("%s: the NetworkPolicy closes the app's own port 8081 too", w.name)
		}
		return
	}
	https := listenPort(t, "server.listen", w.cfg.Server.Listen)
	if admits(t, w, peer{"attacker", pod}, https, corev1.ProtocolTCP) {
		t.Errorf("%s: the TLS port admits a namespace that is not a caller's", w.name)
	}
	for _, ns := range callerNamespaces(t, w.b, w) {
		if !admits(t, w, peer{ns, pod}, https, corev1.ProtocolTCP) {
			t.Errorf("%s: the TLS port does not admit caller namespace %s", w.name, ns)
		}
	}
}
