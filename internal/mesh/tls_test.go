package mesh

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

func fileCert(chain, key string) *v1alpha1.ListenerTLSFileCertificate {
	return &v1alpha1.ListenerTLSFileCertificate{CertificateChain: chain, PrivateKey: key}
}

func fileTrust(chain string, sans ...string) v1alpha1.TLSValidationContext {
	v := v1alpha1.TLSValidationContext{Trust: v1alpha1.TLSValidationContextTrust{File: &v1alpha1.TLSValidationContextFileTrust{CertificateChain: chain}}}
	if len(sans) > 0 {
		v.SubjectAlternativeNames = &v1alpha1.SubjectAlternativeNames{Match: v1alpha1.SubjectAlternativeNameMatchers{Exact: sans}}
	}
	return v
}

func withListenerTLS(t *v1alpha1.ListenerTLS) func(*v1alpha1.VirtualNode) {
	return func(vn *v1alpha1.VirtualNode) { vn.Spec.Listeners[0].TLS = t }
}

func withDefaultTLS(t *v1alpha1.ClientPolicyTLS) func(*v1alpha1.VirtualNode) {
	return func(vn *v1alpha1.VirtualNode) {
		vn.Spec.BackendDefaults = &v1alpha1.BackendDefaults{ClientPolicy: &v1alpha1.ClientPolicy{TLS: t}}
	}
}

func withBackendTLS(i int, t *v1alpha1.ClientPolicyTLS) func(*v1alpha1.VirtualNode) {
	return func(vn *v1alpha1.VirtualNode) {
		vn.Spec.Backends[i].VirtualService.ClientPolicy = &v1alpha1.ClientPolicy{TLS: t}
	}
}

func TestListenerTLS(t *testing.T) {
	sdsName := "web-cert"
	tests := []struct {
		name    string
		tls     *v1alpha1.ListenerTLS
		want    *snapshot.ListenerTLS
		problem []string // words of the expected problem of the node
	}{
		{name: "no tls"},
		{name: "disabled", tls: &v1alpha1.ListenerTLS{Mode: v1alpha1.ListenerTLSModeDisabled,
			Certificate: v1alpha1.ListenerTLSCertificate{File: fileCert("/c.pem", "/k.pem")}}},
		{name: "strict file", tls: &v1alpha1.ListenerTLS{Mode: v1alpha1.ListenerTLSModeStrict,
			Certificate: v1alpha1.ListenerTLSCertificate{File: fileCert("/c.pem", "/k.pem")}},
			want: &snapshot.ListenerTLS{Mode: "STRICT", CertificateChain: "/c.pem", PrivateKey: "/k.pem"}},
		{name: "permissive mutual", tls: &v1alpha1.ListenerTLS{Mode: v1alpha1.ListenerTLSModePermissive,
			Certificate: v1alpha1.ListenerTLSCertificate{File: fileCert("/c.pem", "/k.pem")},
			Validation: &v1alpha1.ListenerTLSValidationContext{
				Trust:                   v1alpha1.ListenerTLSValidationContextTrust{File: &v1alpha1.TLSValidationContextFileTrust{CertificateChain: "/ca.pem"}},
				SubjectAlternativeNames: &v1alpha1.SubjectAlternativeNames{Match: v1alpha1.SubjectAlternativeNameMatchers{Exact: []string{"client.shop"}}}}},
			want: &snapshot.ListenerTLS{Mode: "PERMISSIVE", CertificateChain: "/c.pem", PrivateKey: "/k.pem",
				Validation: &snapshot.TLSValidation{TrustChain: "/ca.pem", SubjectAlternativeNames: []string{"client.shop"}}}},
		{name: "strict sds is refused", tls: &v1alpha1.ListenerTLS{Mode: v1alpha1.ListenerTLSModeStrict,
			Certificate: v1alpha1.ListenerTLSCertificate{SDS: &v1alpha1.ListenerTLSSDSCertificate{SecretName: &sdsName}}},
			want:    &snapshot.ListenerTLS{Mode: "STRICT", Unavailable: "a certificate from sds cannot be loaded by this proxy"},
			problem: []string{"spec.listeners[0].tls.certificate.sds", "refuses every connection"}},
		{name: "permissive acm serves plaintext only", tls: &v1alpha1.ListenerTLS{Mode: v1alpha1.ListenerTLSModePermissive,
			Certificate: v1alpha1.ListenerTLSCertificate{ACM: &v1alpha1.ListenerTLSACMCertificate{CertificateARN: "arn:x"}}},
			want:    &snapshot.ListenerTLS{Mode: "PERMISSIVE", Unavailable: "a certificate from acm cannot be loaded by this proxy"},
			problem: []string{"certificate.acm", "plaintext only"}},
		{name: "sds trust is refused", tls: &v1alpha1.ListenerTLS{Mode: v1alpha1.ListenerTLSModeStrict,
			Certificate: v1alpha1.ListenerTLSCertificate{File: fileCert("/c.pem", "/k.pem")},
			Validation: &v1alpha1.ListenerTLSValidationContext{Trust: v1alpha1.ListenerTLSValidationContextTrust{
				SDS: &v1alpha1.TLSValidationContextSDSTrust{SecretName: &sdsName}}}},
			want: &snapshot.ListenerTLS{Mode: "STRICT", CertificateChain: "/c.pem", PrivateKey: "/k.pem",
				Validation:  &snapshot.TLSValidation{},
				Unavailable: "trusted authorities from sds cannot be loaded by this proxy"},
			problem: []string{"validation.trust.sds", "refuses every connection"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := shop()
			in.VirtualNodes[0] = newNode("shop", "web-v1", withListenerTLS(tt.tls))
			s, ps := compile(t, in, "VirtualNode/shop/web-v1", nil)
			got := listener(t, s, "ingress-8080").TLS
			if dump(got) != dump(tt.want) {
				t.Fatalf("listener TLS:\n%s\nwant\n%s", dump(got), dump(tt.want))
			}
			if tt.problem != nil && !hasProblem(ps, "VirtualNode/shop/web-v1", false, tt.problem...) {
				t.Fatalf("no problem with %q in %v", tt.problem, ps)
			}
			if tt.problem == nil && len(ps) > 0 {
				t.Fatalf("problems: %v", ps)
			}
		})
	}
}

func TestClientTLS(t *testing.T) {
	strict := &v1alpha1.ClientPolicyTLS{Enforce: ptr(true), Validation: fileTrust("/ca.pem", "web.shop")}
	mutual := &v1alpha1.ClientPolicyTLS{Enforce: ptr(true), Validation: fileTrust("/ca2.pem"),
		Certificate: &v1alpha1.ClientTLSCertificate{File: fileCert("/client.pem", "/client-key.pem")}}
	web := &snapshot.ClientTLS{Validation: snapshot.TLSValidation{TrustChain: "/ca.pem", SubjectAlternativeNames: []string{"web.shop"}}, SNI: "web.shop"}
	tests := []struct {
		name    string
		mods    []func(*v1alpha1.VirtualNode)
		want    map[string]*snapshot.ClientTLS // by cluster
		problem []string
	}{
		{name: "no policy", want: map[string]*snapshot.ClientTLS{"shop/web-v1": nil, "shop/web-v2": nil}},
		{name: "backend defaults", mods: []func(*v1alpha1.VirtualNode){withDefaultTLS(strict)},
			want: map[string]*snapshot.ClientTLS{"shop/web-v1": web, "shop/web-v2": web}},
		{name: "backend overrides defaults", mods: []func(*v1alpha1.VirtualNode){withDefaultTLS(strict), withBackendTLS(0, mutual)},
			want: map[string]*snapshot.ClientTLS{"shop/web-v1": {Validation: snapshot.TLSValidation{TrustChain: "/ca2.pem"},
				CertificateChain: "/client.pem", PrivateKey: "/client-key.pem", SNI: "web.shop"}}},
		{name: "not enforced", mods: []func(*v1alpha1.VirtualNode){withDefaultTLS(&v1alpha1.ClientPolicyTLS{Enforce: ptr(false), Validation: fileTrust("/ca.pem")})},
			want: map[string]*snapshot.ClientTLS{"shop/web-v1": nil}},
		{name: "ports that match", mods: []func(*v1alpha1.VirtualNode){withDefaultTLS(&v1alpha1.ClientPolicyTLS{Ports: []v1alpha1.PortNumber{8080}, Validation: fileTrust("/ca.pem", "web.shop")})},
			want: map[string]*snapshot.ClientTLS{"shop/web-v1": web}},
		{name: "ports that do not", mods: []func(*v1alpha1.VirtualNode){withDefaultTLS(&v1alpha1.ClientPolicyTLS{Ports: []v1alpha1.PortNumber{9090}, Validation: fileTrust("/ca.pem")})},
			want: map[string]*snapshot.ClientTLS{"shop/web-v1": nil}},
		{name: "acm trust refuses", mods: []func(*v1alpha1.VirtualNode){withDefaultTLS(&v1alpha1.ClientPolicyTLS{Validation: v1alpha1.TLSValidationContext{
			Trust: v1alpha1.TLSValidationContextTrust{ACM: &v1alpha1.TLSValidationContextACMTrust{CertificateAuthorityARNs: []string{"arn:ca"}}}}})},
			want: map[string]*snapshot.ClientTLS{"shop/web-v1": {SNI: "web.shop",
				Unavailable: "trusted authorities from acm cannot be loaded by this proxy"}},
			problem: []string{"spec.backendDefaults.clientPolicy.tls.validation.trust.acm", "refused rather than sent unencrypted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := shop()
			in.VirtualNodes[2] = newNode("shop", "client", append([]func(*v1alpha1.VirtualNode){withBackends("web")}, tt.mods...)...)
			s, ps := compile(t, in, "VirtualNode/shop/client", nil)
			for name, want := range tt.want {
				cl := cluster(s, name)
				if cl == nil {
					t.Fatalf("no cluster %s: %s", name, clusterNames(s))
				}
				if dump(cl.TLS) != dump(want) {
					t.Errorf("cluster %s TLS:\n%s\nwant\n%s", name, dump(cl.TLS), dump(want))
				}
			}
			if tt.problem != nil && !hasProblem(ps, "VirtualNode/shop/client", false, tt.problem...) {
				t.Fatalf("no problem with %q in %v", tt.problem, ps)
			}
			if tt.problem == nil && len(ps) > 0 {
				t.Fatalf("problems: %v", ps)
			}
			// The nodes called keep their plain clusters: a client's policy is its own.
			web, _ := compile(t, in, "VirtualNode/shop/web-v1", nil)
			if cl := cluster(web, "local:shop/web-v1"); cl == nil || cl.TLS != nil {
				t.Fatalf("local cluster of web-v1: %s", dump(cl))
			}
		})
	}
}

// A policy removed from the node leaves no TLS behind in a cluster kept from the
// previous snapshot.
func TestClientTLSRemoved(t *testing.T) {
	in := shop()
	in.VirtualNodes[2] = newNode("shop", "client", withBackends("web"), withDefaultTLS(&v1alpha1.ClientPolicyTLS{Validation: fileTrust("/ca.pem")}))
	prev, _ := compile(t, in, "VirtualNode/shop/client", nil)
	if cluster(prev, "shop/web-v1").TLS == nil {
		t.Fatalf("no TLS: %s", dump(prev))
	}
	in.VirtualNodes[2] = newNode("shop", "client", withBackends("web"))
	s, _ := compile(t, in, "VirtualNode/shop/client", prev)
	if cl := cluster(s, "shop/web-v1"); cl.TLS != nil {
		t.Fatalf("TLS kept: %s", dump(cl))
	}
	if s.Version != prev.Version+1 {
		t.Fatalf("version %d after %d: the change must show", s.Version, prev.Version)
	}
}

func TestGatewayTLS(t *testing.T) {
	vg := newGateway("shop", "gw", &metav1.LabelSelector{}, nil)
	vg.Spec.Listeners[0].TLS = &v1alpha1.VirtualGatewayListenerTLS{Mode: v1alpha1.ListenerTLSModeStrict,
		Certificate: v1alpha1.ListenerTLSCertificate{File: fileCert("/gw.pem", "/gw-key.pem")}}
	vg.Spec.BackendDefaults = &v1alpha1.BackendDefaults{ClientPolicy: &v1alpha1.ClientPolicy{
		TLS: &v1alpha1.ClientPolicyTLS{Validation: fileTrust("/ca.pem")}}}
	in := gatewayShop(vg)
	s, _ := compile(t, in, "VirtualGateway/shop/gw", nil)
	want := &snapshot.ListenerTLS{Mode: "STRICT", CertificateChain: "/gw.pem", PrivateKey: "/gw-key.pem"}
	if got := listener(t, s, "gateway-8088").TLS; dump(got) != dump(want) {
		t.Fatalf("listener TLS: %s", dump(got))
	}
	for _, name := range []string{"shop/web-v1", "shop/web-v2"} {
		cl := cluster(s, name)
		if cl == nil || cl.TLS == nil || cl.TLS.Validation.TrustChain != "/ca.pem" || cl.TLS.SNI != "web.shop" {
			t.Fatalf("cluster %s: %s", name, dump(cl))
		}
	}
}

func TestSnapshotTLSConsistent(t *testing.T) {
	s := &snapshot.Snapshot{Listeners: []snapshot.Listener{{Name: "ingress-1", Kind: snapshot.Gateway,
		TLS: &snapshot.ListenerTLS{Mode: "DISABLED", CertificateChain: "/c.pem"}}},
		Clusters: []snapshot.Cluster{{Name: "a", TLS: &snapshot.ClientTLS{CertificateChain: "/c.pem"}}}}
	err := s.Consistent()
	for _, want := range []string{`TLS mode "DISABLED"`, "listener ingress-1: TLS needs both", "cluster a: TLS needs both", "cluster a: TLS validation names no trusted chain"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want a problem with %q in %v", want, err)
		}
	}
}

// A node run by the standalone supervisor is reached at its workload instances, plain
// programs on loopback: a caller's client policy does not wrap that hop in TLS, and the
// node's own listener TLS is reported as not in the path, in the embedded topology only.
func TestTLSOfSupervisedNodes(t *testing.T) {
	in := shop()
	in.VirtualNodes[0].Spec.PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web-v1"}}
	in.VirtualNodes[0].Spec.Listeners[0].TLS = &v1alpha1.ListenerTLS{Mode: v1alpha1.ListenerTLSModeStrict,
		Certificate: v1alpha1.ListenerTLSCertificate{File: fileCert("/web.pem", "/web-key.pem")}}
	in.Workloads = append(in.Workloads, newWorkload("shop", "web-v1", map[string]string{"app": "web-v1"},
		v1alpha1.WorkloadInstance{Port: 41001, Ready: true}))
	in.VirtualNodes[2] = newNode("shop", "client", withBackends("web"),
		withDefaultTLS(&v1alpha1.ClientPolicyTLS{Validation: fileTrust("/ca.pem", "web.shop")}))

	s, _ := compile(t, in, "VirtualNode/shop/client", nil)
	if cl := cluster(s, "shop/web-v1"); cl == nil || cl.TLS != nil {
		t.Errorf("supervised web-v1 from the client: %s, want no TLS towards its instances", dump(cl))
	}
	if cl := cluster(s, "shop/web-v2"); cl == nil || cl.TLS == nil {
		t.Errorf("web-v2, not supervised: %s, want the client policy's TLS", dump(cl))
	}

	_, ps := compile(t, in, "VirtualNode/shop/web-v1", nil)
	if !hasProblem(ps, "VirtualNode/shop/web-v1", false, "spec.listeners[0].tls", "reached directly on loopback") {
		t.Errorf("the bypassed listener TLS is not reported: %v", ps)
	}
	_, ps, err := Compile(in, "VirtualNode/shop/web-v1", nil, Options{Sidecar: true})
	if err != nil {
		t.Fatal(err)
	}
	if hasProblem(ps, "VirtualNode/shop/web-v1", false, "reached directly on loopback") {
		t.Errorf("reported beside a sidecar, where the listener is in the path: %v", ps)
	}
}
