package mesh

import (
	"reflect"
	"strings"
	"testing"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

func TestDomains(t *testing.T) {
	tests := []struct {
		name, ns, vsName string
		awsName          *string
		want             []string
	}{
		{"default App Mesh name", "shop", "web", nil,
			[]string{"web.shop", "web.shop.svc", "web.shop.svc.cluster.local"}},
		{"awsName set", "shop", "web", ptr("web.example.internal"),
			[]string{"web.example.internal", "web.shop", "web.shop.svc", "web.shop.svc.cluster.local"}},
		{"awsName equal to a Kubernetes name", "shop", "web", ptr("web.shop.svc.cluster.local"),
			[]string{"web.shop.svc.cluster.local", "web.shop", "web.shop.svc"}},
		{"imported from v1beta1", "case-study", "hello.case-study.svc.cluster.local", ptr("hello.case-study.svc.cluster.local"),
			[]string{"hello.case-study.svc.cluster.local", "hello.case-study.svc.cluster.local.case-study",
				"hello.case-study.svc.cluster.local.case-study.svc", "hello.case-study.svc.cluster.local.case-study.svc.cluster.local"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := shop()
			vs := newNodeService(tt.ns, tt.vsName, "web-v1")
			vs.Spec.Provider.VirtualNode.VirtualNodeRef.Namespace = ptr("shop")
			vs.Spec.AWSName = tt.awsName
			in.VirtualServices = []*v1alpha1.VirtualService{vs}
			s, ps := compile(t, in, snapshot.EgressNode, nil)
			vh := virtualHost(s, "egress", tt.ns+"/"+tt.vsName)
			if vh == nil {
				t.Fatalf("no virtual host; problems %v", ps)
			}
			if !reflect.DeepEqual(vh.Domains, tt.want) {
				t.Errorf("domains %v, want %v", vh.Domains, tt.want)
			}
		})
	}
}

func TestDomainClaimedTwice(t *testing.T) {
	in := shop()
	a := newNodeService("shop", "a", "web-v1")
	a.Spec.AWSName = ptr("b.shop")
	b := newNodeService("shop", "b", "web-v2")
	in.VirtualServices = []*v1alpha1.VirtualService{a, b}
	s, ps := compile(t, in, snapshot.EgressNode, nil)
	if got := virtualHost(s, "egress", "shop/a").Domains; !reflect.DeepEqual(got, []string{"b.shop", "a.shop", "a.shop.svc", "a.shop.svc.cluster.local"}) {
		t.Errorf("shop/a domains %v", got)
	}
	if got := virtualHost(s, "egress", "shop/b").Domains; !reflect.DeepEqual(got, []string{"b.shop.svc", "b.shop.svc.cluster.local"}) {
		t.Errorf("shop/b domains %v (its derived name b.shop is another service's App Mesh name)", got)
	}
	if !hasProblem(ps, "VirtualService/shop/b", false, `"b.shop"`, "shop/a") {
		t.Errorf("problems %v", ps)
	}
}

func TestProviders(t *testing.T) {
	in := shop()
	grpcNode := newNode("shop", "rpc")
	grpcNode.Spec.Listeners[0].PortMapping.Protocol = v1alpha1.PortProtocolGRPC
	in.VirtualNodes = append(in.VirtualNodes, grpcNode)
	in.VirtualServices = append(in.VirtualServices, newNodeService("shop", "direct", "web-v1"), newNodeService("shop", "rpc", "rpc"))
	s, ps := compile(t, in, snapshot.EgressNode, nil)
	if ps != nil {
		t.Fatalf("problems %v", ps)
	}
	direct := virtualHost(s, "egress", "shop/direct")
	want := []snapshot.Route{{Name: "shop/direct/virtualNode", Priority: unsetPriority, Protocol: "http",
		Match: snapshot.Match{Prefix: "/"}, Targets: []snapshot.WeightedCluster{{Cluster: "shop/web-v1", Weight: 100}}}}
	if !reflect.DeepEqual(direct.Routes, want) {
		t.Errorf("virtual node provider: %s", dump(direct.Routes))
	}
	rpc := virtualHost(s, "egress", "shop/rpc").Routes[0]
	if rpc.Protocol != "grpc" || rpc.Match.Prefix != "" || rpc.Targets[0].Cluster != "shop/rpc" {
		t.Errorf("grpc node provider: %s", dump(rpc))
	}
	routed := virtualHost(s, "egress", "shop/web").Routes
	if len(routed) != 1 || routed[0].Name != "shop/web/split" || len(routed[0].Targets) != 2 {
		t.Errorf("virtual router provider: %s", dump(routed))
	}
	if got := clusterNames(s); got != "shop/rpc shop/web-v1 shop/web-v2" {
		t.Errorf("clusters %q: every node a route reaches, once", got)
	}
}

func TestServiceWithoutProvider(t *testing.T) {
	in := shop()
	vs := newRouterService("shop", "later", "x")
	vs.Spec.Provider = nil
	in.VirtualServices = append(in.VirtualServices, vs)
	s, ps := compile(t, in, snapshot.EgressNode, nil)
	vh := virtualHost(s, "egress", "shop/later")
	if vh == nil || len(vh.Routes) != 0 {
		t.Errorf("a service without provider is served with no routes: %s", dump(vh))
	}
	if !hasProblem(ps, "VirtualService/shop/later", false, "spec.provider", "no routes") {
		t.Errorf("problems %v", ps)
	}
}

func TestProviderARNAndMissing(t *testing.T) {
	tests := []struct {
		name  string
		vs    func() *v1alpha1.VirtualService
		field string
	}{
		{"router missing", func() *v1alpha1.VirtualService { return newRouterService("shop", "x", "nope") },
			"spec.provider.virtualRouter.virtualRouterRef"},
		{"router ARN", func() *v1alpha1.VirtualService {
			vs := newRouterService("shop", "x", "web")
			vs.Spec.Provider.VirtualRouter = &v1alpha1.VirtualRouterServiceProvider{VirtualRouterARN: ptr("arn:aws:appmesh:r")}
			return vs
		}, "spec.provider.virtualRouter.virtualRouterARN"},
		{"node missing", func() *v1alpha1.VirtualService { return newNodeService("shop", "x", "nope") },
			"spec.provider.virtualNode.virtualNodeRef"},
		{"node ARN", func() *v1alpha1.VirtualService {
			vs := newNodeService("shop", "x", "web-v1")
			vs.Spec.Provider.VirtualNode = &v1alpha1.VirtualNodeServiceProvider{VirtualNodeARN: ptr("arn:aws:appmesh:n")}
			return vs
		}, "spec.provider.virtualNode.virtualNodeARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := shop()
			in.VirtualServices = append(in.VirtualServices, tt.vs())
			s, ps := compile(t, in, snapshot.EgressNode, nil)
			if virtualHost(s, "egress", "shop/x") != nil {
				t.Error("service with a dangling provider is served")
			}
			if virtualHost(s, "egress", "shop/web") == nil {
				t.Error("an unrelated service was dropped")
			}
			if len(ps) != 1 || ps[0].Object != "VirtualService/shop/x" || ps[0].Field != tt.field {
				t.Errorf("problems %v, want VirtualService/shop/x %s", ps, tt.field)
			}
		})
	}
}

func TestEgressFilter(t *testing.T) {
	for _, filter := range []string{"", v1alpha1.EgressFilterDropAll, v1alpha1.EgressFilterAllowAll} {
		t.Run("filter "+filter, func(t *testing.T) {
			in := shop()
			in.Meshes = []*v1alpha1.Mesh{newMesh("m", filter), newMesh("other", "")}
			in.VirtualServices = append(in.VirtualServices, newNodeService("shop", "extra", "web-v1"))
			elsewhere := newNodeService("shop", "elsewhere", "web-v1")
			elsewhere.Spec.MeshRef = meshRef("other")
			in.VirtualServices = append(in.VirtualServices, elsewhere)
			s, _ := compile(t, in, "VirtualNode/shop/client", nil)
			l := listener(t, s, "egress")
			want, allowAll := "shop/web", false
			if filter == v1alpha1.EgressFilterAllowAll {
				want, allowAll = "shop/extra shop/web", true
			}
			if got := hostNames(l); got != want || l.AllowAll != allowAll {
				t.Errorf("egress virtual hosts %q allowAll %v, want %q %v", got, l.AllowAll, want, allowAll)
			}
			if l.Port != DefaultEgressPort || l.Kind != snapshot.Egress {
				t.Errorf("egress listener %s", dump(l))
			}
		})
	}
	in := shop()
	in.VirtualNodes[0].Spec.Backends = nil
	s, _ := compile(t, in, "VirtualNode/shop/web-v1", nil)
	for _, l := range s.Listeners {
		if l.Kind == snapshot.Egress {
			t.Errorf("a node without backends under DROP_ALL has an egress listener: %s", dump(l))
		}
	}
}

func TestBackends(t *testing.T) {
	in := shop()
	in.Namespaces = nil
	other := newNodeService("billing", "invoices", "web-v1")
	other.Spec.Provider.VirtualNode.VirtualNodeRef.Namespace = ptr("shop")
	named := newNodeService("shop", "legacy", "web-v2")
	named.Spec.AWSName = ptr("legacy.example")
	in.VirtualServices = append(in.VirtualServices, other, named, newNodeService("shop", "unused", "web-v1"))
	client := in.VirtualNodes[2]
	client.Spec.Backends = append(client.Spec.Backends,
		v1alpha1.Backend{VirtualService: v1alpha1.VirtualServiceBackend{VirtualServiceRef: &v1alpha1.VirtualServiceReference{
			Namespace: ptr("billing"), Name: "invoices"}}},
		v1alpha1.Backend{VirtualService: v1alpha1.VirtualServiceBackend{VirtualServiceName: "legacy.example"}},
		v1alpha1.Backend{VirtualService: v1alpha1.VirtualServiceBackend{VirtualServiceName: "web.shop"}},
		v1alpha1.Backend{VirtualService: v1alpha1.VirtualServiceBackend{VirtualServiceName: "nobody.shop"}},
		v1alpha1.Backend{VirtualService: v1alpha1.VirtualServiceBackend{VirtualServiceRef: &v1alpha1.VirtualServiceReference{Name: "gone"}}},
		v1alpha1.Backend{VirtualService: v1alpha1.VirtualServiceBackend{VirtualServiceARN: ptr("arn:aws:appmesh:vs")}},
	)
	s, ps := compile(t, in, "VirtualNode/shop/client", nil)
	if got := hostNames(listener(t, s, "egress")); got != "billing/invoices shop/legacy shop/web" {
		t.Errorf("egress virtual hosts %q", got)
	}
	for _, f := range []string{"spec.backends[4].virtualService.virtualServiceName", "spec.backends[5].virtualService.virtualServiceRef",
		"spec.backends[6].virtualService.virtualServiceARN"} {
		if !hasProblem(ps, "VirtualNode/shop/client", false, f) {
			t.Errorf("no problem for %s in %v", f, ps)
		}
	}
	if len(ps) != 3 {
		t.Errorf("problems %v", ps)
	}
}

func TestMeshMembership(t *testing.T) {
	in := shop()
	in.Meshes = append(in.Meshes, newMesh("other", ""))
	orphan := newNodeService("shop", "orphan", "web-v1")
	orphan.Spec.MeshRef = nil
	ghost := newNodeService("shop", "ghost", "web-v1")
	ghost.Spec.MeshRef = meshRef("no-such-mesh")
	foreign := newNodeService("shop", "foreign", "far")
	foreign.Spec.MeshRef = meshRef("other")
	otherNode := newNode("shop", "far")
	otherNode.Spec.MeshRef = meshRef("other")
	crossing := newNodeService("shop", "crossing", "far")
	in.VirtualNodes = append(in.VirtualNodes, otherNode)
	in.VirtualServices = append(in.VirtualServices, orphan, ghost, foreign, crossing)

	s, ps := compile(t, in, snapshot.EgressNode, nil)
	if got := hostNames(listener(t, s, "egress")); got != "shop/foreign shop/web" {
		t.Errorf("egress serves %q: every mesh's services, none without a mesh", got)
	}
	if c := cluster(s, "shop/web-v1"); c == nil || c.Mesh != "m" {
		t.Errorf("cluster shop/web-v1: %s", dump(c))
	}
	if c := cluster(s, "shop/far"); c == nil || c.Mesh != "other" {
		t.Errorf("cluster shop/far: %s", dump(c))
	}
	for _, want := range []struct{ object, words string }{
		{"VirtualService/shop/orphan", "spec.meshRef not set"},
		{"VirtualService/shop/ghost", `"no-such-mesh" does not exist`},
		{"VirtualService/shop/crossing", `is in mesh "other", not "m"`},
	} {
		if !hasProblem(ps, want.object, false, strings.Split(want.words, "|")...) {
			t.Errorf("no problem %s %q in %v", want.object, want.words, ps)
		}
	}
}
