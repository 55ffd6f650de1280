package mesh

import (
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// compileVirtualGateway builds a virtual gateway's proxy: one gateway listener per
// spec.listeners whose virtual host "*" holds the gateway routes of the listener's
// protocol, beside internal virtual hosts of the services those routes hand requests to.
func (c *compiler) compileVirtualGateway(s *snapshot.Snapshot, ns, name string) {
	vg := c.ix.gateways[key(ns, name)]
	if vg == nil {
		c.absent("VirtualGateway", ns, name)
		return
	}
	s.Mesh = c.ix.meshOf["VirtualGateway/"+key(ns, name)]
	var routes []snapshot.Route
	for _, gr := range c.gatewayRoutesOf(vg) {
		if r, ok := c.gatewayRoute(gr, s.Mesh); ok {
			routes = append(routes, r)
		}
	}
	sort.SliceStable(routes, func(i, j int) bool { return routes[i].Priority < routes[j].Priority })
	used := map[string]bool{}
	for i := range vg.Spec.Listeners {
		l := &vg.Spec.Listeners[i]
		protocol := string(l.PortMapping.Protocol)
		var lr []snapshot.Route
		var targets []string
		for _, r := range routes {
			if r.Protocol == protocol {
				used[r.Name] = true
				lr = append(lr, r)
				targets = append(targets, r.VirtualService)
			}
		}
		if lr == nil {
			lr = []snapshot.Route{}
		}
		vhs := []snapshot.VirtualHost{{Name: NodeName("VirtualGateway", ns, name), Domains: []string{"*"}, Routes: lr}}
		s.Listeners = append(s.Listeners, snapshot.Listener{
			Name: listenerName(snapshot.Gateway, int(l.PortMapping.Port)), Kind: snapshot.Gateway, Protocol: protocol,
			Port: int(l.PortMapping.Port), VirtualHosts: append(vhs, c.virtualHosts(uniqueSorted(targets), true)...),
			ConnectionPool: gatewayPool(l.ConnectionPool), HealthCheck: gatewayHealthCheck(l.HealthCheck),
			AccessLog: accessLog(vg.Spec.Logging), TLS: gatewayListenerTLS(c, vg, i),
		})
	}
	c.applyClientTLS(objectID("VirtualGateway", ns, name), nil, defaultsPolicy(vg.Spec.BackendDefaults))
	for _, r := range routes {
		if !used[r.Name] {
			c.problem("GatewayRoute/"+r.Name, "spec", "no listener of VirtualGateway %s speaks %s; the route is not served", key(ns, name), r.Protocol)
		}
	}
}

// gatewayListenerTLS compiles the tls of a virtual gateway's listener i.
func gatewayListenerTLS(c *compiler, vg *v1alpha1.VirtualGateway, i int) *snapshot.ListenerTLS {
	t := vg.Spec.Listeners[i].TLS
	if t == nil {
		return nil
	}
	return c.listenerTLS(objectID("VirtualGateway", vg.Namespace, vg.Name), fmt.Sprintf("spec.listeners[%d].tls", i),
		t.Mode, &t.Certificate, t.Validation)
}

// gatewayRoutesOf returns the gateway routes attached to vg, as App Mesh attaches them:
// by spec.virtualGatewayRef when set; otherwise the one gateway whose namespaceSelector
// matches the route's namespace (a nil selector matches none, an empty one all) and
// whose gatewayRouteSelector matches the route's labels (nil or empty matches all).
func (c *compiler) gatewayRoutesOf(vg *v1alpha1.VirtualGateway) []*v1alpha1.GatewayRoute {
	me := key(vg.Namespace, vg.Name)
	var out []*v1alpha1.GatewayRoute
	for _, gr := range c.ix.gatewayRoutes {
		got, candidates, why := c.designate(gr)
		if why != "" {
			if contains(candidates, me) {
				c.problem(objectID("GatewayRoute", gr.Namespace, gr.Name), "spec.virtualGatewayRef", "%s", why)
			}
			continue
		}
		if got == me {
			out = append(out, gr)
		}
	}
	return out
}

// designate names the gateway a gateway route belongs to, or why it has none, with the
// gateways that select it.
func (c *compiler) designate(gr *v1alpha1.GatewayRoute) (string, []string, string) {
	grMesh := c.ix.meshOf[objectID("GatewayRoute", gr.Namespace, gr.Name)]
	if ref := gr.Spec.VirtualGatewayRef; ref != nil {
		k := refKey(ref.Namespace, ref.Name, gr.Namespace)
		vg := c.ix.gateways[k]
		switch {
		case vg == nil:
			return "", nil, fmt.Sprintf("VirtualGateway %s does not exist", k)
		case ref.UID != "" && vg.UID != "" && ref.UID != vg.UID:
			return "", []string{k}, fmt.Sprintf("VirtualGateway %s was deleted and created again", k)
		case c.ix.meshOf["VirtualGateway/"+k] != grMesh:
			return "", []string{k}, fmt.Sprintf("VirtualGateway %s is not in the route's mesh %q", k, grMesh)
		}
		return k, []string{k}, ""
	}
	var candidates []string
	for _, k := range sortedKeys(c.ix.gateways) {
		if c.selects(c.ix.gateways[k], gr) {
			candidates = append(candidates, k)
		}
	}
	switch {
	case len(candidates) == 0:
		return "", nil, "no VirtualGateway selects the route (namespaceSelector, gatewayRouteSelector)"
	case len(candidates) > 1:
		return "", candidates, fmt.Sprintf("VirtualGateways %s all select the route; it must be selected by exactly one",
			strings.Join(candidates, ", "))
	case c.ix.meshOf["VirtualGateway/"+candidates[0]] != grMesh:
		return "", candidates, fmt.Sprintf("VirtualGateway %s is not in the route's mesh %q", candidates[0], grMesh)
	}
	return candidates[0], candidates, ""
}

func (c *compiler) selects(vg *v1alpha1.VirtualGateway, gr *v1alpha1.GatewayRoute) bool {
	id := objectID("VirtualGateway", vg.Namespace, vg.Name)
	nsSel, err := metav1.LabelSelectorAsSelector(vg.Spec.NamespaceSelector)
	if err != nil {
		c.once(id, "spec.namespaceSelector", "%v; the gateway selects no routes", err)
		return false
	}
	grSel := labels.Everything()
	if vg.Spec.GatewayRouteSelector != nil {
		if grSel, err = metav1.LabelSelectorAsSelector(vg.Spec.GatewayRouteSelector); err != nil {
			c.once(id, "spec.gatewayRouteSelector", "%v; the gateway selects no routes", err)
			return false
		}
	}
	var nsLabels map[string]string
	if n := c.ix.namespaces[gr.Namespace]; n != nil {
		nsLabels = n.Labels
	}
	return nsSel.Matches(labels.Set(nsLabels)) && grSel.Matches(labels.Set(gr.Labels))
}

// gatewayRoute compiles a gateway route, or keeps prev's definition of it when it cannot.
func (c *compiler) gatewayRoute(gr *v1alpha1.GatewayRoute, m string) (snapshot.Route, bool) {
	b := &build{c: c, mesh: m}
	rb := routeBuild{build: b, id: objectID("GatewayRoute", gr.Namespace, gr.Name), ns: gr.Namespace, field: "spec"}
	var r snapshot.Route
	var target *v1alpha1.GatewayRouteTarget
	switch s := &gr.Spec; {
	case s.HTTPRoute != nil:
		r, target = rb.httpGatewayRoute(".httpRoute", string(v1alpha1.PortProtocolHTTP), s.HTTPRoute), &s.HTTPRoute.Action.Target
	case s.HTTP2Route != nil:
		r, target = rb.httpGatewayRoute(".http2Route", string(v1alpha1.PortProtocolHTTP2), s.HTTP2Route), &s.HTTP2Route.Action.Target
	case s.GRPCRoute != nil:
		r, target = rb.grpcGatewayRoute(s.GRPCRoute), &s.GRPCRoute.Action.Target
	default:
		rb.failf("", "no httpRoute, http2Route or grpcRoute is set")
	}
	r.Name = key(gr.Namespace, gr.Name)
	r.Priority = priority(gr.Spec.Priority)
	r.Targets = []snapshot.WeightedCluster{}
	if target != nil {
		rb.target(&r, target)
	}
	if len(b.fails) == 0 {
		return r, true
	}
	return c.keepPrevGatewayRoute(r.Name, m, b.fails)
}

// target points a gateway route at its virtual service, which must compile (or be kept).
func (rb *routeBuild) target(r *snapshot.Route, t *v1alpha1.GatewayRouteTarget) {
	f := fmt.Sprintf("%s.action.target.virtualService", routeKindField(r.Protocol))
	vsr := t.VirtualService.VirtualServiceRef
	if vsr == nil {
		rb.failf(f+".virtualServiceARN", "an ARN cannot be resolved outside AWS; use virtualServiceRef")
		return
	}
	k := refKey(vsr.Namespace, vsr.Name, rb.ns)
	vs, why := rb.c.ix.service(k, rb.mesh)
	if vs == nil {
		rb.failf(f+".virtualServiceRef", "%s", why)
		return
	}
	if rb.c.service(k) == nil {
		rb.failf(f+".virtualServiceRef", "VirtualService %s cannot be compiled (see its problems)", k)
		return
	}
	r.VirtualService = k
	if r.Rewrite == nil {
		r.Rewrite = &snapshot.Rewrite{}
	}
	r.Rewrite.TargetHostname = awsName(vs)
}

func routeKindField(protocol string) string {
	switch protocol {
	case string(v1alpha1.PortProtocolHTTP2):
		return ".http2Route"
	case string(v1alpha1.PortProtocolGRPC):
		return ".grpcRoute"
	}
	return ".httpRoute"
}

// keepPrevGatewayRoute keeps prev's route of that name if the service it hands requests
// to still exists in mesh m and is served.
func (c *compiler) keepPrevGatewayRoute(name, m string, fails []Problem) (snapshot.Route, bool) {
	var kept *snapshot.Route
	if c.prev != nil {
		for _, l := range c.prev.Listeners {
			if l.Kind != snapshot.Gateway {
				continue
			}
			for _, vh := range l.VirtualHosts {
				for _, r := range vh.Routes {
					if r.Name == name && kept == nil && r.VirtualService != "" {
						cp := deepCopy(r)
						kept = &cp
					}
				}
			}
		}
	}
	if kept != nil {
		if vs, _ := c.ix.service(kept.VirtualService, m); vs == nil || c.service(kept.VirtualService) == nil {
			kept = nil
		}
	}
	for _, p := range fails {
		p.KeptLastGood = kept != nil
		c.problems = append(c.problems, p)
	}
	if kept == nil {
		return snapshot.Route{}, false
	}
	return *kept, true
}

func (rb *routeBuild) httpGatewayRoute(f, protocol string, h *v1alpha1.HTTPGatewayRoute) snapshot.Route {
	m := h.Match
	r := snapshot.Route{Protocol: protocol, Match: snapshot.Match{
		Prefix:   deref(m.Prefix),
		Path:     rb.pathMatch(f+".match.path", m.Path),
		Method:   deref(m.Method),
		Headers:  rb.headers(f+".match.headers", m.Headers),
		Query:    queryMatches(m.QueryParameters),
		Port:     port(m.Port),
		Hostname: hostnameMatch(m.Hostname),
	}}
	rw := &snapshot.Rewrite{}
	if w := h.Action.Rewrite; w != nil {
		if p := w.Prefix; p != nil {
			rw.DefaultPrefix, rw.Prefix = deref(p.DefaultPrefix), deref(p.Value)
		}
		if p := w.Path; p != nil {
			rw.Path = deref(p.Exact)
		}
		if hn := w.Hostname; hn != nil {
			rw.Hostname = deref(hn.DefaultTargetHostname)
		}
	}
	r.Rewrite = rw
	return r
}

func (rb *routeBuild) grpcGatewayRoute(g *v1alpha1.GRPCGatewayRoute) snapshot.Route {
	m := g.Match
	r := snapshot.Route{Protocol: string(v1alpha1.PortProtocolGRPC), Match: snapshot.Match{
		GRPCService: deref(m.ServiceName),
		Metadata:    rb.metadata(".grpcRoute.match.metadata", m.Metadata),
		Port:        port(m.Port),
		Hostname:    hostnameMatch(m.Hostname),
	}}
	rw := &snapshot.Rewrite{}
	if w := g.Action.Rewrite; w != nil && w.Hostname != nil {
		rw.Hostname = deref(w.Hostname.DefaultTargetHostname)
	}
	r.Rewrite = rw
	return r
}

func hostnameMatch(h *v1alpha1.GatewayRouteHostnameMatch) *snapshot.StringMatch {
	if h == nil || (h.Exact == nil && h.Suffix == nil) {
		return nil
	}
	return &snapshot.StringMatch{Exact: deref(h.Exact), Suffix: deref(h.Suffix)}
}

func gatewayPool(p *v1alpha1.VirtualGatewayConnectionPool) *snapshot.ConnectionPool {
	switch {
	case p == nil:
		return nil
	case p.HTTP != nil:
		return httpPool(p.HTTP)
	case p.HTTP2 != nil:
		return &snapshot.ConnectionPool{MaxRequests: int(p.HTTP2.MaxRequests)}
	case p.GRPC != nil:
		return &snapshot.ConnectionPool{MaxRequests: int(p.GRPC.MaxRequests)}
	}
	return nil
}

func gatewayHealthCheck(h *v1alpha1.VirtualGatewayHealthCheckPolicy) *snapshot.HealthCheck {
	if h == nil {
		return nil
	}
	return &snapshot.HealthCheck{Protocol: string(h.Protocol), Path: deref(h.Path), Port: port(h.Port),
		Interval: time.Duration(h.IntervalMillis) * time.Millisecond, Timeout: time.Duration(h.TimeoutMillis) * time.Millisecond,
		HealthyThreshold: int(h.HealthyThreshold), UnhealthyThreshold: int(h.UnhealthyThreshold)}
}

func uniqueSorted(list []string) []string {
	sort.Strings(list)
	out := list[:0]
	for i, s := range list {
		if i == 0 || s != list[i-1] {
			out = append(out, s)
		}
	}
	return out
}
