package mesh

import (
	"sync"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// shared is what every node compiled from the same Indexed finds alike: the virtual
// host of a virtual service and the cluster of a virtual node, each with the problems
// met building it. A control plane compiles every node on every change, and a thousand
// nodes that call the same service would otherwise build it a thousand times. What is
// kept here is shared by the snapshots of those nodes, so nothing may change it after
// it is built: snapshots are not changed once compiled.
type shared struct {
	mu       sync.Mutex
	services map[serviceKey]*builtService
	clusters map[clusterKey]*builtCluster
}

type serviceKey struct {
	key  string
	opts Options
}

// builtService is a virtual service compiled from the inputs alone: its virtual host
// and the clusters its routes reach when it compiled (no fails), else what failed.
type builtService struct {
	vh       *snapshot.VirtualHost
	fails    []Problem
	refs     []clusterRef
	problems []Problem
}

type clusterKey struct {
	key, protocol string
	port          int
	opts          Options
}

type builtCluster struct {
	cluster  snapshot.Cluster
	problems []Problem
}

func newShared() *shared {
	return &shared{services: map[serviceKey]*builtService{}, clusters: map[clusterKey]*builtCluster{}}
}

// service returns the virtual service k of mesh m built for c's inputs and options,
// building it once. Nodes compiled concurrently may both build it; either result is the
// same.
func (sh *shared) service(c *compiler, k, m string) *builtService {
	sk := serviceKey{key: k, opts: c.opts}
	sh.mu.Lock()
	bs, ok := sh.services[sk]
	sh.mu.Unlock()
	if ok {
		return bs
	}
	// A scratch compiler keeps the problems met building the service apart from the
	// node's; building reads nothing else of the compiler but the index and options.
	scratch := newCompiler(c.ix, nil, c.opts)
	b := &build{c: scratch, mesh: m}
	vh := b.virtualService(c.ix.services[k])
	bs = &builtService{vh: vh, fails: b.fails, refs: b.refs, problems: scratch.problems}
	sh.mu.Lock()
	sh.services[sk] = bs
	sh.mu.Unlock()
	return bs
}

// cluster returns the cluster of r built for c's inputs and options, building it once.
func (sh *shared) cluster(c *compiler, r clusterRef) *builtCluster {
	ck := clusterKey{key: r.key, protocol: r.protocol, port: r.port, opts: c.opts}
	sh.mu.Lock()
	bc, ok := sh.clusters[ck]
	sh.mu.Unlock()
	if ok {
		return bc
	}
	scratch := newCompiler(c.ix, nil, c.opts)
	bc = &builtCluster{cluster: scratch.nodeCluster(r), problems: scratch.problems}
	sh.mu.Lock()
	sh.clusters[ck] = bc
	sh.mu.Unlock()
	return bc
}
