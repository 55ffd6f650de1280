package mesh

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

func TestDanglingReferenceKeepsPrev(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(in *Inputs)
		object string
		// the cluster shop/web-v2 comes from prev when its node is gone
		web2FromPrev bool
	}{
		{"router deleted", func(in *Inputs) { in.VirtualRouters = nil }, "VirtualService/shop/web", false},
		{"target node deleted", func(in *Inputs) { in.VirtualNodes = slices.Delete(in.VirtualNodes, 1, 2) }, "VirtualRouter/shop/web", true},
		{"bad regex", func(in *Inputs) {
			in.VirtualRouters[0].Spec.Routes[0].HTTPRoute.Match = v1alpha1.HTTPRouteMatch{Path: &v1alpha1.HTTPPathMatch{Regex: ptr("(")}}
		}, "VirtualRouter/shop/web", false},
		{"router moved to another mesh", func(in *Inputs) {
			in.Meshes = append(in.Meshes, newMesh("other", ""))
			in.VirtualRouters[0].Spec.MeshRef = meshRef("other")
		}, "VirtualService/shop/web", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, node := range []string{snapshot.EgressNode, "VirtualNode/shop/client"} {
				in := shop()
				prev, _ := compile(t, in, node, nil)
				in = shop()
				tt.break_(in)
				// The current definition of web-v1 changes too: a kept service uses it.
				in.VirtualNodes[0].Spec.ServiceDiscovery.Static[0].Address = "10.0.0.99"
				s, ps := compile(t, in, node, prev)
				ln := "egress"
				if got, want := virtualHost(s, ln, "shop/web"), virtualHost(prev, ln, "shop/web"); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: virtual host not kept:\n got %s\nwant %s", node, dump(got), dump(want))
				}
				if !hasProblem(ps, tt.object, true) {
					t.Errorf("%s: problems %v, want one on %s marked kept", node, ps, tt.object)
				}
				if c := cluster(s, "shop/web-v1"); c == nil || c.Endpoints[0].Address != "10.0.0.99:8080" {
					t.Errorf("%s: cluster shop/web-v1 is not its current definition: %s", node, dump(c))
				}
				if c := cluster(s, "shop/web-v2"); !reflect.DeepEqual(c, cluster(prev, "shop/web-v2")) {
					t.Errorf("%s: cluster shop/web-v2: %s", node, dump(c))
				}
				if s.Version != prev.Version+1 {
					t.Errorf("%s: version %d after a change of web-v1, prev %d", node, s.Version, prev.Version)
				}
			}
		})
	}
}

func TestDanglingReferenceWithoutPrev(t *testing.T) {
	in := shop()
	in.VirtualRouters = nil
	s, ps := compile(t, in, "VirtualNode/shop/client", nil)
	if vh := virtualHost(s, "egress", "shop/web"); vh != nil {
		t.Errorf("dangling service served: %s", dump(vh))
	}
	if !hasProblem(ps, "VirtualService/shop/web", false, "VirtualRouter shop/web does not exist") {
		t.Errorf("problems %v", ps)
	}
	if got := clusterNames(s); got != "local:shop/client" {
		t.Errorf("clusters %q: no cluster for a dropped service", got)
	}
	// A prev that cannot be kept whole (its cluster is gone everywhere) is dropped too.
	prev, _ := compile(t, shop(), "VirtualNode/shop/client", nil)
	prev.Clusters = slices.DeleteFunc(prev.Clusters, func(c snapshot.Cluster) bool { return c.Name == "shop/web-v2" })
	in = shop()
	in.VirtualNodes = slices.Delete(in.VirtualNodes, 1, 2)
	s, ps = compile(t, in, "VirtualNode/shop/client", prev)
	if virtualHost(s, "egress", "shop/web") != nil || !hasProblem(ps, "VirtualRouter/shop/web", false, "shop/web-v2") {
		t.Errorf("snapshot %s problems %v", dump(s), ps)
	}
}

func TestGatewayRouteKeepsPrev(t *testing.T) {
	in := gatewayShop(newGateway("shop", "gw", &metav1.LabelSelector{}, nil))
	prev, _ := compile(t, in, "VirtualGateway/shop/gw", nil)
	in.GatewayRoutes[0].Spec.HTTPRoute.Match.Path = &v1alpha1.HTTPPathMatch{Regex: ptr("*")}
	in.GatewayRoutes[0].Spec.HTTPRoute.Match.Prefix = nil
	s, ps := compile(t, in, "VirtualGateway/shop/gw", prev)
	if !reflect.DeepEqual(s.Listeners, prev.Listeners) || s.Version != prev.Version {
		t.Errorf("gateway route not kept:\n got %s\nwant %s", dump(s), dump(prev))
	}
	if !hasProblem(ps, "GatewayRoute/shop/a", true, "spec.httpRoute.match.path.regex") {
		t.Errorf("problems %v", ps)
	}
	_, ps = compile(t, in, "VirtualGateway/shop/gw", nil)
	if !hasProblem(ps, "GatewayRoute/shop/a", false, "spec.httpRoute.match.path.regex") {
		t.Errorf("without prev: problems %v", ps)
	}
}

func TestVersion(t *testing.T) {
	in := shop()
	s1, _ := compile(t, in, "VirtualNode/shop/client", nil)
	if s1.Version != 1 {
		t.Errorf("first version %d", s1.Version)
	}
	s2, _ := compile(t, in, "VirtualNode/shop/client", s1)
	if s2.Version != 1 {
		t.Errorf("unchanged inputs: version %d", s2.Version)
	}
	// Changes this proxy does not see leave its version alone.
	in.VirtualNodes = append(in.VirtualNodes, newNode("shop", "unrelated"))
	in.VirtualServices = append(in.VirtualServices, newNodeService("shop", "unrelated", "unrelated"))
	in.Meshes = append(in.Meshes, newMesh("other", v1alpha1.EgressFilterAllowAll))
	s3, _ := compile(t, in, "VirtualNode/shop/client", s2)
	if s3.Version != 1 {
		t.Errorf("unrelated change: version %d", s3.Version)
	}
	in.VirtualRouters[0].Spec.Routes[0].HTTPRoute.Action.WeightedTargets[0].Weight = 50
	s4, _ := compile(t, in, "VirtualNode/shop/client", s3)
	if s4.Version != 2 {
		t.Errorf("weight change: version %d", s4.Version)
	}
	s5, _ := compile(t, in, "VirtualNode/shop/client", s4)
	if s5.Version != 2 {
		t.Errorf("again unchanged: version %d", s5.Version)
	}
	// A prev that went through JSON (as over the push stream) compares the same.
	var wire snapshot.Snapshot
	b, _ := json.Marshal(s5)
	if err := json.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	if s6, _ := compile(t, in, "VirtualNode/shop/client", &wire); s6.Version != 2 {
		t.Errorf("prev decoded from JSON: version %d", s6.Version)
	}
}

func TestConsistent(t *testing.T) {
	good := func() *snapshot.Snapshot {
		s, _ := compile(t, gatewayShop(newGateway("shop", "gw", &metav1.LabelSelector{}, nil)), "VirtualGateway/shop/gw", nil)
		return s
	}
	if err := Consistent(good()); err != nil {
		t.Fatalf("compiled snapshot: %v", err)
	}
	tests := []struct {
		name   string
		break_ func(s *snapshot.Snapshot)
		want   string
	}{
		{"missing cluster", func(s *snapshot.Snapshot) { s.Clusters = s.Clusters[1:] }, `target cluster "shop/web-v1" is not in the snapshot`},
		{"duplicate cluster", func(s *snapshot.Snapshot) { s.Clusters = append(s.Clusters, s.Clusters[0]) }, "defined twice"},
		{"duplicate listener", func(s *snapshot.Snapshot) { s.Listeners = append(s.Listeners, s.Listeners[0]) }, `listener "gateway-8088" is defined twice`},
		{"bad regex", func(s *snapshot.Snapshot) {
			s.Listeners[0].VirtualHosts[1].Routes[0].Match.Headers = []snapshot.HeaderMatch{{Name: "h", Regex: ptr("(")}}
		}, "not a valid regular expression"},
		{"bad hostname regex", func(s *snapshot.Snapshot) {
			s.Listeners[0].VirtualHosts[0].Routes[0].Match.Hostname = &snapshot.StringMatch{Regex: "["}
		}, "not a valid regular expression"},
		{"gateway route to nowhere", func(s *snapshot.Snapshot) { s.Listeners[0].VirtualHosts = s.Listeners[0].VirtualHosts[:1] },
			`virtual service "shop/web" has no virtual host`},
		{"duplicate domain", func(s *snapshot.Snapshot) {
			s.Listeners[0].VirtualHosts[1].Domains = append(s.Listeners[0].VirtualHosts[1].Domains, "*")
		}, `domain "*" is served by both`},
		{"bad weight", func(s *snapshot.Snapshot) { s.Listeners[0].VirtualHosts[1].Routes[0].Targets[0].Weight = 101 }, "not 0 to 100"},
		{"no targets", func(s *snapshot.Snapshot) { s.Listeners[0].VirtualHosts[1].Routes[0].Targets = nil }, "no targets"},
		{"missing local cluster", func(s *snapshot.Snapshot) {
			s.Listeners = append(s.Listeners, snapshot.Listener{Name: "ingress-1", Kind: snapshot.Ingress, LocalCluster: "local:x"})
		}, `local cluster "local:x"`},
		{"bad endpoint", func(s *snapshot.Snapshot) { s.Clusters[0].Endpoints = []snapshot.Endpoint{{Address: "10.0.0.1"}} }, "not host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.break_(s)
			err := Consistent(s)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, snapshot.ErrInconsistent) {
				t.Errorf("Consistent = %v, want an ErrInconsistent naming %q", err, tt.want)
			}
		})
	}
	if err := Consistent(nil); err == nil {
		t.Error("Consistent(nil) passed")
	}
}

func TestNodes(t *testing.T) {
	in := gatewayShop(newGateway("shop", "gw", nil, nil))
	lost := newNode("shop", "lost")
	lost.Spec.MeshRef = nil
	in.VirtualNodes = append(in.VirtualNodes, lost)
	want := []string{"egress", "VirtualGateway/shop/gw", "VirtualNode/shop/client", "VirtualNode/shop/web-v1", "VirtualNode/shop/web-v2"}
	if got := Nodes(in); !reflect.DeepEqual(got, want) {
		t.Errorf("Nodes = %v, want %v", got, want)
	}
	if got := Nodes(&Inputs{}); !reflect.DeepEqual(got, []string{"egress"}) {
		t.Errorf("Nodes of nothing = %v", got)
	}
}

func TestCompileNodes(t *testing.T) {
	in := shop()
	for _, bad := range []string{"", "VirtualNode/shop", "VirtualNode/shop/a/b", "VirtualGateway//x", "Pod/shop/x"} {
		if _, _, err := Compile(in, bad, nil, Options{}); err == nil {
			t.Errorf("Compile(%q) accepted the node name", bad)
		}
	}
	lost := newNode("shop", "lost")
	lost.Spec.MeshRef = nil
	in.VirtualNodes = append(in.VirtualNodes, lost)
	for node, want := range map[string]string{
		"VirtualNode/shop/nope":    "does not exist",
		"VirtualGateway/shop/nope": "does not exist",
		"VirtualNode/shop/lost":    "belongs to no mesh",
	} {
		s, ps := compile(t, in, node, nil)
		if len(s.Listeners) != 0 || len(s.Clusters) != 0 || len(ps) != 1 || !strings.Contains(ps[0].String(), want) {
			t.Errorf("%s: snapshot %s problems %v", node, dump(s), ps)
		}
	}
}

func TestDeterministicAndPure(t *testing.T) {
	for _, dir := range []string{"case-study", "flagger-demo"} {
		in := loadInputs(t, dir)
		before := dump(in)
		rev := &Inputs{}
		*rev = *in
		rev.VirtualNodes = slices.Clone(in.VirtualNodes)
		slices.Reverse(rev.VirtualNodes)
		rev.VirtualServices = slices.Clone(in.VirtualServices)
		slices.Reverse(rev.VirtualServices)
		rev.Workloads = slices.Clone(in.Workloads)
		slices.Reverse(rev.Workloads)
		for _, node := range Nodes(in) {
			a, _ := compile(t, in, node, nil)
			b, _ := compile(t, rev, node, nil)
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if !bytes.Equal(ja, jb) {
				t.Errorf("%s %s: input order changes the snapshot", dir, node)
			}
			// A snapshot shares nothing with the inputs.
			for i := range a.Clusters {
				for j := range a.Clusters[i].Endpoints {
					for k := range a.Clusters[i].Endpoints[j].Labels {
						a.Clusters[i].Endpoints[j].Labels[k] = "changed"
					}
				}
			}
		}
		if dump(in) != before {
			t.Errorf("%s: compiling changed the inputs", dir)
		}
	}
}
