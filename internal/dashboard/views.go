package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/hooks"
	"github.com/canarymesh/canarymesh/internal/store"
)

// statsWindow is the traffic window the mesh graph's edges show.
const statsWindow = time.Minute

func (d *Dashboard) serveHistory(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	ctx := r.Context()
	if _, err := d.o.Store.Get(ctx, store.Key{Kind: "Canary", Namespace: ns, Name: name}); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			refuse(w, http.StatusNotFound, "NotFound", fmt.Sprintf("canary %s/%s does not exist (it was deleted, or never applied)", ns, name))
			return
		}
		refuse(w, http.StatusServiceUnavailable, "StoreUnavailable", err.Error())
		return
	}
	h, _ := d.history.get(ns + "/" + name)
	objs, _, err := d.o.Store.List(ctx, store.Filter{Kind: "Event", Namespace: ns})
	if err != nil {
		refuse(w, http.StatusServiceUnavailable, "StoreUnavailable", err.Error())
		return
	}
	start, points, markers := fromEvents(hooks.For(objs, "Canary", name))
	writeJSON(w, http.StatusOK, merge(h, start, points, markers))
}

// Graph is the mesh view: boxes and the arrows between them.
type Graph struct {
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
	// Traffic is false when no proxy runs in this process to report edge figures.
	Traffic bool `json:"traffic"`
}

// GraphNode is one box: a gateway, virtual service, virtual router or virtual node.
type GraphNode struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	Namespace string     `json:"namespace"`
	Name      string     `json:"name"`
	Detail    string     `json:"detail,omitempty"`
	Health    string     `json:"health"` // ok | degraded | down | unknown
	Endpoints []Endpoint `json:"endpoints,omitempty"`
}

// Endpoint is one instance behind a virtual node.
type Endpoint struct {
	Address  string `json:"address"`
	Ready    bool   `json:"ready"`
	Revision string `json:"revision,omitempty"`
}

// GraphEdge is one arrow; Stats are the traffic into To over the last minute.
type GraphEdge struct {
	From   string     `json:"from"`
	To     string     `json:"to"`
	Label  string     `json:"label,omitempty"`
	Weight *int64     `json:"weight,omitempty"`
	Stats  *EdgeStats `json:"stats,omitempty"`
}

// EdgeStats are an edge's request rate and success rate.
type EdgeStats struct {
	RPS         float64 `json:"rps"`
	SuccessRate float64 `json:"successRate"`
	P99         float64 `json:"p99"` // milliseconds
	NoData      bool    `json:"noData"`
}

func gid(kind, ns, name string) string { return kind + "/" + ns + "/" + name }

func (d *Dashboard) serveMesh(w http.ResponseWriter, r *http.Request) {
	objs, _, err := d.o.Store.List(r.Context(), store.Filter{})
	if err != nil {
		refuse(w, http.StatusServiceUnavailable, "StoreUnavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, d.buildGraph(objs))
}

// meshObjects are the store's mesh kinds, sorted as List returns them.
type meshObjects struct {
	services  []*v1alpha1.VirtualService
	routers   []*v1alpha1.VirtualRouter
	nodes     []*v1alpha1.VirtualNode
	gateways  []*v1alpha1.VirtualGateway
	gwRoutes  []*v1alpha1.GatewayRoute
	workloads []*v1alpha1.Workload
}

func sortObjects(objs []v1alpha1.Object) meshObjects {
	var m meshObjects
	for _, o := range objs {
		switch o := o.(type) {
		case *v1alpha1.VirtualService:
			m.services = append(m.services, o)
		case *v1alpha1.VirtualRouter:
			m.routers = append(m.routers, o)
		case *v1alpha1.VirtualNode:
			m.nodes = append(m.nodes, o)
		case *v1alpha1.VirtualGateway:
			m.gateways = append(m.gateways, o)
		case *v1alpha1.GatewayRoute:
			m.gwRoutes = append(m.gwRoutes, o)
		case *v1alpha1.Workload:
			m.workloads = append(m.workloads, o)
		}
	}
	return m
}

// buildGraph draws gateways → virtual services → virtual routers → virtual nodes.
func (d *Dashboard) buildGraph(objs []v1alpha1.Object) Graph {
	m := sortObjects(objs)
	g := Graph{Nodes: []GraphNode{}, Edges: []GraphEdge{}, Traffic: d.windowSource() != nil}
	for _, vg := range m.gateways {
		detail := ""
		for _, l := range vg.Spec.Listeners {
			detail += fmt.Sprintf("%s :%d ", l.PortMapping.Protocol, l.PortMapping.Port)
		}
		detail = strings.TrimSpace(detail)
		g.Nodes = append(g.Nodes, GraphNode{ID: gid("VirtualGateway", vg.Namespace, vg.Name), Kind: "VirtualGateway",
			Namespace: vg.Namespace, Name: vg.Name, Detail: detail, Health: "ok"})
	}
	for _, gr := range m.gwRoutes {
		target := gatewayRouteTarget(gr)
		if target == "" {
			continue
		}
		for _, vg := range m.gateways {
			if routeOnGateway(gr, vg) {
				g.Edges = append(g.Edges, GraphEdge{From: gid("VirtualGateway", vg.Namespace, vg.Name),
					To: gid("VirtualService", gr.Namespace, target), Label: gr.Name})
			}
		}
	}
	for _, vs := range m.services {
		id := gid("VirtualService", vs.Namespace, vs.Name)
		g.Nodes = append(g.Nodes, GraphNode{ID: id, Kind: "VirtualService", Namespace: vs.Namespace, Name: vs.Name, Health: "ok"})
		if p := vs.Spec.Provider; p != nil {
			switch {
			case p.VirtualRouter != nil && p.VirtualRouter.VirtualRouterRef != nil:
				ref := p.VirtualRouter.VirtualRouterRef
				g.Edges = append(g.Edges, GraphEdge{From: id, To: gid("VirtualRouter", nsOr(ref.Namespace, vs.Namespace), ref.Name)})
			case p.VirtualNode != nil && p.VirtualNode.VirtualNodeRef != nil:
				ref := p.VirtualNode.VirtualNodeRef
				ns := nsOr(ref.Namespace, vs.Namespace)
				g.Edges = append(g.Edges, GraphEdge{From: id, To: gid("VirtualNode", ns, ref.Name), Stats: d.stats(ns, ref.Name)})
			}
		}
	}
	for _, vr := range m.routers {
		id := gid("VirtualRouter", vr.Namespace, vr.Name)
		detail := ""
		for _, l := range vr.Spec.Listeners {
			detail += fmt.Sprintf("%s :%d ", l.PortMapping.Protocol, l.PortMapping.Port)
		}
		g.Nodes = append(g.Nodes, GraphNode{ID: id, Kind: "VirtualRouter", Namespace: vr.Namespace, Name: vr.Name, Detail: strings.TrimSpace(detail), Health: "ok"})
		for _, rt := range vr.Spec.Routes {
			for _, t := range routeTargets(&rt) {
				if t.VirtualNodeRef == nil {
					continue
				}
				ns := nsOr(t.VirtualNodeRef.Namespace, vr.Namespace)
				wt := t.Weight
				g.Edges = append(g.Edges, GraphEdge{From: id, To: gid("VirtualNode", ns, t.VirtualNodeRef.Name), Label: rt.Name,
					Weight: &wt, Stats: d.stats(ns, t.VirtualNodeRef.Name)})
			}
		}
	}
	for _, vn := range m.nodes {
		eps := nodeEndpoints(vn, m.workloads)
		g.Nodes = append(g.Nodes, GraphNode{ID: gid("VirtualNode", vn.Namespace, vn.Name), Kind: "VirtualNode",
			Namespace: vn.Namespace, Name: vn.Name, Detail: nodeDetail(vn), Health: health(eps), Endpoints: eps})
	}
	return g
}

func nsOr(ns *string, def string) string {
	if ns != nil && *ns != "" {
		return *ns
	}
	return def
}

func routeTargets(rt *v1alpha1.Route) []v1alpha1.WeightedTarget {
	switch {
	case rt.HTTPRoute != nil:
		return rt.HTTPRoute.Action.WeightedTargets
	case rt.HTTP2Route != nil:
		return rt.HTTP2Route.Action.WeightedTargets
	case rt.GRPCRoute != nil:
		return rt.GRPCRoute.Action.WeightedTargets
	case rt.TCPRoute != nil:
		return rt.TCPRoute.Action.WeightedTargets
	}
	return nil
}

func gatewayRouteTarget(gr *v1alpha1.GatewayRoute) string {
	var t *v1alpha1.GatewayRouteTarget
	switch {
	case gr.Spec.HTTPRoute != nil:
		t = &gr.Spec.HTTPRoute.Action.Target
	case gr.Spec.HTTP2Route != nil:
		t = &gr.Spec.HTTP2Route.Action.Target
	case gr.Spec.GRPCRoute != nil:
		t = &gr.Spec.GRPCRoute.Action.Target
	}
	if t == nil || t.VirtualService.VirtualServiceRef == nil {
		return ""
	}
	return t.VirtualService.VirtualServiceRef.Name
}

// routeOnGateway: the gateway a route names, else one whose route selector matches it.
func routeOnGateway(gr *v1alpha1.GatewayRoute, vg *v1alpha1.VirtualGateway) bool {
	if ref := gr.Spec.VirtualGatewayRef; ref != nil {
		return ref.Name == vg.Name && nsOr(ref.Namespace, gr.Namespace) == vg.Namespace
	}
	if vg.Spec.GatewayRouteSelector == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(vg.Spec.GatewayRouteSelector)
	return err == nil && sel.Matches(labels.Set(gr.Labels))
}

func nodeDetail(vn *v1alpha1.VirtualNode) string {
	out := ""
	for _, l := range vn.Spec.Listeners {
		out += fmt.Sprintf("%s :%d ", l.PortMapping.Protocol, l.PortMapping.Port)
	}
	return strings.TrimSpace(out)
}

// nodeEndpoints are the instances of the workloads the node selects, and its static
// endpoints, as the mesh compiler finds them.
func nodeEndpoints(vn *v1alpha1.VirtualNode, workloads []*v1alpha1.Workload) []Endpoint {
	var eps []Endpoint
	if vn.Spec.PodSelector != nil {
		if sel, err := metav1.LabelSelectorAsSelector(vn.Spec.PodSelector); err == nil {
			for _, w := range workloads {
				if w.Namespace != vn.Namespace || !sel.Matches(labels.Set(w.Spec.Labels)) {
					continue
				}
				for _, in := range w.Status.Instances {
					if in.Port == 0 {
						continue
					}
					eps = append(eps, Endpoint{Address: "127.0.0.1:" + strconv.Itoa(int(in.Port)), Ready: in.Ready, Revision: in.Revision})
				}
			}
		}
	}
	if sd := vn.Spec.ServiceDiscovery; sd != nil {
		for _, s := range sd.Static {
			eps = append(eps, Endpoint{Address: s.Address + ":" + strconv.Itoa(int(s.Port)), Ready: true})
		}
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].Address < eps[j].Address })
	return eps
}

func health(eps []Endpoint) string {
	ready := 0
	for _, e := range eps {
		if e.Ready {
			ready++
		}
	}
	switch {
	case len(eps) == 0:
		return "unknown"
	case ready == len(eps):
		return "ok"
	case ready == 0:
		return "down"
	}
	return "degraded"
}

// stats reads the traffic into a virtual node over the last minute.
func (d *Dashboard) stats(ns, name string) *EdgeStats {
	ws := d.windowSource()
	if ws == nil {
		return nil
	}
	s := ws.Window(ns+"/"+name, statsWindow)
	if s.NoData {
		return &EdgeStats{NoData: true}
	}
	return &EdgeStats{RPS: float64(s.Requests) / statsWindow.Seconds(), SuccessRate: s.SuccessRate,
		P99: float64(s.P99) / float64(time.Millisecond)}
}
