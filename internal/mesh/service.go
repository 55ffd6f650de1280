package mesh

import (
	"encoding/json"
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// compiler builds one snapshot. Virtual services and clusters are compiled at most once
// and shared by every listener that needs them.
type compiler struct {
	ix *index
	// shared builds services and clusters once for every node of the same inputs; nil
	// in the scratch compilers it builds them with.
	shared   *shared
	prev     *snapshot.Snapshot
	opts     Options
	problems []Problem
	clusters map[string]snapshot.Cluster
	services map[string]*snapshot.VirtualHost // nil: could not be compiled nor kept
	reported map[string]bool
}

func newCompiler(ix *index, prev *snapshot.Snapshot, opts Options) *compiler {
	return &compiler{ix: ix, prev: prev, opts: opts, clusters: map[string]snapshot.Cluster{},
		services: map[string]*snapshot.VirtualHost{}, reported: map[string]bool{}}
}

// problem records a problem that changes nothing of what is compiled.
func (c *compiler) problem(object, field, format string, args ...any) {
	c.problems = append(c.problems, Problem{Object: object, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// once reports a problem of a shared definition (a cluster's endpoints, say) only the
// first time it is met.
func (c *compiler) once(object, field, format string, args ...any) {
	reason := fmt.Sprintf(format, args...)
	id := object + " " + field + " " + reason
	if c.reported[id] {
		return
	}
	c.reported[id] = true
	c.problems = append(c.problems, Problem{Object: object, Field: field, Reason: reason})
}

// unsetPriority orders routes without a priority after every route with one (App Mesh
// priorities run from 0 to 1000).
const unsetPriority = 1001

func priority(p *int64) int {
	if p == nil {
		return unsetPriority
	}
	return int(*p)
}

// service returns the virtual host of the virtual service k (which exists in the index),
// compiled now or kept from prev, with the clusters its routes reach added. It returns
// nil when the service has a dangling reference and prev has no definition of it.
func (c *compiler) service(k string) *snapshot.VirtualHost {
	if vh, done := c.services[k]; done {
		return vh
	}
	m := c.ix.meshOf["VirtualService/"+k]
	var bs *builtService
	if c.shared != nil {
		bs = c.shared.service(c, k, m)
		c.problems = append(c.problems, bs.problems...)
	} else {
		b := &build{c: c, mesh: m}
		bs = &builtService{vh: b.virtualService(c.ix.services[k]), fails: b.fails, refs: b.refs}
	}
	if len(bs.fails) == 0 {
		for _, r := range bs.refs {
			c.addCluster(r)
		}
		c.services[k] = bs.vh
		return bs.vh
	}
	vh := c.keepPrevService(k, m, bs.fails)
	c.services[k] = vh
	return vh
}

// keepPrevService keeps prev's definition of the virtual service k, if prev has one and
// every cluster it needs can still be had (current definition first, else prev's).
func (c *compiler) keepPrevService(k, m string, fails []Problem) *snapshot.VirtualHost {
	pv := c.prevVirtualHost(k)
	kept := pv != nil && c.addPrevClusters(pv, m)
	for _, p := range fails {
		p.KeptLastGood = kept
		c.problems = append(c.problems, p)
	}
	if !kept {
		return nil
	}
	return pv
}

// prevVirtualHost returns a copy of prev's virtual host named k.
func (c *compiler) prevVirtualHost(k string) *snapshot.VirtualHost {
	if c.prev == nil {
		return nil
	}
	for _, l := range c.prev.Listeners {
		for _, vh := range l.VirtualHosts {
			if vh.Name == k {
				out := deepCopy(vh)
				out.Internal = false
				return &out
			}
		}
	}
	return nil
}

// addPrevClusters adds every cluster the routes of vh reach, or nothing when one of them
// can be found neither in the inputs (mesh m) nor in prev.
func (c *compiler) addPrevClusters(vh *snapshot.VirtualHost, m string) bool {
	var current []clusterRef
	var old []snapshot.Cluster
	for _, r := range vh.Routes {
		targets := r.Targets
		if r.Mirror != nil {
			targets = append(append([]snapshot.WeightedCluster{}, targets...), snapshot.WeightedCluster{Cluster: r.Mirror.Cluster, Port: r.Mirror.Port})
		}
		for _, t := range targets {
			if _, have := c.clusters[t.Cluster]; have {
				continue
			}
			if vn, why := c.ix.node(t.Cluster, m); why == "" {
				current = append(current, clusterRef{node: vn, key: t.Cluster, protocol: r.Protocol, port: t.Port})
				continue
			}
			pc := c.prevCluster(t.Cluster)
			if pc == nil {
				return false
			}
			old = append(old, *pc)
		}
	}
	for _, r := range current {
		c.addCluster(r)
	}
	for _, pc := range old {
		if _, have := c.clusters[pc.Name]; !have {
			c.clusters[pc.Name] = pc
		}
	}
	return true
}

func (c *compiler) prevCluster(name string) *snapshot.Cluster {
	if c.prev == nil {
		return nil
	}
	for _, cl := range c.prev.Clusters {
		if cl.Name == name {
			out := deepCopy(cl)
			return &out
		}
	}
	return nil
}

// deepCopy copies a snapshot value, so a kept definition shares nothing with prev.
func deepCopy[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// build compiles one virtual service (or gateway route): what it failed on, and the
// clusters its routes reach.
type build struct {
	c     *compiler
	mesh  string
	fails []Problem
	refs  []clusterRef
}

func (b *build) fail(object, field, format string, args ...any) {
	b.fails = append(b.fails, Problem{Object: object, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// virtualService compiles a virtual service's virtual host from its provider.
func (b *build) virtualService(vs *v1alpha1.VirtualService) *snapshot.VirtualHost {
	k := key(vs.Namespace, vs.Name)
	id := objectID("VirtualService", vs.Namespace, vs.Name)
	vh := &snapshot.VirtualHost{Name: k, Domains: domains(vs), Routes: []snapshot.Route{}}
	p := vs.Spec.Provider
	switch {
	case p == nil || (p.VirtualNode == nil && p.VirtualRouter == nil):
		b.c.problem(id, "spec.provider", "not set: the service has no routes")
	case p.VirtualNode != nil:
		if r, ok := b.nodeProvider(vs, id); ok {
			vh.Routes = append(vh.Routes, r)
		}
	default:
		vh.Routes = b.routerProvider(vs, id)
	}
	return vh
}

// nodeProvider is the one route of a service served by a virtual node: every request
// goes to it.
func (b *build) nodeProvider(vs *v1alpha1.VirtualService, id string) (snapshot.Route, bool) {
	const field = "spec.provider.virtualNode"
	pn := vs.Spec.Provider.VirtualNode
	if pn.VirtualNodeRef == nil {
		b.fail(id, field+".virtualNodeARN", "an ARN cannot be resolved outside AWS; use virtualNodeRef")
		return snapshot.Route{}, false
	}
	nk := refKey(pn.VirtualNodeRef.Namespace, pn.VirtualNodeRef.Name, vs.Namespace)
	vn, why := b.c.ix.node(nk, b.mesh)
	if vn == nil {
		b.fail(id, field+".virtualNodeRef", "%s", why)
		return snapshot.Route{}, false
	}
	protocol := string(v1alpha1.PortProtocolHTTP)
	if len(vn.Spec.Listeners) > 0 {
		protocol = string(vn.Spec.Listeners[0].PortMapping.Protocol)
	}
	r := snapshot.Route{
		Name: key(vs.Namespace, vs.Name) + "/virtualNode", Priority: unsetPriority, Protocol: protocol,
		Targets: []snapshot.WeightedCluster{{Cluster: nk, Weight: 100}},
	}
	if protocol == string(v1alpha1.PortProtocolHTTP) || protocol == string(v1alpha1.PortProtocolHTTP2) {
		r.Match.Prefix = "/"
	}
	b.refs = append(b.refs, clusterRef{node: vn, key: nk, protocol: protocol})
	return r, true
}

// routerProvider compiles the routes of a service's virtual router.
func (b *build) routerProvider(vs *v1alpha1.VirtualService, id string) []snapshot.Route {
	const field = "spec.provider.virtualRouter"
	pr := vs.Spec.Provider.VirtualRouter
	if pr.VirtualRouterRef == nil {
		b.fail(id, field+".virtualRouterARN", "an ARN cannot be resolved outside AWS; use virtualRouterRef")
		return []snapshot.Route{}
	}
	rk := refKey(pr.VirtualRouterRef.Namespace, pr.VirtualRouterRef.Name, vs.Namespace)
	vr, why := b.c.ix.router(rk, b.mesh)
	if vr == nil {
		b.fail(id, field+".virtualRouterRef", "%s", why)
		return []snapshot.Route{}
	}
	if len(vr.Spec.Routes) == 0 {
		b.c.once(objectID("VirtualRouter", vr.Namespace, vr.Name), "spec.routes", "not set: the router's services have no routes")
	}
	return b.routerRoutes(vr)
}

// domains are the names a virtual service is called by: its App Mesh name first, then
// the Kubernetes-style names of the object.
func domains(vs *v1alpha1.VirtualService) []string {
	base := vs.Name + "." + vs.Namespace
	out := []string{awsName(vs)}
	for _, d := range []string{base, base + ".svc", base + ".svc.cluster.local"} {
		if !contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// virtualHosts returns the virtual hosts of the services keys (which exist), leaving out
// those that could not be compiled, and resolves domains claimed twice: the first
// service (by name) to claim a domain keeps it, an App Mesh name before a derived one.
func (c *compiler) virtualHosts(keys []string, internal bool) []snapshot.VirtualHost {
	var out []snapshot.VirtualHost
	for _, k := range keys {
		if vh := c.service(k); vh != nil {
			v := *vh
			v.Internal = internal
			out = append(out, v)
		}
	}
	sortVirtualHosts(out)
	return c.dedupeDomains(out)
}

func (c *compiler) dedupeDomains(vhs []snapshot.VirtualHost) []snapshot.VirtualHost {
	owner := map[string]string{}
	for _, vh := range vhs {
		if len(vh.Domains) > 0 && owner[vh.Domains[0]] == "" {
			owner[vh.Domains[0]] = vh.Name
		}
	}
	for i := range vhs {
		vh := &vhs[i]
		kept := make([]string, 0, len(vh.Domains))
		for _, d := range vh.Domains {
			switch o := owner[d]; {
			case o == "":
				owner[d] = vh.Name
				kept = append(kept, d)
			case o == vh.Name:
				kept = append(kept, d)
			default:
				c.once("VirtualService/"+vh.Name, "spec.awsName", "host %q is already served by VirtualService %s; this service does not answer to it", d, o)
			}
		}
		vh.Domains = kept
	}
	return vhs
}
