package controlplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	meshc "github.com/canarymesh/canarymesh/internal/mesh"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
	"github.com/canarymesh/canarymesh/internal/store"
)

// sink keeps what MeshSync hands to the push stream.
type sink struct {
	mu    sync.Mutex
	snaps map[string]*snapshot.Snapshot
}

func (s *sink) SetSnapshot(node string, snap *snapshot.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snaps == nil {
		s.snaps = map[string]*snapshot.Snapshot{}
	}
	s.snaps[node] = snap
}

func (s *sink) RemoveNode(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.snaps, node)
}

// A proxy that outlives a control-plane restart must never be sent a new snapshot under a
// version it already has: versions keep growing across MeshSync instances.
func TestSnapshotVersionsGrowAcrossRestarts(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := c.Apply(ctx, []v1alpha1.Object{mesh("m", nil), vs("shop", "web", "web-router", "m"), vr("shop", "web-router", "m", "a")}, false); err != nil {
		t.Fatal(err)
	}
	first := &sink{}
	if _, err := (&MeshSync{Store: st, Sink: first, Log: log}).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before := first.snaps[snapshot.EgressNode]
	if before == nil || before.Version == 0 {
		t.Fatalf("no egress snapshot: %+v", first.snaps)
	}
	// A change, compiled by a fresh MeshSync, as after a restart.
	if _, err := c.Apply(ctx, []v1alpha1.Object{vr("shop", "web-router", "m", "a", "b")}, false); err != nil {
		t.Fatal(err)
	}
	second := &sink{}
	if _, err := (&MeshSync{Store: st, Sink: second, Log: log}).Sync(ctx); err != nil {
		t.Fatal(err)
	}
	after := second.snaps[snapshot.EgressNode]
	if after.Version <= before.Version {
		t.Errorf("version %d after restart is not above %d before", after.Version, before.Version)
	}
	// Nothing changed: the same MeshSync does not hand out a new version.
	ms := &MeshSync{Store: st, Sink: second, Log: log}
	_, _ = ms.Sync(ctx)
	v := second.snaps[snapshot.EgressNode].Version
	_, _ = ms.Sync(ctx)
	if second.snaps[snapshot.EgressNode].Version != v {
		t.Errorf("an idle sync bumped the version")
	}
}

// Run compiles again after a change that a snapshot can show, and after nothing else:
// writes of kinds the compiler does not read (a Canary here) and status writes of mesh
// objects only move Compiled on, so Propagation does not wait on them.
func TestRunCompilesOnlyForWhatSnapshotsShow(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Apply(ctx, []v1alpha1.Object{mesh("m", nil), staticNode("shop", "a", "m"), staticNode("shop", "b", "m"),
		vs("shop", "web", "web-router", "m"), vr("shop", "web-router", "m", "a")}, false); err != nil {
		t.Fatal(err)
	}
	var compiles atomic.Int64
	out := &sink{}
	ms := &MeshSync{Store: st, Sink: out, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnNodes: func([]string) { compiles.Add(1) }}
	go func() { _ = ms.Run(ctx) }()
	waitUntil(ctx, t, "the first compile", func() bool { return compiles.Load() == 1 })

	cd := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	cd.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	stored, err := st.Create(ctx, cd)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "the Canary's revision compiled", func() bool { return ms.Compiled() >= revision(t, stored) })

	obj, err := st.Get(ctx, store.Key{Kind: "VirtualRouter", Namespace: "shop", Name: "web-router"})
	if err != nil {
		t.Fatal(err)
	}
	router := obj.(*v1alpha1.VirtualRouter)
	router.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
		Reason: "Ready", LastTransitionTime: metav1.Now()}}
	if stored, err = st.Update(ctx, router); err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "the status write's revision compiled", func() bool { return ms.Compiled() >= revision(t, stored) })
	egress := out.snapshot(snapshot.EgressNode)

	if _, err := c.Apply(ctx, []v1alpha1.Object{vr("shop", "web-router", "m", "a", "b")}, false); err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "a new egress snapshot", func() bool { return out.snapshot(snapshot.EgressNode) != egress })
	waitUntil(ctx, t, "the second compile", func() bool { return compiles.Load() >= 2 })
	if n := compiles.Load(); n != 2 {
		t.Errorf("compiled %d times for one change of a router, want 2 (the first and the change)", n)
	}
}

// The watch's changes are told apart: a compile can come out differently after a
// change of spec, labels or a workload's status, not after another status write or a
// kind the compiler does not read.
func TestNoteTellsWhatACompileSees(t *testing.T) {
	base := vr("shop", "web-router", "m", "a")
	base.Generation, base.ResourceVersion = 3, "10"
	statusOnly := base.DeepCopy()
	statusOnly.ResourceVersion = "11"
	statusOnly.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue}}
	newSpec := statusOnly.DeepCopy()
	newSpec.Generation = 4
	labelled := statusOnly.DeepCopy()
	labelled.Labels = map[string]string{"team": "web"}
	wl := &v1alpha1.Workload{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", Generation: 1}}
	wl.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Workload"))
	wlReady := wl.DeepCopy()
	wlReady.Status.ReadyReplicas = 1
	cd := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	cd.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	tests := []struct {
		name  string
		had   v1alpha1.Object
		event store.Event
		want  bool
	}{
		{"status only", base, store.Event{Type: store.Modified, Object: statusOnly}, false},
		{"spec", base, store.Event{Type: store.Modified, Object: newSpec}, true},
		{"labels", base, store.Event{Type: store.Modified, Object: labelled}, true},
		{"new", nil, store.Event{Type: store.Added, Object: base}, true},
		{"deleted", base, store.Event{Type: store.Deleted, Object: base}, true},
		{"a workload's status", wl, store.Event{Type: store.Modified, Object: wlReady}, true},
		{"not an input", nil, store.Event{Type: store.Added, Object: cd}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := &MeshSync{inputs: map[store.Key]v1alpha1.Object{}}
			if tt.had != nil {
				k, _ := store.KeyOf(tt.had)
				ms.inputs[k] = tt.had
			}
			if got := ms.note(tt.event); got != tt.want {
				t.Errorf("note = %v, want %v", got, tt.want)
			}
			k, _ := store.KeyOf(tt.event.Object)
			if _, kept := ms.inputs[k]; tt.want && kept == (tt.event.Type == store.Deleted) {
				t.Errorf("the inputs hold %s: %v after a %s", k, kept, tt.event.Type)
			}
		})
	}
}

func (s *sink) snapshot(node string) *snapshot.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snaps[node]
}

func revision(t *testing.T, o v1alpha1.Object) uint64 {
	t.Helper()
	rv, err := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

// waitUntil polls cond until it holds, failing the test when ctx ends first.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func staticNode(ns, name, meshName string) *v1alpha1.VirtualNode {
	n := &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: v1alpha1.VirtualNodeSpec{
		Listeners:        []v1alpha1.Listener{{PortMapping: v1alpha1.PortMapping{Port: 8080, Protocol: v1alpha1.PortProtocolHTTP}}},
		ServiceDiscovery: &v1alpha1.ServiceDiscovery{Static: []v1alpha1.StaticEndpoint{{Address: "10.0.0.1", Port: 8080}}},
		MeshRef:          &v1alpha1.MeshReference{Name: meshName}}}
	n.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("VirtualNode"))
	return n
}

// A mesh of many nodes is compiled on every processor (under -race, without races), and
// each node gets what compiling it alone gives.
func TestSyncOfManyNodesMatchesCompilingEachAlone(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx := context.Background()
	objs := []v1alpha1.Object{mesh("m", nil), staticNode("shop", "a", "m"), staticNode("shop", "b", "m"),
		vs("shop", "web", "web-router", "m"), vr("shop", "web-router", "m", "a", "b")}
	for i := range 4 * nodesPerWorker {
		n := staticNode("shop", fmt.Sprintf("client-%02d", i), "m")
		n.Spec.Backends = []v1alpha1.Backend{{VirtualService: v1alpha1.VirtualServiceBackend{
			VirtualServiceRef: &v1alpha1.VirtualServiceReference{Name: "web"}}}}
		objs = append(objs, n)
	}
	if _, err := c.Apply(ctx, objs, false); err != nil {
		t.Fatal(err)
	}
	out := &sink{}
	ms := &MeshSync{Store: st, Sink: out, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rv, err := ms.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed, _, err := st.List(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	in := &meshc.Inputs{}
	for _, o := range listed {
		in.Add(o)
	}
	nodes := meshc.Nodes(in)
	if len(nodes) < 4*nodesPerWorker {
		t.Fatalf("only %d nodes", len(nodes))
	}
	for _, node := range nodes {
		want, _, err := meshc.Compile(in, node, nil, ms.Options)
		if err != nil {
			t.Fatal(err)
		}
		want.Version = rv
		got := out.snapshot(node)
		if got == nil || ms.Snapshot(node) != got {
			t.Fatalf("%s: handed %p, kept %p", node, got, ms.Snapshot(node))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the sync compiled\n%+v\nalone it compiles to\n%+v", node, got, want)
		}
	}
}
