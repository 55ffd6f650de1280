package mesh

import (
	"reflect"
	"testing"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// The route extensions (mirror, response cookies) compile into the snapshot: the mirror
// to its node's cluster, which joins the snapshot even when no target names it, and the
// cookies to Set-Cookie values on their target.
func TestRouteExtensionsCompile(t *testing.T) {
	in := shop()
	in.VirtualNodes = append(in.VirtualNodes, newNode("shop", "web-shadow"))
	ck := func(name, value string, maxAge int64) v1alpha1.ResponseCookie {
		return v1alpha1.ResponseCookie{Name: name, Value: value, MaxAge: maxAge}
	}
	v2 := target("web-v2", 20)
	v2.ResponseCookies = []v1alpha1.ResponseCookie{
		ck("canary", "k3Xa9", 86400),
		{Name: "full", Value: "v", MaxAge: -1, Path: "/", Domain: "example.com", HTTPOnly: true, Secure: true, SameSite: "Strict", Partitioned: true},
	}
	rt := httpRoute("split", target("web-v1", 80), v2)
	rt.HTTPRoute.Action.Mirror = &v1alpha1.RouteMirror{VirtualNodeRef: v1alpha1.VirtualNodeReference{Name: "web-shadow"}, Percent: 25}
	in.VirtualRouters[0].Spec.Routes = []v1alpha1.Route{rt}
	s, ps := compile(t, in, snapshot.EgressNode, nil)
	vh := virtualHost(s, "egress", "shop/web")
	if vh == nil || len(vh.Routes) != 1 {
		t.Fatalf("want one route, got %s\nproblems: %v", dump(s), ps)
	}
	r := vh.Routes[0]
	if want := (&snapshot.Mirror{Cluster: "shop/web-shadow", Percent: 25}); !reflect.DeepEqual(r.Mirror, want) {
		t.Errorf("mirror = %+v, want %+v", r.Mirror, want)
	}
	if cluster(s, "shop/web-shadow") == nil {
		t.Errorf("the mirror's cluster is not in the snapshot: %s", clusterNames(s))
	}
	if r.Targets[0].SetCookies != nil {
		t.Errorf("primary target has cookies %q", r.Targets[0].SetCookies)
	}
	want := []string{"canary=k3Xa9; Max-Age=86400",
		"full=v; Path=/; Domain=example.com; Max-Age=-1; HttpOnly; Secure; SameSite=Strict; Partitioned"}
	if got := r.Targets[1].SetCookies; !reflect.DeepEqual(got, want) {
		t.Errorf("cookies = %q, want %q", got, want)
	}
	if err := s.Consistent(); err != nil {
		t.Errorf("inconsistent snapshot: %v", err)
	}
}

// A mirror to a node that does not exist fails the route, as a missing target does: the
// service keeps its last good routes, and the problem names the field.
func TestRouteMirrorMissingNode(t *testing.T) {
	in := shop()
	good, _ := compile(t, in, snapshot.EgressNode, nil)
	rt := httpRoute("split", target("web-v1", 80), target("web-v2", 20))
	rt.HTTPRoute.Action.Mirror = &v1alpha1.RouteMirror{VirtualNodeRef: v1alpha1.VirtualNodeReference{Name: "nope"}, Percent: 10}
	in.VirtualRouters[0].Spec.Routes = []v1alpha1.Route{rt}
	s, ps := compile(t, in, snapshot.EgressNode, good)
	if !hasProblem(ps, "VirtualRouter/shop/web", true, "spec.routes[0].httpRoute.action.mirror.virtualNodeRef") {
		t.Errorf("no problem for the mirror's missing node: %v", ps)
	}
	vh := virtualHost(s, "egress", "shop/web")
	if vh == nil || len(vh.Routes) != 1 || vh.Routes[0].Mirror != nil {
		t.Errorf("want the last good route without a mirror, got %s", dump(vh))
	}
}

// A kept-last-good virtual host whose route mirrors keeps the mirror's cluster too.
func TestRouteMirrorKeptLastGood(t *testing.T) {
	in := shop()
	in.VirtualNodes = append(in.VirtualNodes, newNode("shop", "web-shadow"))
	rt := httpRoute("split", target("web-v1", 80), target("web-v2", 20))
	rt.HTTPRoute.Action.Mirror = &v1alpha1.RouteMirror{VirtualNodeRef: v1alpha1.VirtualNodeReference{Name: "web-shadow"}, Percent: 100}
	in.VirtualRouters[0].Spec.Routes = []v1alpha1.Route{rt}
	good, _ := compile(t, in, snapshot.EgressNode, nil)
	bad := httpRoute("split", target("web-v1", 80), target("gone", 20))
	in.VirtualRouters[0].Spec.Routes = []v1alpha1.Route{bad}
	s, _ := compile(t, in, snapshot.EgressNode, good)
	vh := virtualHost(s, "egress", "shop/web")
	if vh == nil || vh.Routes[0].Mirror == nil || cluster(s, "shop/web-shadow") == nil {
		t.Fatalf("want the last good route with its mirror and cluster, got %s", dump(s))
	}
	if err := s.Consistent(); err != nil {
		t.Errorf("inconsistent snapshot: %v", err)
	}
}
