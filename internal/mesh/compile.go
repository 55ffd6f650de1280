package mesh

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// Inputs are the stored resources the compiler reads. Nothing in them is modified.
type Inputs struct {
	Meshes          []*v1alpha1.Mesh
	VirtualNodes    []*v1alpha1.VirtualNode
	VirtualServices []*v1alpha1.VirtualService
	VirtualRouters  []*v1alpha1.VirtualRouter
	VirtualGateways []*v1alpha1.VirtualGateway
	GatewayRoutes   []*v1alpha1.GatewayRoute
	// Workloads give virtual nodes their endpoints in standalone mode.
	Workloads []*v1alpha1.Workload
	// Namespaces carry the labels a VirtualGateway's namespaceSelector matches.
	Namespaces []*corev1.Namespace
}

// DefaultEgressPort is where the egress listener serves unless Options say otherwise.
const DefaultEgressPort = 15001

// Options steer compilation.
type Options struct {
	// EgressPort is the declared port of egress listeners; DefaultEgressPort when 0.
	EgressPort int
	// Sidecar says a virtual node's proxy runs beside a single instance of its
	// application (Kubernetes): its local cluster is 127.0.0.1 on each listener's port.
	// Otherwise (standalone) one proxy fronts every instance of the node, and the local
	// cluster holds all the node's endpoints.
	Sidecar bool
}

func (o Options) egressPort() int {
	if o.EgressPort == 0 {
		return DefaultEgressPort
	}
	return o.EgressPort
}

// Problem is something the compiler could not put into a snapshot, and why.
type Problem struct {
	// Object is "Kind/NS/NAME" ("Mesh/NAME" for a mesh).
	Object string `json:"object"`
	// Field is the path of the offending field in Object, e.g.
	// "spec.routes[0].httpRoute.action.weightedTargets[1].virtualNodeRef".
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
	// KeptLastGood is set when the snapshot still carries the object's definition from
	// the previous snapshot rather than dropping it.
	KeptLastGood bool `json:"keptLastGood,omitempty"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Object)
	if p.Field != "" {
		b.WriteString(" ")
		b.WriteString(p.Field)
	}
	b.WriteString(": ")
	b.WriteString(p.Reason)
	if p.KeptLastGood {
		b.WriteString(" (serving its last good definition)")
	}
	return b.String()
}

// Node name prefixes, as in snapshot.Snapshot.Node.
const (
	virtualNodePrefix    = "VirtualNode/"
	virtualGatewayPrefix = "VirtualGateway/"
)

// NodeName returns the node name of a virtual node or virtual gateway.
func NodeName(kind, namespace, name string) string {
	return kind + "/" + namespace + "/" + name
}

// Nodes lists every node that should run a proxy: the egress node, and each VirtualNode
// and VirtualGateway that belongs to an existing mesh: the egress node first, the others
// sorted.
func Nodes(in *Inputs) []string { return Index(in).Nodes() }

// Indexed are inputs indexed once, to compile every node of the same inputs: a control
// plane compiles all its nodes on every change, and indexing the whole mesh for each
// node would make that cost grow with the square of the mesh's size; and the virtual
// services and clusters that many nodes share are built once (shared.go). Its nodes may
// be compiled concurrently. The inputs must not change while it is in use.
type Indexed struct {
	ix     *index
	shared *shared
}

// Index indexes in for compiling its nodes.
func Index(in *Inputs) *Indexed { return &Indexed{ix: newIndex(in), shared: newShared()} }

// Nodes is Nodes of the indexed inputs.
func (x *Indexed) Nodes() []string {
	ix := x.ix
	var out []string
	for _, k := range sortedKeys(ix.nodes) {
		out = append(out, virtualNodePrefix+k)
	}
	for _, k := range sortedKeys(ix.gateways) {
		out = append(out, virtualGatewayPrefix+k)
	}
	sort.Strings(out)
	return append([]string{snapshot.EgressNode}, out...)
}

// Compile builds the snapshot of one node: snapshot.EgressNode, "VirtualNode/NS/NAME" or
// "VirtualGateway/NS/NAME". prev is the node's last good snapshot (nil at first): a
// virtual service whose current definition cannot be compiled keeps its definition from
// prev. Problems list what could not be compiled and why, sorted.
//
// Version is prev's when nothing changed, prev's plus one when something did, and 1 for
// a first snapshot. A node that does not exist (or belongs to no mesh) gets an empty
// snapshot and a Problem. Compile fails only on a node name it cannot parse, or if the
// snapshot it built is not Consistent, which would be a bug of the compiler.
func Compile(in *Inputs, node string, prev *snapshot.Snapshot, opts Options) (*snapshot.Snapshot, []Problem, error) {
	return Index(in).Compile(node, prev, opts)
}

// Compile is Compile of the indexed inputs.
func (x *Indexed) Compile(node string, prev *snapshot.Snapshot, opts Options) (*snapshot.Snapshot, []Problem, error) {
	s, problems, err := x.Build(node, prev, opts)
	if err != nil {
		return nil, nil, err
	}
	s.Version = nextVersion(prev, s)
	return s, problems, nil
}

// Build is Compile without the version: the snapshot's Version is 0. It is for a caller
// that tells changed snapshots apart itself, by their encodings (snapshot.Encode), which
// it needs anyway to push them: finding the version encodes both snapshots.
func (x *Indexed) Build(node string, prev *snapshot.Snapshot, opts Options) (*snapshot.Snapshot, []Problem, error) {
	c := newCompiler(x.ix, prev, opts)
	c.shared = x.shared
	s := &snapshot.Snapshot{Node: node, Listeners: []snapshot.Listener{}}
	switch {
	case node == snapshot.EgressNode:
		c.problems = append(c.problems, c.ix.problems...)
		c.compileEgressNode(s)
	case strings.HasPrefix(node, virtualNodePrefix):
		ns, name, err := splitNode(node, virtualNodePrefix)
		if err != nil {
			return nil, nil, err
		}
		c.compileVirtualNode(s, ns, name)
	case strings.HasPrefix(node, virtualGatewayPrefix):
		ns, name, err := splitNode(node, virtualGatewayPrefix)
		if err != nil {
			return nil, nil, err
		}
		c.compileVirtualGateway(s, ns, name)
	default:
		return nil, nil, fmt.Errorf("node %q: expected %q, VirtualNode/NS/NAME or VirtualGateway/NS/NAME", node, snapshot.EgressNode)
	}
	s.Clusters = c.clusterList()
	sort.Slice(s.Listeners, func(i, j int) bool { return s.Listeners[i].Name < s.Listeners[j].Name })
	if err := Consistent(s); err != nil {
		return nil, nil, fmt.Errorf("compiled snapshot of %s is inconsistent: %w", node, err)
	}
	return s, sortProblems(c.problems), nil
}

func splitNode(node, prefix string) (ns, name string, err error) {
	rest := strings.TrimPrefix(node, prefix)
	ns, name, ok := strings.Cut(rest, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("node %q: expected %sNS/NAME", node, prefix)
	}
	return ns, name, nil
}

// nextVersion compares the content of s with prev, leaving the Version out.
func nextVersion(prev, s *snapshot.Snapshot) uint64 {
	if prev == nil {
		return 1
	}
	if bytes.Equal(encoding(prev), encoding(s)) {
		return prev.Version
	}
	return prev.Version + 1
}

// encoding is a snapshot's JSON without its version. encoding/json writes struct fields
// in order and map keys sorted, so equal content gives equal bytes.
func encoding(s *snapshot.Snapshot) snapshot.Encoding {
	e, err := snapshot.Encode(s)
	if err != nil {
		// A snapshot is plain values; it always marshals.
		panic(err)
	}
	return e
}

func sortProblems(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		return a.Reason < b.Reason
	})
	out := ps[:0]
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Consistent checks a snapshot before it is handed out: every route target names a
// cluster present in the snapshot, names are unique, regular expressions compile (RE2).
// See snapshot.Snapshot.Consistent, which the proxy runs too.
func Consistent(s *snapshot.Snapshot) error {
	return s.Consistent()
}

// Add sorts one stored object into the inputs and reports whether it is one the
// compiler reads.
func (in *Inputs) Add(o v1alpha1.Object) bool {
	switch x := o.(type) {
	case *v1alpha1.Mesh:
		in.Meshes = append(in.Meshes, x)
	case *v1alpha1.VirtualNode:
		in.VirtualNodes = append(in.VirtualNodes, x)
	case *v1alpha1.VirtualService:
		in.VirtualServices = append(in.VirtualServices, x)
	case *v1alpha1.VirtualRouter:
		in.VirtualRouters = append(in.VirtualRouters, x)
	case *v1alpha1.VirtualGateway:
		in.VirtualGateways = append(in.VirtualGateways, x)
	case *v1alpha1.GatewayRoute:
		in.GatewayRoutes = append(in.GatewayRoutes, x)
	case *v1alpha1.Workload:
		in.Workloads = append(in.Workloads, x)
	case *corev1.Namespace:
		in.Namespaces = append(in.Namespaces, x)
	default:
		return false
	}
	return true
}
