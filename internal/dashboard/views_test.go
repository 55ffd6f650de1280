package dashboard

import (
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
)

const meshYAML = `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: demo}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: to-podinfo, namespace: demo}
spec:
  httpRoute:
    match: {prefix: /}
    action: {target: {virtualService: {virtualServiceRef: {name: podinfo}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: podinfo, namespace: demo}
spec:
  provider: {virtualRouter: {virtualRouterRef: {name: podinfo}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: podinfo, namespace: demo}
spec:
  listeners: [{portMapping: {port: 9898, protocol: http}}]
  routes:
    - name: main
      httpRoute:
        match: {prefix: /}
        action:
          weightedTargets:
            - {virtualNodeRef: {name: podinfo-primary}, weight: 70}
            - {virtualNodeRef: {name: podinfo-canary}, weight: 30}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: podinfo-primary, namespace: demo}
spec:
  podSelector: {matchLabels: {app: podinfo-primary}}
  listeners: [{portMapping: {port: 9898, protocol: http}}]
  serviceDiscovery: {dns: {hostname: podinfo-primary.demo}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: podinfo-canary, namespace: demo}
spec:
  podSelector: {matchLabels: {app: podinfo}}
  listeners: [{portMapping: {port: 9898, protocol: http}}]
  serviceDiscovery: {dns: {hostname: podinfo-canary.demo}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: Workload
metadata: {name: podinfo, namespace: demo}
spec:
  command: [canarymesh, demo-app]
  labels: {app: podinfo}
`

func TestMeshGraph(t *testing.T) {
	res, err := manifest.Decode("mesh.yaml", []byte(meshYAML), manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var objs []v1alpha1.Object
	for _, it := range res.Items {
		if w, ok := it.Object.(*v1alpha1.Workload); ok {
			w.Status.Instances = []v1alpha1.WorkloadInstance{{Port: 4001, Ready: true, Revision: "abc"}, {Port: 4002}}
		}
		objs = append(objs, it.Object)
	}
	d := &Dashboard{}
	d.SetWindows(builtin.WindowFunc(func(cluster string, w time.Duration) builtin.Stats {
		if cluster != "demo/podinfo-canary" {
			return builtin.Stats{NoData: true}
		}
		return builtin.Stats{Requests: uint64(w.Seconds()) * 3, Errors5xx: 1, SuccessRate: 99.5, P99: 12 * time.Millisecond}
	}))
	g := d.buildGraph(objs)

	nodes := map[string]GraphNode{}
	for _, n := range g.Nodes {
		nodes[n.ID] = n
	}
	canary := nodes["VirtualNode/demo/podinfo-canary"]
	if canary.Health != "degraded" || len(canary.Endpoints) != 2 || !canary.Endpoints[0].Ready || canary.Endpoints[0].Revision != "abc" {
		t.Errorf("canary node %+v: want two endpoints, one ready", canary)
	}
	if n := nodes["VirtualNode/demo/podinfo-primary"]; n.Health != "unknown" || len(n.Endpoints) != 0 {
		t.Errorf("primary node without workloads: %+v", n)
	}
	if len(nodes) != 5 {
		t.Errorf("%d boxes, want gateway, service, router and two nodes: %+v", len(nodes), g.Nodes)
	}
	edges := map[string]GraphEdge{}
	for _, e := range g.Edges {
		edges[e.From+" → "+e.To] = e
	}
	if _, ok := edges["VirtualGateway/demo/gw → VirtualService/demo/podinfo"]; !ok {
		t.Errorf("no gateway edge in %v", g.Edges)
	}
	if _, ok := edges["VirtualService/demo/podinfo → VirtualRouter/demo/podinfo"]; !ok {
		t.Errorf("no service → router edge in %v", g.Edges)
	}
	e := edges["VirtualRouter/demo/podinfo → VirtualNode/demo/podinfo-canary"]
	if e.Weight == nil || *e.Weight != 30 || e.Label != "main" || e.Stats == nil || e.Stats.RPS != 3 || e.Stats.SuccessRate != 99.5 || e.Stats.P99 != 12 {
		t.Errorf("router → canary edge %+v (stats %+v)", e, e.Stats)
	}
	if p := edges["VirtualRouter/demo/podinfo → VirtualNode/demo/podinfo-primary"]; p.Stats == nil || !p.Stats.NoData || *p.Weight != 70 {
		t.Errorf("router → primary edge %+v", p)
	}
	if !g.Traffic {
		t.Error("traffic figures are off with a window source")
	}
}
