package controlplane

import (
	"bytes"
	"cmp"
	"context"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	meshc "github.com/canarymesh/canarymesh/internal/mesh"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
	"github.com/canarymesh/canarymesh/internal/store"
)

// SnapshotSink receives compiled snapshots: the push stream's server.
type SnapshotSink interface {
	SetSnapshot(node string, s *snapshot.Snapshot)
	RemoveNode(node string)
}

// encodedSink is a sink that takes a snapshot with its encoding (snapshot.Encode), which
// MeshSync makes anyway, so that it does not encode it again: stream.Server.
type encodedSink interface {
	SetEncodedSnapshot(node string, s *snapshot.Snapshot, enc snapshot.Encoding)
}

// MeshSync compiles the stored mesh into one snapshot per proxy whenever it changes and
// hands them to the push stream:
//
//	store ─list, then watch─▶ Inputs ─mesh.Compile(node, last good)─▶ SetSnapshot(node) ─▶ proxies
//
// Each node keeps its last good snapshot, so a bad change to one service leaves the
// rest, and that service's previous routes, serving. Run keeps the inputs in memory,
// from one List and then the store's change stream, so a change costs a compile but
// not a read and decoding of the whole store.
type MeshSync struct {
	Store   store.Store
	Sink    SnapshotSink
	Log     *slog.Logger
	Options meshc.Options
	// Settle, when set, is how long Run waits after a change before compiling, to batch a
	// burst of changes into one compile. By default Run compiles at once; changes that
	// arrive while it compiles are compiled together next.
	Settle time.Duration
	// OnNodes, if set, is told the set of nodes after every compile (to start and stop
	// in-process proxies).
	OnNodes func(nodes []string)

	mu   sync.Mutex
	last map[string]*snapshot.Snapshot
	// encodings are the last snapshots' encodings, which tell whether a node's snapshot
	// changed.
	encodings map[string]snapshot.Encoding
	problems  map[string]bool
	// inputs are the compiler's inputs by key, as last listed and then changed by the
	// watch (Run).
	inputs map[store.Key]v1alpha1.Object
	// compiled is the store revision every node's snapshot reflects: the last compile's,
	// or that of a later change no snapshot shows.
	compiled atomic.Uint64
}

// Compiled is the store revision that every node's last snapshot reflects (0 before the
// first compile): the revision the last compile read, or a later one when the changes
// since then are none a snapshot shows.
func (m *MeshSync) Compiled() uint64 { return m.compiled.Load() }

// Run compiles until ctx ends: once at the start, then after every change that can
// alter a snapshot; changes that arrive during a compile are compiled together next.
// Writes the compiler does not read (canaries, events, the status of mesh objects other
// than workloads) compile nothing, but count as compiled (Compiled).
func (m *MeshSync) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		rv, err := m.Sync(ctx)
		if err != nil {
			m.Log.ErrorContext(ctx, "mesh compile failed", "err", err)
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		if err := m.follow(ctx, rv); err != nil && ctx.Err() == nil {
			m.Log.WarnContext(ctx, "watch for mesh changes ended", "err", err)
		}
	}
	return nil
}

// follow applies the store's changes after rv to the inputs and compiles them, until
// the watch ends (Run then lists again).
func (m *MeshSync) follow(ctx context.Context, rv uint64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := m.Store.Watch(wctx, store.Filter{}, rv)
	if err != nil {
		return err
	}
	for {
		var ev store.Event
		var ok bool
		select {
		case ev, ok = <-events:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		dirty := m.note(ev)
		last := ev.ResourceVersion
		if dirty && m.Settle > 0 && !sleep(ctx, m.Settle) {
			return ctx.Err()
		}
	drain: // take what has arrived meanwhile
		for {
			select {
			case ev, ok = <-events:
				if !ok {
					break drain
				}
				dirty = m.note(ev) || dirty
				last = ev.ResourceVersion
			default:
				break drain
			}
		}
		if dirty {
			m.compile(ctx, last)
		} else {
			// The snapshots reflect the store at this revision too.
			m.advance(last)
		}
		if !ok {
			return nil
		}
	}
}

// note applies ev to the inputs and reports whether a compile could come out
// differently after it.
func (m *MeshSync) note(ev store.Event) bool {
	var in meshc.Inputs
	if !in.Add(ev.Object) {
		return false
	}
	k, err := store.KeyOf(ev.Object)
	if err != nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.inputs[k]
	if ev.Type == store.Deleted {
		delete(m.inputs, k)
		return true
	}
	m.inputs[k] = ev.Object
	return old == nil || !sameButStatus(old, ev.Object)
}

// sameButStatus reports whether cur differs from old at most in its status and
// resourceVersion, for a kind whose status the compiler does not read. The store raises
// metadata.generation whenever the spec changes.
func sameButStatus(old, cur v1alpha1.Object) bool {
	if _, ok := cur.(*v1alpha1.Workload); ok {
		return false // its status lists the instances: the endpoints
	}
	return old.GetGeneration() != 0 && old.GetGeneration() == cur.GetGeneration() &&
		old.GetUID() == cur.GetUID() && maps.Equal(old.GetLabels(), cur.GetLabels()) &&
		maps.Equal(old.GetAnnotations(), cur.GetAnnotations()) &&
		slices.Equal(old.GetFinalizers(), cur.GetFinalizers()) &&
		old.GetDeletionTimestamp().Equal(cur.GetDeletionTimestamp())
}

// advance records that the snapshots reflect the store at revision rv.
func (m *MeshSync) advance(rv uint64) {
	for {
		c := m.compiled.Load()
		if rv <= c || m.compiled.CompareAndSwap(c, rv) {
			return
		}
	}
}

// Snapshot returns the last snapshot compiled for a node.
func (m *MeshSync) Snapshot(node string) *snapshot.Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last[node]
}

// Sync lists the store, compiles every node once and returns the resourceVersion it
// compiled.
func (m *MeshSync) Sync(ctx context.Context) (uint64, error) {
	objs, rv, err := m.Store.List(ctx, store.Filter{})
	if err != nil {
		return 0, err
	}
	inputs := map[store.Key]v1alpha1.Object{}
	for _, o := range objs {
		var in meshc.Inputs
		if k, err := store.KeyOf(o); err == nil && in.Add(o) {
			inputs[k] = o
		}
	}
	m.mu.Lock()
	m.inputs = inputs
	m.mu.Unlock()
	m.compile(ctx, rv)
	return rv, nil
}

// compile compiles every node from the inputs, which reflect the store at revision rv,
// and hands the snapshots that changed to the sink as soon as each is built. Nodes are
// compiled on every processor: they share the index and what it has built (mesh.Index).
func (m *MeshSync) compile(ctx context.Context, rv uint64) {
	m.mu.Lock()
	ix := meshc.Index(inputsOf(m.inputs))
	nodes := ix.Nodes()
	if m.last == nil {
		m.last = map[string]*snapshot.Snapshot{}
		m.encodings = map[string]snapshot.Encoding{}
		m.problems = map[string]bool{}
	}
	// While the nodes compile, m.last and m.encodings are only read.
	out := make([]nodeOutcome, len(nodes))
	var sinkMu sync.Mutex
	forEach(len(nodes), func(i int) {
		node, o := nodes[i], &out[i]
		o.snap, o.problems, o.err = ix.Build(node, m.last[node], m.Options)
		if o.err == nil {
			o.enc, o.err = snapshot.Encode(o.snap)
		}
		if o.err != nil || (m.last[node] != nil && bytes.Equal(m.encodings[node], o.enc)) {
			return
		}
		// Versions come from the store's revision, which only grows and survives
		// restarts, so a proxy that kept running across a control-plane restart never
		// mistakes new content for what it already has.
		o.snap.Version, o.changed = rv, true
		sinkMu.Lock()
		defer sinkMu.Unlock()
		if es, ok := m.Sink.(encodedSink); ok {
			es.SetEncodedSnapshot(node, o.snap, o.enc)
		} else {
			m.Sink.SetSnapshot(node, o.snap)
		}
	})
	seenProblems := map[string]bool{}
	live := map[string]bool{}
	for i, node := range nodes {
		live[node] = true
		o := &out[i]
		for _, p := range o.problems {
			key := node + ": " + p.String()
			seenProblems[key] = true
			if !m.problems[key] {
				m.Log.WarnContext(ctx, "mesh problem", "node", node, "problem", p.String())
			}
		}
		if o.err != nil {
			m.Log.ErrorContext(ctx, "snapshot refused; the node keeps its last good one", "node", node, "err", o.err)
			continue
		}
		if o.changed {
			m.last[node], m.encodings[node] = o.snap, o.enc
		}
	}
	for node := range m.last {
		if !live[node] {
			delete(m.last, node)
			delete(m.encodings, node)
			m.Sink.RemoveNode(node)
		}
	}
	m.problems = seenProblems
	m.advance(rv)
	m.mu.Unlock()
	if m.OnNodes != nil {
		sort.Strings(nodes)
		m.OnNodes(nodes)
	}
}

// nodeOutcome is what compiling one node gave.
type nodeOutcome struct {
	snap     *snapshot.Snapshot
	enc      snapshot.Encoding
	problems []meshc.Problem
	err      error
	changed  bool // snap differs from the node's last one and was handed to the sink
}

// nodesPerWorker is the fewest nodes worth another goroutine.
const nodesPerWorker = 16

// forEach calls f for 0 ≤ i < n, on as many goroutines as there are processors to run
// them, and returns when every call has.
func forEach(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/nodesPerWorker)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}

// inputsOf sorts the objects into the compiler's inputs, in the order a List returns
// them (kind, namespace, name).
func inputsOf(objs map[store.Key]v1alpha1.Object) *meshc.Inputs {
	keys := slices.SortedFunc(maps.Keys(objs), func(a, b store.Key) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	in := &meshc.Inputs{}
	for _, k := range keys {
		in.Add(objs[k])
	}
	return in
}
