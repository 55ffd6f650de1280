package controlplane

import (
	"context"
	"log/slog"
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

// MeshSync compiles the stored mesh into one snapshot per proxy whenever it changes and
// hands them to the push stream:
//
//	store ─watch─▶ Inputs ─mesh.Compile(node, last good)─▶ SetSnapshot(node) ─▶ proxies
//
// Each node keeps its last good snapshot, so a bad change to one service leaves the
// rest, and that service's previous routes, serving.
type MeshSync struct {
	Store   store.Store
	Sink    SnapshotSink
	Log     *slog.Logger
	Options meshc.Options
	// Settle batches a burst of changes into one compile (default 20ms).
	Settle time.Duration
	// OnNodes, if set, is told the set of nodes after every compile (to start and stop
	// in-process proxies).
	OnNodes func(nodes []string)

	mu       sync.Mutex
	last     map[string]*snapshot.Snapshot
	problems map[string]bool
	// compiled is the store revision of the last Sync: every node's snapshot reflects it.
	compiled atomic.Uint64
}

// Compiled is the store revision the last Sync compiled every node from (0 before the
// first): each node's last snapshot reflects the store as it was then.
func (m *MeshSync) Compiled() uint64 { return m.compiled.Load() }

// Run compiles until ctx ends.
func (m *MeshSync) Run(ctx context.Context) error {
	if m.Settle == 0 {
		m.Settle = 20 * time.Millisecond
	}
	r := &StatusReconciler{Store: m.Store, Log: m.Log, Settle: m.Settle}
	for ctx.Err() == nil {
		rv, err := m.Sync(ctx)
		if err != nil {
			m.Log.ErrorContext(ctx, "mesh compile failed", "err", err)
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		if err := r.waitForChange(ctx, rv); err != nil && ctx.Err() == nil {
			m.Log.WarnContext(ctx, "watch for mesh changes ended", "err", err)
		}
	}
	return nil
}

// Snapshot returns the last snapshot compiled for a node.
func (m *MeshSync) Snapshot(node string) *snapshot.Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last[node]
}

// Sync compiles every node once and returns the resourceVersion it compiled.
func (m *MeshSync) Sync(ctx context.Context) (uint64, error) {
	objs, rv, err := m.Store.List(ctx, store.Filter{})
	if err != nil {
		return 0, err
	}
	in := inputsOf(objs)
	nodes := meshc.Nodes(in)
	m.mu.Lock()
	if m.last == nil {
		m.last = map[string]*snapshot.Snapshot{}
		m.problems = map[string]bool{}
	}
	seenProblems := map[string]bool{}
	live := map[string]bool{}
	for _, node := range nodes {
		live[node] = true
		snap, problems, err := meshc.Compile(in, node, m.last[node], m.Options)
		for _, p := range problems {
			key := node + ": " + p.String()
			seenProblems[key] = true
			if !m.problems[key] {
				m.Log.WarnContext(ctx, "mesh problem", "node", node, "problem", p.String())
			}
		}
		if err != nil {
			m.Log.ErrorContext(ctx, "snapshot refused; the node keeps its last good one", "node", node, "err", err)
			continue
		}
		if prev := m.last[node]; prev == nil || prev.Version != snap.Version {
			// Versions come from the store's revision, which only grows and survives
			// restarts, so a proxy that kept running across a control-plane restart
			// never mistakes new content for what it already has.
			snap.Version = rv
			m.last[node] = snap
			m.Sink.SetSnapshot(node, snap)
		}
	}
	for node := range m.last {
		if !live[node] {
			delete(m.last, node)
			m.Sink.RemoveNode(node)
		}
	}
	m.problems = seenProblems
	m.compiled.Store(rv)
	m.mu.Unlock()
	if m.OnNodes != nil {
		sort.Strings(nodes)
		m.OnNodes(nodes)
	}
	return rv, nil
}

// inputsOf sorts stored objects into the compiler's inputs.
func inputsOf(objs []v1alpha1.Object) *meshc.Inputs {
	in := &meshc.Inputs{}
	for _, o := range objs {
		in.Add(o)
	}
	return in
}
