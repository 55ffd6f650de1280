package controlplane

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
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
