package mesh

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// index holds the inputs by "NS/NAME", each mesh object only if it belongs to an
// existing mesh, with the mesh it belongs to.
type index struct {
	meshes   map[string]*v1alpha1.Mesh
	nodes    map[string]*v1alpha1.VirtualNode
	services map[string]*v1alpha1.VirtualService
	routers  map[string]*v1alpha1.VirtualRouter
	gateways map[string]*v1alpha1.VirtualGateway
	// gatewayRoutes are sorted by namespace and name.
	gatewayRoutes []*v1alpha1.GatewayRoute
	workloads     []*v1alpha1.Workload
	namespaces    map[string]*corev1.Namespace
	// meshOf is the mesh of every member, by object ("Kind/NS/NAME").
	meshOf map[string]string
	// problems are the membership problems of every object; excluded names the objects
	// they left out.
	problems []Problem
	excluded map[string]Problem
}

func key(ns, name string) string { return ns + "/" + name }

func objectID(kind, ns, name string) string {
	if ns == "" {
		return kind + "/" + name
	}
	return kind + "/" + ns + "/" + name
}

// refKey resolves a reference's namespace, defaulting to the referring object's.
func refKey(ns *string, name, defaultNS string) string {
	if ns != nil && *ns != "" {
		return key(*ns, name)
	}
	return key(defaultNS, name)
}

func newIndex(in *Inputs) *index {
	ix := &index{
		meshes: map[string]*v1alpha1.Mesh{}, nodes: map[string]*v1alpha1.VirtualNode{},
		services: map[string]*v1alpha1.VirtualService{}, routers: map[string]*v1alpha1.VirtualRouter{},
		gateways: map[string]*v1alpha1.VirtualGateway{}, namespaces: map[string]*corev1.Namespace{},
		meshOf: map[string]string{}, excluded: map[string]Problem{},
	}
	if in == nil {
		return ix
	}
	for _, m := range in.Meshes {
		if m != nil && ix.meshes[m.Name] == nil {
			ix.meshes[m.Name] = m
		}
	}
	for _, n := range in.Namespaces {
		if n != nil && ix.namespaces[n.Name] == nil {
			ix.namespaces[n.Name] = n
		}
	}
	for _, o := range in.VirtualNodes {
		if o != nil && ix.admit("VirtualNode", &o.ObjectMeta, o.Spec.MeshRef) && ix.nodes[key(o.Namespace, o.Name)] == nil {
			ix.nodes[key(o.Namespace, o.Name)] = o
		}
	}
	for _, o := range in.VirtualServices {
		if o != nil && ix.admit("VirtualService", &o.ObjectMeta, o.Spec.MeshRef) && ix.services[key(o.Namespace, o.Name)] == nil {
			ix.services[key(o.Namespace, o.Name)] = o
		}
	}
	for _, o := range in.VirtualRouters {
		if o != nil && ix.admit("VirtualRouter", &o.ObjectMeta, o.Spec.MeshRef) && ix.routers[key(o.Namespace, o.Name)] == nil {
			ix.routers[key(o.Namespace, o.Name)] = o
		}
	}
	for _, o := range in.VirtualGateways {
		if o != nil && ix.admit("VirtualGateway", &o.ObjectMeta, o.Spec.MeshRef) && ix.gateways[key(o.Namespace, o.Name)] == nil {
			ix.gateways[key(o.Namespace, o.Name)] = o
		}
	}
	seen := map[string]bool{}
	for _, o := range in.GatewayRoutes {
		if o != nil && ix.admit("GatewayRoute", &o.ObjectMeta, o.Spec.MeshRef) && !seen[key(o.Namespace, o.Name)] {
			seen[key(o.Namespace, o.Name)] = true
			ix.gatewayRoutes = append(ix.gatewayRoutes, o)
		}
	}
	sort.Slice(ix.gatewayRoutes, func(i, j int) bool {
		a, b := ix.gatewayRoutes[i], ix.gatewayRoutes[j]
		return key(a.Namespace, a.Name) < key(b.Namespace, b.Name)
	})
	for _, w := range in.Workloads {
		if w != nil {
			ix.workloads = append(ix.workloads, w)
		}
	}
	sort.SliceStable(ix.workloads, func(i, j int) bool {
		a, b := ix.workloads[i], ix.workloads[j]
		return key(a.Namespace, a.Name) < key(b.Namespace, b.Name)
	})
	return ix
}

// admit records the mesh of a member, or the problem that leaves it out.
func (ix *index) admit(kind string, meta *metav1.ObjectMeta, ref *v1alpha1.MeshReference) bool {
	id := objectID(kind, meta.Namespace, meta.Name)
	reason := ""
	switch {
	case ref == nil || ref.Name == "":
		reason = "not set: the object belongs to no mesh and is left out"
	case ix.meshes[ref.Name] == nil:
		reason = fmt.Sprintf("mesh %q does not exist; the object is left out", ref.Name)
	case ref.UID != "" && ix.meshes[ref.Name].UID != "" && ref.UID != ix.meshes[ref.Name].UID:
		reason = fmt.Sprintf("mesh %q was deleted and created again (uid %s, not %s); the object is left out",
			ref.Name, ix.meshes[ref.Name].UID, ref.UID)
	}
	if reason != "" {
		if _, dup := ix.excluded[id]; !dup {
			p := Problem{Object: id, Field: "spec.meshRef", Reason: reason}
			ix.excluded[id] = p
			ix.problems = append(ix.problems, p)
		}
		return false
	}
	if _, dup := ix.meshOf[id]; dup {
		return false
	}
	ix.meshOf[id] = ref.Name
	return true
}

// lookup explains why a reference from mesh m to an object does not resolve, or
// returns "" when it does.
func (ix *index) missing(kind, k, m string, exists bool) string {
	id := kind + "/" + k
	if !exists {
		if p, ok := ix.excluded[id]; ok {
			return fmt.Sprintf("%s %s belongs to no mesh (%s)", kind, k, p.Reason)
		}
		return fmt.Sprintf("%s %s does not exist", kind, k)
	}
	if got := ix.meshOf[id]; got != m {
		return fmt.Sprintf("%s %s is in mesh %q, not %q", kind, k, got, m)
	}
	return ""
}

// node returns the virtual node k of mesh m, or why there is none.
func (ix *index) node(k, m string) (*v1alpha1.VirtualNode, string) {
	vn := ix.nodes[k]
	if why := ix.missing("VirtualNode", k, m, vn != nil); why != "" {
		return nil, why
	}
	return vn, ""
}

// service returns the virtual service k of mesh m, or why there is none.
func (ix *index) service(k, m string) (*v1alpha1.VirtualService, string) {
	vs := ix.services[k]
	if why := ix.missing("VirtualService", k, m, vs != nil); why != "" {
		return nil, why
	}
	return vs, ""
}

// router returns the virtual router k of mesh m, or why there is none.
func (ix *index) router(k, m string) (*v1alpha1.VirtualRouter, string) {
	vr := ix.routers[k]
	if why := ix.missing("VirtualRouter", k, m, vr != nil); why != "" {
		return nil, why
	}
	return vr, ""
}

// serviceByAWSName finds the virtual service of mesh m whose App Mesh name is name.
func (ix *index) serviceByAWSName(name, m string) (string, string) {
	var found []string
	for _, k := range sortedKeys(ix.services) {
		vs := ix.services[k]
		if ix.meshOf["VirtualService/"+k] == m && awsName(vs) == name {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Sprintf("no virtual service of mesh %q is named %q", m, name)
	case 1:
		return found[0], ""
	}
	return "", fmt.Sprintf("virtual services %v of mesh %q are all named %q", found, m, name)
}

// servicesOf lists the virtual services of mesh m, or of every mesh when m is "".
func (ix *index) servicesOf(m string) []string {
	var out []string
	for _, k := range sortedKeys(ix.services) {
		if m == "" || ix.meshOf["VirtualService/"+k] == m {
			out = append(out, k)
		}
	}
	return out
}

// awsName is a virtual service's App Mesh name: spec.awsName, or NAME.NS by default.
func awsName(vs *v1alpha1.VirtualService) string {
	if vs.Spec.AWSName != nil && *vs.Spec.AWSName != "" {
		return *vs.Spec.AWSName
	}
	ns := vs.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	return vs.Name + "." + ns
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
