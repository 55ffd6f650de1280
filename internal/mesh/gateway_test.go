package mesh

import (
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

func newGateway(ns, name string, nsSel, grSel *metav1.LabelSelector) *v1alpha1.VirtualGateway {
	vg := &v1alpha1.VirtualGateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	vg.Spec.MeshRef = meshRef("m")
	vg.Spec.NamespaceSelector = nsSel
	vg.Spec.GatewayRouteSelector = grSel
	vg.Spec.Listeners = []v1alpha1.VirtualGatewayListener{{PortMapping: v1alpha1.VirtualGatewayPortMapping{Port: 8088, Protocol: "http"}}}
	return vg
}

func newGatewayRoute(ns, name, service string, labels map[string]string) *v1alpha1.GatewayRoute {
	gr := &v1alpha1.GatewayRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	gr.Spec.MeshRef = meshRef("m")
	gr.Spec.HTTPRoute = &v1alpha1.HTTPGatewayRoute{
		Match: v1alpha1.HTTPGatewayRouteMatch{Prefix: ptr("/" + name)},
		Action: v1alpha1.HTTPGatewayRouteAction{Target: v1alpha1.GatewayRouteTarget{VirtualService: v1alpha1.GatewayRouteVirtualService{
			VirtualServiceRef: &v1alpha1.VirtualServiceReference{Namespace: ptr("shop"), Name: service}}}},
	}
	return gr
}

// gatewayShop is shop with namespaces shop (team=shop) and edge (team=edge), and gateway
// routes shop/a (public), shop/b and edge/c, all to service web.
func gatewayShop(gateways ...*v1alpha1.VirtualGateway) *Inputs {
	in := shop()
	in.Namespaces = append(in.Namespaces, newNamespace("shop", map[string]string{"team": "shop"}), newNamespace("edge", map[string]string{"team": "edge"}))
	in.GatewayRoutes = []*v1alpha1.GatewayRoute{
		newGatewayRoute("shop", "a", "web", map[string]string{"expose": "public"}),
		newGatewayRoute("shop", "b", "web", nil),
		newGatewayRoute("edge", "c", "web", map[string]string{"expose": "public"}),
	}
	in.VirtualGateways = gateways
	return in
}

func gatewayRouteNames(t *testing.T, s *snapshot.Snapshot) string {
	t.Helper()
	vh := virtualHost(s, "gateway-8088", "VirtualGateway/"+strings.TrimPrefix(s.Node, "VirtualGateway/"))
	if vh == nil {
		t.Fatalf("no gateway virtual host: %s", dump(s))
	}
	var out []string
	for _, r := range vh.Routes {
		out = append(out, r.Name)
	}
	return strings.Join(out, " ")
}

func TestGatewayRouteSelection(t *testing.T) {
	sel := func(kv ...string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{kv[0]: kv[1]}}
	}
	tests := []struct {
		name  string
		nsSel *metav1.LabelSelector
		grSel *metav1.LabelSelector
		want  string
	}{
		{"nil namespace selector selects nothing", nil, nil, ""},
		{"empty namespace selector selects every namespace", &metav1.LabelSelector{}, nil, "edge/c shop/a shop/b"},
		{"namespace labels", sel("team", "shop"), nil, "shop/a shop/b"},
		{"empty route selector selects every route", sel("team", "shop"), &metav1.LabelSelector{}, "shop/a shop/b"},
		{"route labels", &metav1.LabelSelector{}, sel("expose", "public"), "edge/c shop/a"},
		{"both", sel("team", "edge"), sel("expose", "public"), "edge/c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := gatewayShop(newGateway("shop", "gw", tt.nsSel, tt.grSel))
			s, _ := compile(t, in, "VirtualGateway/shop/gw", nil)
			if got := gatewayRouteNames(t, s); got != tt.want {
				t.Errorf("routes %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGatewayRouteDesignation(t *testing.T) {
	everything := &metav1.LabelSelector{}
	in := gatewayShop(newGateway("shop", "gw", everything, nil), newGateway("edge", "gw2", &metav1.LabelSelector{
		MatchLabels: map[string]string{"team": "edge"}}, nil))
	// edge/c is selected by both gateways: App Mesh attaches it to neither.
	s, ps := compile(t, in, "VirtualGateway/shop/gw", nil)
	if got := gatewayRouteNames(t, s); got != "shop/a shop/b" {
		t.Errorf("routes %q", got)
	}
	if !hasProblem(ps, "GatewayRoute/edge/c", false, "edge/gw2, shop/gw", "exactly one") {
		t.Errorf("problems %v", ps)
	}
	// A virtualGatewayRef decides, whatever the selectors say.
	in.GatewayRoutes[2].Spec.VirtualGatewayRef = &v1alpha1.VirtualGatewayReference{Namespace: ptr("edge"), Name: "gw2"}
	in.GatewayRoutes[1].Spec.VirtualGatewayRef = &v1alpha1.VirtualGatewayReference{Namespace: ptr("edge"), Name: "gw2"}
	s, ps = compile(t, in, "VirtualGateway/edge/gw2", nil)
	if got := gatewayRouteNames(t, s); got != "edge/c shop/b" || ps != nil {
		t.Errorf("routes %q problems %v", got, ps)
	}
	// A route of another mesh is not attached.
	in.Meshes = append(in.Meshes, newMesh("other", ""))
	in.GatewayRoutes[0].Spec.MeshRef = meshRef("other")
	s, ps = compile(t, in, "VirtualGateway/shop/gw", nil)
	if got := gatewayRouteNames(t, s); got != "" {
		t.Errorf("routes %q", got)
	}
	if !hasProblem(ps, "GatewayRoute/shop/a", false, `not in the route's mesh "other"`) {
		t.Errorf("problems %v", ps)
	}
	// The egress node reports routes no gateway takes.
	in.VirtualGateways = nil
	_, ps = compile(t, in, snapshot.EgressNode, nil)
	if !hasProblem(ps, "GatewayRoute/shop/a", false, "no VirtualGateway selects") || !hasProblem(ps, "GatewayRoute/shop/b", false, "edge/gw2 does not exist") {
		t.Errorf("egress problems %v", ps)
	}
}

func TestGatewayRouteCompile(t *testing.T) {
	in := gatewayShop(newGateway("shop", "gw", &metav1.LabelSelector{}, nil))
	in.VirtualServices[0].Spec.AWSName = ptr("web.example.com")
	port := v1alpha1.PortNumber(8088)
	a := in.GatewayRoutes[0]
	a.Spec.Priority = ptr(int64(10))
	a.Spec.HTTPRoute.Match = v1alpha1.HTTPGatewayRouteMatch{
		Prefix:          ptr("/shop/"),
		Method:          ptr("GET"),
		Port:            &port,
		Hostname:        &v1alpha1.GatewayRouteHostnameMatch{Suffix: ptr(".example.com")},
		Headers:         []v1alpha1.HTTPRouteHeader{{Name: "x-canary", Match: &v1alpha1.HeaderMatchMethod{Exact: ptr("1")}}},
		QueryParameters: []v1alpha1.HTTPQueryParameters{{Name: "v"}},
	}
	a.Spec.HTTPRoute.Action.Rewrite = &v1alpha1.HTTPGatewayRouteRewrite{
		Prefix:   &v1alpha1.GatewayRoutePrefixRewrite{Value: ptr("/")},
		Hostname: &v1alpha1.GatewayRouteHostnameRewrite{DefaultTargetHostname: ptr("DISABLED")},
	}
	b := in.GatewayRoutes[1]
	b.Spec.HTTPRoute.Match = v1alpha1.HTTPGatewayRouteMatch{Path: &v1alpha1.HTTPPathMatch{Exact: ptr("/login")},
		Hostname: &v1alpha1.GatewayRouteHostnameMatch{Exact: ptr("www.example.com")}}
	b.Spec.HTTPRoute.Action.Rewrite = &v1alpha1.HTTPGatewayRouteRewrite{Path: &v1alpha1.GatewayRoutePathRewrite{Exact: ptr("/auth/login")},
		Prefix: &v1alpha1.GatewayRoutePrefixRewrite{DefaultPrefix: ptr("DISABLED")}}
	c := in.GatewayRoutes[2]
	c.Spec.HTTPRoute = nil
	c.Spec.GRPCRoute = &v1alpha1.GRPCGatewayRoute{
		Match: v1alpha1.GRPCGatewayRouteMatch{ServiceName: ptr("shop.Cart"), Metadata: []v1alpha1.GRPCRouteMetadata{{Name: "tenant"}}},
		Action: v1alpha1.GRPCGatewayRouteAction{Target: v1alpha1.GatewayRouteTarget{VirtualService: v1alpha1.GatewayRouteVirtualService{
			VirtualServiceRef: &v1alpha1.VirtualServiceReference{Namespace: ptr("shop"), Name: "web"}}}},
	}

	s, ps := compile(t, in, "VirtualGateway/shop/gw", nil)
	if !hasProblem(ps, "GatewayRoute/edge/c", false, "speaks grpc") || len(ps) != 1 {
		t.Errorf("problems %v: the grpc route has no grpc listener", ps)
	}
	l := listener(t, s, "gateway-8088")
	if l.Kind != snapshot.Gateway || l.Protocol != "http" || l.Port != 8088 || hostNames(l) != "VirtualGateway/shop/gw shop/web" {
		t.Fatalf("gateway listener %s", dump(l))
	}
	gw, web := l.VirtualHosts[0], l.VirtualHosts[1]
	if !reflect.DeepEqual(gw.Domains, []string{"*"}) || gw.Internal || !web.Internal || web.Domains[0] != "web.example.com" {
		t.Errorf("virtual hosts %s", dump(l.VirtualHosts))
	}
	wantA := snapshot.Route{Name: "shop/a", Priority: 10, Protocol: "http", VirtualService: "shop/web", Targets: []snapshot.WeightedCluster{},
		Match: snapshot.Match{Prefix: "/shop/", Method: "GET", Port: 8088, Hostname: &snapshot.StringMatch{Suffix: ".example.com"},
			Headers: []snapshot.HeaderMatch{{Name: "x-canary", Exact: ptr("1")}}, Query: []snapshot.QueryMatch{{Name: "v"}}},
		Rewrite: &snapshot.Rewrite{Prefix: "/", Hostname: "DISABLED", TargetHostname: "web.example.com"}}
	wantB := snapshot.Route{Name: "shop/b", Priority: unsetPriority, Protocol: "http", VirtualService: "shop/web", Targets: []snapshot.WeightedCluster{},
		Match:   snapshot.Match{Path: &snapshot.StringMatch{Exact: "/login"}, Hostname: &snapshot.StringMatch{Exact: "www.example.com"}},
		Rewrite: &snapshot.Rewrite{Path: "/auth/login", DefaultPrefix: "DISABLED", TargetHostname: "web.example.com"}}
	if !reflect.DeepEqual(gw.Routes, []snapshot.Route{wantA, wantB}) {
		t.Errorf("gateway routes\n got %s\nwant %s", dump(gw.Routes), dump([]snapshot.Route{wantA, wantB}))
	}
	if got := clusterNames(s); got != "shop/web-v1 shop/web-v2" {
		t.Errorf("clusters %q", got)
	}

	in.VirtualGateways[0].Spec.Listeners[0].PortMapping.Protocol = "grpc"
	s, _ = compile(t, in, "VirtualGateway/shop/gw", nil)
	r := virtualHost(s, "gateway-8088", "VirtualGateway/shop/gw").Routes
	wantMatch := snapshot.Match{GRPCService: "shop.Cart", Metadata: []snapshot.HeaderMatch{{Name: "tenant"}}}
	if len(r) != 1 || r[0].Protocol != "grpc" || !reflect.DeepEqual(r[0].Match, wantMatch) || r[0].Rewrite.TargetHostname != "web.example.com" {
		t.Errorf("grpc gateway route %s", dump(r))
	}
}

func TestGatewayRouteToBrokenService(t *testing.T) {
	in := gatewayShop(newGateway("shop", "gw", &metav1.LabelSelector{}, nil))
	in.GatewayRoutes[1].Spec.HTTPRoute.Action.Target.VirtualService.VirtualServiceRef.Name = "missing"
	in.GatewayRoutes[2].Spec.HTTPRoute.Action.Target.VirtualService = v1alpha1.GatewayRouteVirtualService{VirtualServiceARN: ptr("arn:x")}
	s, ps := compile(t, in, "VirtualGateway/shop/gw", nil)
	if got := gatewayRouteNames(t, s); got != "shop/a" {
		t.Errorf("routes %q", got)
	}
	if !hasProblem(ps, "GatewayRoute/shop/b", false, "virtualServiceRef", "shop/missing does not exist") ||
		!hasProblem(ps, "GatewayRoute/edge/c", false, "virtualServiceARN") {
		t.Errorf("problems %v", ps)
	}
}
