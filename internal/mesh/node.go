package mesh

import (
	"fmt"
	"sort"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// compileEgressNode builds the host-wide egress proxy: one listener routing by Host to
// every virtual service of every mesh.
func (c *compiler) compileEgressNode(s *snapshot.Snapshot) {
	s.Listeners = append(s.Listeners, snapshot.Listener{
		Name: "egress", Kind: snapshot.Egress, Protocol: string(v1alpha1.PortProtocolHTTP), Port: c.opts.egressPort(),
		VirtualHosts: c.virtualHosts(c.ix.servicesOf(""), false),
	})
	// Gateway routes attached to no gateway are reported here, where every object is.
	for _, gr := range c.ix.gatewayRoutes {
		if _, _, why := c.designate(gr); why != "" {
			c.problem(objectID("GatewayRoute", gr.Namespace, gr.Name), "spec.virtualGatewayRef", "%s", why)
		}
	}
}

// absent reports a node that does not exist or belongs to no mesh; its snapshot stays
// empty.
func (c *compiler) absent(kind, ns, name string) {
	id := objectID(kind, ns, name)
	if p, ok := c.ix.excluded[id]; ok {
		c.problems = append(c.problems, p)
		return
	}
	c.problem(id, "", "does not exist; its proxy has nothing to serve")
}

// compileVirtualNode builds a virtual node's sidecar: an ingress listener per
// spec.listeners delivering to the node's own endpoints, and an egress listener for the
// virtual services it may call.
func (c *compiler) compileVirtualNode(s *snapshot.Snapshot, ns, name string) {
	vn := c.ix.nodes[key(ns, name)]
	if vn == nil {
		c.absent("VirtualNode", ns, name)
		return
	}
	m := c.ix.meshOf["VirtualNode/"+key(ns, name)]
	s.Mesh = m
	for i := range vn.Spec.Listeners {
		l := &vn.Spec.Listeners[i]
		lc := c.localCluster(vn, i)
		c.clusters[lc.Name] = lc
		s.Listeners = append(s.Listeners, snapshot.Listener{
			Name: listenerName(snapshot.Ingress, int(l.PortMapping.Port)), Kind: snapshot.Ingress,
			Protocol: string(l.PortMapping.Protocol), Port: int(l.PortMapping.Port), LocalCluster: lc.Name,
			Timeout: listenerTimeout(l.Timeout), ConnectionPool: connectionPool(l.ConnectionPool),
			HealthCheck: healthCheck(l.HealthCheck), AccessLog: accessLog(vn.Spec.Logging),
			TLS: nodeListenerTLS(c, vn, i),
		})
	}
	allowAll := c.ix.meshes[m].Spec.EgressFilter != nil && c.ix.meshes[m].Spec.EgressFilter.Type == v1alpha1.EgressFilterAllowAll
	keys, index := c.backends(vn, m)
	if allowAll {
		keys = c.ix.servicesOf(m)
	}
	if len(keys) == 0 && !allowAll {
		return
	}
	s.Listeners = append(s.Listeners, snapshot.Listener{
		Name: "egress", Kind: snapshot.Egress, Protocol: string(v1alpha1.PortProtocolHTTP), Port: c.opts.egressPort(),
		VirtualHosts: c.virtualHosts(keys, false), AccessLog: accessLog(vn.Spec.Logging), AllowAll: allowAll,
	})
	policies, def := nodePolicies(vn, index)
	c.applyClientTLS(objectID("VirtualNode", ns, name), policies, def)
}

// nodeListenerTLS compiles the tls of a virtual node's listener i.
func nodeListenerTLS(c *compiler, vn *v1alpha1.VirtualNode, i int) *snapshot.ListenerTLS {
	t := vn.Spec.Listeners[i].TLS
	if t == nil {
		return nil
	}
	if t.Mode == v1alpha1.ListenerTLSModeStrict || t.Mode == v1alpha1.ListenerTLSModePermissive {
		c.supervisedListenerTLS(vn, i)
	}
	return c.listenerTLS(objectID("VirtualNode", vn.Namespace, vn.Name), fmt.Sprintf("spec.listeners[%d].tls", i),
		t.Mode, &t.Certificate, nodeListenerValidation(t.Validation))
}

// backends resolves a node's spec.backends to virtual service keys, sorted, with the
// index of the first backend naming each. A backend that names nothing is reported and
// left out.
func (c *compiler) backends(vn *v1alpha1.VirtualNode, m string) ([]string, map[string]int) {
	id := objectID("VirtualNode", vn.Namespace, vn.Name)
	seen := map[string]int{}
	var keys []string
	for i, b := range vn.Spec.Backends {
		f := fmt.Sprintf("spec.backends[%d].virtualService", i)
		bs := b.VirtualService
		var k, why string
		switch {
		case bs.VirtualServiceRef != nil:
			f += ".virtualServiceRef"
			k = refKey(bs.VirtualServiceRef.Namespace, bs.VirtualServiceRef.Name, vn.Namespace)
			if _, why = c.ix.service(k, m); why != "" {
				k = ""
			}
		case bs.VirtualServiceName != "":
			f += ".virtualServiceName"
			k, why = c.ix.serviceByAWSName(bs.VirtualServiceName, m)
		case bs.VirtualServiceARN != nil:
			f += ".virtualServiceARN"
			why = "an ARN cannot be resolved outside AWS; use virtualServiceRef"
		default:
			why = "names no virtual service"
		}
		if k == "" {
			c.problem(id, f, "%s; the node cannot call it", why)
			continue
		}
		if _, dup := seen[k]; !dup {
			seen[k] = i
			keys = append(keys, k)
		}
	}
	for i := range vn.Spec.BackendGroups {
		c.problem(id, fmt.Sprintf("spec.backendGroups[%d]", i), "backend groups are not supported; list the virtual services in spec.backends")
	}
	sort.Strings(keys)
	return keys, seen
}

func sortVirtualHosts(vhs []snapshot.VirtualHost) {
	sort.SliceStable(vhs, func(i, j int) bool { return vhs[i].Name < vhs[j].Name })
}
