package mesh

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// Builders of small inputs. Every object is in mesh "m" unless told otherwise.

func ptr[T any](v T) *T { return &v }

func newMesh(name string, filter string) *v1alpha1.Mesh {
	m := &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if filter != "" {
		m.Spec.EgressFilter = &v1alpha1.EgressFilter{Type: filter}
	}
	return m
}

func meshRef(name string) *v1alpha1.MeshReference {
	if name == "" {
		return nil
	}
	return &v1alpha1.MeshReference{Name: name}
}

func newNode(ns, name string, mods ...func(*v1alpha1.VirtualNode)) *v1alpha1.VirtualNode {
	vn := &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	vn.Spec.MeshRef = meshRef("m")
	vn.Spec.Listeners = []v1alpha1.Listener{{PortMapping: v1alpha1.PortMapping{Port: 8080, Protocol: v1alpha1.PortProtocolHTTP}}}
	vn.Spec.ServiceDiscovery = &v1alpha1.ServiceDiscovery{Static: []v1alpha1.StaticEndpoint{{Address: "10.0.0.1", Port: 8080}}}
	for _, f := range mods {
		f(vn)
	}
	return vn
}

func withBackends(names ...string) func(*v1alpha1.VirtualNode) {
	return func(vn *v1alpha1.VirtualNode) {
		for _, n := range names {
			vn.Spec.Backends = append(vn.Spec.Backends, v1alpha1.Backend{VirtualService: v1alpha1.VirtualServiceBackend{
				VirtualServiceRef: &v1alpha1.VirtualServiceReference{Name: n}}})
		}
	}
}

func newRouterService(ns, name, router string) *v1alpha1.VirtualService {
	vs := &v1alpha1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	vs.Spec.MeshRef = meshRef("m")
	vs.Spec.Provider = &v1alpha1.VirtualServiceProvider{VirtualRouter: &v1alpha1.VirtualRouterServiceProvider{
		VirtualRouterRef: &v1alpha1.VirtualRouterReference{Name: router}}}
	return vs
}

func newNodeService(ns, name, node string) *v1alpha1.VirtualService {
	vs := &v1alpha1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	vs.Spec.MeshRef = meshRef("m")
	vs.Spec.Provider = &v1alpha1.VirtualServiceProvider{VirtualNode: &v1alpha1.VirtualNodeServiceProvider{
		VirtualNodeRef: &v1alpha1.VirtualNodeReference{Name: node}}}
	return vs
}

func newRouter(ns, name string, routes ...v1alpha1.Route) *v1alpha1.VirtualRouter {
	vr := &v1alpha1.VirtualRouter{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	vr.Spec.MeshRef = meshRef("m")
	vr.Spec.Routes = routes
	return vr
}

func target(node string, weight int64) v1alpha1.WeightedTarget {
	return v1alpha1.WeightedTarget{VirtualNodeRef: &v1alpha1.VirtualNodeReference{Name: node}, Weight: weight}
}

func httpRoute(name string, targets ...v1alpha1.WeightedTarget) v1alpha1.Route {
	return v1alpha1.Route{Name: name, HTTPRoute: &v1alpha1.HTTPRoute{
		Match: v1alpha1.HTTPRouteMatch{Prefix: ptr("/")}, Action: v1alpha1.HTTPRouteAction{WeightedTargets: targets}}}
}

func newWorkload(ns, name string, labels map[string]string, instances ...v1alpha1.WorkloadInstance) *v1alpha1.Workload {
	w := &v1alpha1.Workload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	w.Spec.Command = []string{"app"}
	w.Spec.Labels = labels
	w.Status.Instances = instances
	return w
}

func newNamespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// shop is a small mesh: service web → router web → 80/20 over web-v1 and web-v2, and a
// client node that calls web.
func shop() *Inputs {
	return &Inputs{
		Meshes: []*v1alpha1.Mesh{newMesh("m", "")},
		VirtualNodes: []*v1alpha1.VirtualNode{
			newNode("shop", "web-v1"), newNode("shop", "web-v2"), newNode("shop", "client", withBackends("web")),
		},
		VirtualServices: []*v1alpha1.VirtualService{newRouterService("shop", "web", "web")},
		VirtualRouters:  []*v1alpha1.VirtualRouter{newRouter("shop", "web", httpRoute("split", target("web-v1", 80), target("web-v2", 20)))},
	}
}

func compile(t *testing.T, in *Inputs, node string, prev *snapshot.Snapshot) (*snapshot.Snapshot, []Problem) {
	t.Helper()
	s, ps, err := Compile(in, node, prev, Options{})
	if err != nil {
		t.Fatalf("Compile(%s): %v", node, err)
	}
	return s, ps
}

func listener(t *testing.T, s *snapshot.Snapshot, name string) *snapshot.Listener {
	t.Helper()
	for i := range s.Listeners {
		if s.Listeners[i].Name == name {
			return &s.Listeners[i]
		}
	}
	t.Fatalf("snapshot of %s has no listener %q:\n%s", s.Node, name, dump(s))
	return nil
}

func virtualHost(s *snapshot.Snapshot, listener, name string) *snapshot.VirtualHost {
	for i := range s.Listeners {
		if s.Listeners[i].Name != listener {
			continue
		}
		for j := range s.Listeners[i].VirtualHosts {
			if vh := &s.Listeners[i].VirtualHosts[j]; vh.Name == name {
				return vh
			}
		}
	}
	return nil
}

func cluster(s *snapshot.Snapshot, name string) *snapshot.Cluster {
	for i := range s.Clusters {
		if s.Clusters[i].Name == name {
			return &s.Clusters[i]
		}
	}
	return nil
}

func clusterNames(s *snapshot.Snapshot) string {
	var out []string
	for _, c := range s.Clusters {
		out = append(out, c.Name)
	}
	return strings.Join(out, " ")
}

func hostNames(l *snapshot.Listener) string {
	var out []string
	for _, vh := range l.VirtualHosts {
		out = append(out, vh.Name)
	}
	return strings.Join(out, " ")
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// hasProblem reports whether a problem of object mentions every one of words (in its
// field or reason).
func hasProblem(ps []Problem, object string, kept bool, words ...string) bool {
	for _, p := range ps {
		if p.Object != object || p.KeptLastGood != kept {
			continue
		}
		all := true
		for _, w := range words {
			if !strings.Contains(p.Field+" "+p.Reason, w) {
				all = false
			}
		}
		if all {
			return true
		}
	}
	return false
}
