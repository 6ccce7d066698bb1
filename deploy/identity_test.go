package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// certRequest is what a CertificateRequest asks scgate's issuer for, and who
// asks: cert-manager's controller for a Certificate, or a user directly.
type certRequest struct {
	namespace, requester   string
	issuerKind, issuerName string
	uris, dnsNames, usages []string
	commonName             string
	isCA                   bool
}

// policyVerdict is approver-policy's answer: approved by some policy,
// denied by the policies that apply, or no policy applies (never signed).
type policyVerdict string

const (
	approved  policyVerdict = "approved"
	denied    policyVerdict = "denied"
	unmatched policyVerdict = "unmatched"
)

// evaluatePolicies decides a request the way approver-policy does, for the
// parts of a CertificateRequestPolicy scgate's policies use: a policy
// applies if its requester is bound to it (RBAC verb "use") and its
// selector matches the issuer and the namespace; the request is approved if
// one applicable policy permits everything it asks for, with the CEL
// validations evaluated by cel-go. Fields a policy does not allow must be
// empty in the request.
func evaluatePolicies(t testing.TB, b *bundle, req certRequest) (policyVerdict, []string) {
	t.Helper()
	var reasons []string
	applicable := 0
	for _, p := range b.requestPolicies {
		if !b.boundTo(p.GetName(), req.requester) || !policySelects(t, p, req) {
			continue
		}
		applicable++
		why := policyPermits(t, p, req)
		if len(why) == 0 {
			return approved, nil
		}
		for _, w := range why {
			reasons = append(reasons, p.GetName()+": "+w)
		}
	}
	if applicable == 0 {
		return unmatched, nil
	}
	return denied, reasons
}

// boundTo: some ClusterRoleBinding gives the requester (a service account
// "system:serviceaccount:NS:NAME") verb "use" on the policy.
func (b *bundle) boundTo(policy, requester string) bool {
	for _, crb := range b.bindings {
		subject := false
		for _, s := range crb.Subjects {
			subject = subject || (s.Kind == "ServiceAccount" && requester == "system:serviceaccount:"+s.Namespace+":"+s.Name)
		}
		if !subject || crb.RoleRef.Kind != "ClusterRole" {
			continue
		}
		for _, cr := range b.clusterRoles {
			if cr.Name != crb.RoleRef.Name {
				continue
			}
			for _, r := range cr.Rules {
				if slices.Contains(r.APIGroups, "policy.cert-manager.io") && slices.Contains(r.Resources, "certificaterequestpolicies") &&
					slices.Contains(r.Verbs, "use") && (len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, policy)) {
					return true
				}
			}
		}
	}
	return false
}

// wildcard matches approver-policy's patterns, where * is any run of characters.
func wildcard(pattern, s string) bool {
	re := "^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + "$"
	return regexp.MustCompile(re).MatchString(s)
}

func nestedString(u *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	return s
}

func policySelects(t testing.TB, p *unstructured.Unstructured, req certRequest) bool {
	t.Helper()
	for field, got := range map[string]string{"name": req.issuerName, "kind": req.issuerKind, "group": "cert-manager.io"} {
		if want, ok, _ := unstructured.NestedString(p.Object, "spec", "selector", "issuerRef", field); ok && !wildcard(want, got) {
			return false
		}
	}
	names, ok, _ := unstructured.NestedStringSlice(p.Object, "spec", "selector", "namespace", "matchNames")
	if ok {
		return slices.ContainsFunc(names, func(n string) bool { return wildcard(n, req.namespace) })
	}
	return true
}

// policyPermits returns why the policy refuses the request (nothing: it permits it).
func policyPermits(t testing.TB, p *unstructured.Unstructured, req certRequest) []string {
	t.Helper()
	var why []string
	allowed, _, _ := unstructured.NestedMap(p.Object, "spec", "allowed")
	stringSlice := func(field string, got []string) {
		spec, ok := allowed[field].(map[string]any)
		if !ok {
			if len(got) > 0 {
				why = append(why, fmt.Sprintf("%s %v not allowed", field, got))
			}
			return
		}
		if req, _ := spec["required"].(bool); req && len(got) == 0 {
			why = append(why, field+" required")
		}
		values, hasValues := spec["values"].([]any)
		rules, _ := spec["validations"].([]any)
		for _, g := range got {
			if hasValues && !slices.ContainsFunc(values, func(v any) bool { return wildcard(v.(string), g) }) {
				why = append(why, fmt.Sprintf("%s %q matches no allowed value", field, g))
				continue
			}
			for _, r := range rules {
				rule := r.(map[string]any)["rule"].(string)
				if !celRule(t, rule, g, req.namespace) {
					why = append(why, fmt.Sprintf("%s %q fails %s", field, g, rule))
				}
			}
		}
	}
	stringSlice("uris", req.uris)
	stringSlice("dnsNames", req.dnsNames)
	if req.commonName != "" {
		if _, ok := allowed["commonName"]; !ok {
			why = append(why, "commonName not allowed")
		}
	}
	if isCA, _ := allowed["isCA"].(bool); req.isCA && !isCA {
		why = append(why, "isCA not allowed")
	}
	usages, _ := allowed["usages"].([]any)
	for _, u := range req.usages {
		if !slices.Contains(usages, any(u)) {
			why = append(why, fmt.Sprintf("usage %q not allowed", u))
		}
	}
	return why
}

// celRule evaluates a validation as approver-policy does: self is the value,
// cr holds the request's namespace and name.
func celRule(t testing.TB, rule, self, namespace string) bool {
	t.Helper()
	env, err := cel.NewEnv(cel.Variable("self", cel.StringType), cel.Variable("cr", cel.MapType(cel.StringType, cel.StringType)))
	if err != nil {
		t.Fatal(err)
	}
	ast, iss := env.Compile(rule)
	if iss.Err() != nil {
		t.Fatalf("CEL rule %q: %v", rule, iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		t.Fatalf("CEL rule %q: %v", rule, err)
	}
	out, _, err := prg.Eval(map[string]any{"self": self, "cr": map[string]string{"namespace": namespace, "name": "req-1"}})
	if err != nil {
		t.Fatalf("CEL rule %q on %q: %v", rule, self, err)
	}
	v, ok := out.Value().(bool)
	return ok && v
}

// checkCallerIdentity: the gateway's client CA comes from a Certificate whose
// issuer is scgate's own, and approver-policy lets a namespace's
// Certificates get only that namespace's SPIFFE IDs, and only scgate's
// namespace a serving certificate for the Service's names. It plays
// requests from legitimate callers and from attackers against the policies.
func checkCallerIdentity(t testing.TB, b *bundle, w *workload) {
	t.Helper()
	if w.cfg.Server.ClientCAFile == "" {
		return
	}
	_, vol := w.mountFor(w.cfg.Server.ClientCAFile)
	if vol == nil || vol.Secret == nil {
		t.Fatalf("%s: client_ca_file %s is not on a Secret volume", w.name, w.cfg.Server.ClientCAFile)
	}
	cert := b.certificateFor(vol.Secret.SecretName)
	if cert == nil {
		t.Logf("%s: the client CA Secret %s is not from a Certificate here: ops provide it", w.name, vol.Secret.SecretName)
		return
	}
	issuer := cert.Spec.IssuerRef
	if issuer.Kind != "ClusterIssuer" && issuer.Kind != "Issuer" {
		t.Errorf("Certificate %s: issuer kind %q", cert.Name, issuer.Kind)
	}
	if strings.Contains(issuer.Name, "internal") || issuer.Name == "" {
		t.Errorf("Certificate %s: issuer %q looks like a general-purpose issuer; scgate's client CA must be its own", cert.Name, issuer.Name)
	}
	if len(w.cfg.Identity.MTLS.TrustDomains) == 0 {
		t.Errorf("%s: identity.mtls.trust_domains is empty: a certificate from any trust domain would be accepted", w.name)
	}
	if len(b.requestPolicies) == 0 {
		t.Fatalf("%s: no CertificateRequestPolicy: anyone who can create a Certificate for issuer %s becomes any caller", b, issuer.Name)
	}
	callerNS := callerNamespaces(t, b, w)
	if len(callerNS) == 0 {
		t.Fatalf("%s: no caller namespaces in the NetworkPolicy", w.name)
	}
	td := w.cfg.Identity.MTLS.TrustDomains[0]
	certManager := "system:serviceaccount:cert-manager:cert-manager"
	ns := callerNS[0]
	other := "kube-public"
	if len(callerNS) > 1 {
		other = callerNS[1]
	}
	client := func(namespace string, uris ...string) certRequest {
		return certRequest{namespace: namespace, requester: certManager, issuerKind: issuer.Kind, issuerName: issuer.Name,
			uris: uris, usages: []string{"client auth", "digital signature", "key encipherment"}}
	}
	withCN := client(ns, fmt.Sprintf("spiffe://%s/ns/%s/sa/stats", td, ns))
	withCN.commonName = "stats"
	asCA := client(ns, fmt.Sprintf("spiffe://%s/ns/%s/sa/stats", td, ns))
	asCA.isCA = true
	direct := client(ns, fmt.Sprintf("spiffe://%s/ns/%s/sa/stats", td, ns))
	direct.requester = "system:serviceaccount:" + ns + ":stats"
	serverAuth := client(ns, fmt.Sprintf("spiffe://%s/ns/%s/sa/stats", td, ns))
	serverAuth.usages = []string{"server auth"}
	serving := func(namespace string, names ...string) certRequest {
		return certRequest{namespace: namespace, requester: certManager, issuerKind: issuer.Kind, issuerName: issuer.Name,
			dnsNames: names, usages: []string{"server auth"}}
	}
	for _, tc := range []struct {
		name string
		req  certRequest
		want []policyVerdict
	}{
		{"a caller gets its own namespace's SPIFFE ID", client(ns, fmt.Sprintf("spiffe://%s/ns/%s/sa/stats", td, ns)), []policyVerdict{approved}},
		{"the gateway's own serving certificate", serving(w.namespace, cert.Spec.DNSNames...), []policyVerdict{approved}},
		{"another namespace's SPIFFE ID", client(ns, fmt.Sprintf("spiffe://%s/ns/%s/sa/stats", td, other)), []policyVerdict{denied}},
		{"a SPIFFE ID of a foreign trust domain", client(ns, fmt.Sprintf("spiffe://evil.example/ns/%s/sa/stats", ns)), []policyVerdict{denied}},
		{"extra path segments smuggling another namespace", client(ns, fmt.Sprintf("spiffe://%s/ns/%s/sa/x/ns/%s/sa/stats", td, ns, other)), []policyVerdict{denied}},
		{"a namespace that does not call scgate", client("attacker", fmt.Sprintf("spiffe://%s/ns/attacker/sa/x", td)), []policyVerdict{denied, unmatched}},
		{"a caller asking for a DNS name too", func() certRequest {
			r := client(ns, fmt.Sprintf("spiffe://%s/ns/%s/sa/stats", td, ns))
			r.dnsNames = []string{cert.Spec.DNSNames[0]}
			return r
		}(), []policyVerdict{denied}},
		{"a caller asking for server auth", serverAuth, []policyVerdict{denied}},
		{"a caller asking for a common name", withCN, []policyVerdict{denied}},
		{"a caller asking for a CA", asCA, []policyVerdict{denied}},
		{"a CertificateRequest made directly, not by cert-manager", direct, []policyVerdict{unmatched}},
		{"a serving certificate from a caller namespace", serving(ns, cert.Spec.DNSNames...), []policyVerdict{denied}},
		{"a serving certificate for a foreign name", serving(w.namespace, "radio.example.com"), []policyVerdict{denied}},
		{"a certificate with neither name", serving(w.namespace), []policyVerdict{denied}},
	} {
		got, why := evaluatePolicies(t, b, tc.req)
		if !slices.Contains(tc.want, got) {
			t.Errorf("%s: %s: %s (%v), want %v", b, tc.name, got, why, tc.want)
		}
	}
}

// callerNamespaces are the namespaces the gateway's NetworkPolicy admits to
// its TLS port.
func callerNamespaces(t testing.TB, b *bundle, w *workload) []string {
	t.Helper()
	var out []string
	for _, np := range b.netpols {
		if !selects(t, &np.Spec.PodSelector, w.meta.Labels) {
			continue
		}
		for _, r := range np.Spec.Ingress {
			for _, from := range r.From {
				if from.NamespaceSelector == nil {
					continue
				}
				for _, e := range from.NamespaceSelector.MatchExpressions {
					if e.Key == "kubernetes.io/metadata.name" && e.Operator == "In" {
						out = append(out, e.Values...)
					}
				}
			}
		}
	}
	return out
}

// TestCallerIdentityBase: the plain gateway with deploy/kubernetes/caller-identity
// hands out identities only as the policies say.
func TestCallerIdentityBase(t *testing.T) {
	b := loadDir(t, "kubernetes/gateway")
	ci := loadDir(t, "kubernetes/caller-identity")
	for _, m := range ci.metas() {
		if m.Namespace != "" {
			t.Errorf("%s: %s is namespaced (%s); this base holds cluster-wide objects only", ci, m.Name, m.Namespace)
		}
	}
	if len(ci.issuers) != 1 || ci.issuers[0].Spec.CA == nil {
		t.Fatalf("%s: want one CA ClusterIssuer", ci)
	}
	b.issuers, b.clusterRoles, b.bindings, b.requestPolicies = ci.issuers, ci.clusterRoles, ci.bindings, ci.requestPolicies
	ws := workloads(t, b)
	ws[0].load(t)
	if got := b.certificates[0].Spec.IssuerRef.Name; got != ci.issuers[0].Name {
		t.Errorf("the gateway's Certificate uses issuer %q, not scgate's own %q", got, ci.issuers[0].Name)
	}
	checkCallerIdentity(t, b, ws[0])
}

// TestChecksCatchAnOpenIssuer: without the policies, or with a policy that
// does not bind the namespace, the identity check fails.
func TestChecksCatchAnOpenIssuer(t *testing.T) {
	for name, mutate := range map[string]func(*bundle){
		"no policies": func(b *bundle) { b.requestPolicies = nil },
		"no namespace binding": func(b *bundle) {
			for _, p := range b.requestPolicies {
				_ = unstructured.SetNestedSlice(p.Object, nil, "spec", "allowed", "uris", "validations")
			}
		},
		"every namespace selected and any URI": func(b *bundle) {
			for _, p := range b.requestPolicies {
				unstructured.RemoveNestedField(p.Object, "spec", "selector", "namespace")
				_ = unstructured.SetNestedSlice(p.Object, []any{"*"}, "spec", "allowed", "uris", "values")
				_ = unstructured.SetNestedSlice(p.Object, nil, "spec", "allowed", "uris", "validations")
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := loadDir(t, "kubernetes/gateway")
			ci := loadDir(t, "kubernetes/caller-identity")
			b.issuers, b.clusterRoles, b.bindings, b.requestPolicies = ci.issuers, ci.clusterRoles, ci.bindings, ci.requestPolicies
			mutate(b)
			w := workloads(t, b)[0]
			w.load(t)
			rec := &recorder{TB: t}
			rec.run(func() { checkCallerIdentity(rec, b, w) })
			if len(rec.errs) == 0 {
				t.Error("the identity checks passed on an issuer that hands out identities")
			}
		})
	}
}
