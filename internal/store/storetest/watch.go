package storetest

import (
	"context"
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// marker writes one more object, so a test can check that nothing came before it.
func (e *Env) marker(name string) uint64 {
	e.T.Helper()
	return RV(e.T, e.mustCreate(mesh(name)))
}

// From the revision a List returned, Watch misses nothing written in between; from 0 it
// starts with what the store holds.
func testWatchFromZeroReplaysAllHistory(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	e.mustCreate(mesh("old"))
	events, err := s.Watch(ctx, store.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := e.mustCreate(mesh("new"))
	m.SetLabels(map[string]string{"v": "2"})
	if _, err := s.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, meshKey("new"), ""); err != nil {
		t.Fatal(err)
	}
	e.expectEvents(events, seen{store.Added, "old", e.rev(1)}, seen{store.Added, "new", e.rev(2)}, seen{store.Modified, "new", e.rev(3)}, seen{store.Deleted, "new", e.rev(4)})
}

func testWatchReplaysFromRevision(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	var from uint64
	for _, n := range []string{"a", "b", "c", "d"} {
		rv := e.marker(n)
		if n == "b" {
			from = rv
		}
	}
	if _, err := s.Delete(ctx, meshKey("a"), ""); err != nil {
		t.Fatal(err)
	}
	events, err := s.Watch(ctx, store.Filter{}, from)
	if err != nil {
		t.Fatal(err)
	}
	e.marker("live")
	e.expectEvents(events,
		seen{store.Added, "c", e.rev(3)}, seen{store.Added, "d", e.rev(4)}, seen{store.Deleted, "a", e.rev(5)}, seen{store.Added, "live", e.rev(6)})

	// From the current revision nothing is replayed.
	_, cur, err := s.List(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	events, err = s.Watch(ctx, store.Filter{}, cur)
	if err != nil {
		t.Fatal(err)
	}
	rev := e.marker("after")
	e.expectEvents(events, seen{store.Added, "after", rev})
}

// A long replay and live writes racing it give every change once, in order.
func testWatchReplayRacing(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	before, during := 700, 300
	if e.H.Small {
		before, during = 70, 30
	}
	first := e.marker("before-0")
	for i := 1; i < before; i++ {
		e.mustCreate(mesh(fmt.Sprintf("before-%d", i)))
	}
	done := make(chan error, 1)
	events, err := s.Watch(ctx, store.Filter{Kind: "Mesh"}, first)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range during {
			if _, err := s.Create(ctx, mesh(fmt.Sprintf("during-%d", i))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	last := first
	seenNames := map[string]bool{}
	for i := 1; i < before+during; i++ {
		ev := e.next(events)
		if ev.ResourceVersion <= last || e.H.Contiguous && ev.ResourceVersion != last+1 {
			t.Fatalf("event rv %d after %d", ev.ResourceVersion, last)
		}
		if seenNames[ev.Object.GetName()] {
			t.Fatalf("%s seen twice", ev.Object.GetName())
		}
		seenNames[ev.Object.GetName()] = true
		last = ev.ResourceVersion
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func testWatchFilters(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	meshes, err := s.Watch(ctx, store.Filter{Kind: "Mesh"}, e.start)
	if err != nil {
		t.Fatal(err)
	}
	namespaces, err := s.Watch(ctx, store.Filter{Kind: "namespaces"}, e.start)
	if err != nil {
		t.Fatal(err)
	}
	shop := e.mustCreate(namespace("shop"))
	e.mustCreate(mesh("m"))
	e.mustCreate(namespace("bank"))
	e.expectEvents(meshes, seen{store.Added, "m", e.rev(2)})
	e.expectEvents(namespaces, seen{store.Added, "shop", e.rev(1)}, seen{store.Added, "bank", e.rev(3)})

	// Replay filters the same way.
	replayed, err := s.Watch(ctx, store.Filter{Kind: "Namespace"}, RV(t, shop))
	if err != nil {
		t.Fatal(err)
	}
	e.expectEvents(replayed, seen{store.Added, "bank", e.rev(3)})
}

func testWatchFiltersNamespace(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	e.ensureNamespaces("a", "b", "ab")
	_, start, err := s.List(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	rel := func(n uint64) uint64 { return start + n }
	inA, err := s.Watch(ctx, store.Filter{Kind: "VirtualNode", Namespace: "a"}, start)
	if err != nil {
		t.Fatal(err)
	}
	anyInB, err := s.Watch(ctx, store.Filter{Namespace: "b"}, start)
	if err != nil {
		t.Fatal(err)
	}
	first := e.mustCreate(virtualNode("b", "x")) // 1
	e.mustCreate(virtualNode("ab", "x"))         // 2
	e.mustCreate(mesh("m"))                      // 3
	e.mustCreate(virtualNode("a", "x"))          // 4
	e.mustCreate(virtualNode("b", "y"))          // 5
	e.expectEvents(inA, seen{store.Added, "x", rel(4)})
	e.expectEvents(anyInB, seen{store.Added, "x", rel(1)}, seen{store.Added, "y", rel(5)})
	replayed, err := s.Watch(ctx, store.Filter{Kind: "VirtualNode", Namespace: "ab"}, RV(t, first))
	if err != nil {
		t.Fatal(err)
	}
	e.expectEvents(replayed, seen{store.Added, "x", rel(2)})
}

func testWatchResumesAfterReopen(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	if e.H.Reopen == nil {
		t.Skip("the store cannot be reopened over the same state")
	}
	e.mustCreate(mesh("a"))
	saved := RV(t, e.mustCreate(mesh("b")))
	e.mustCreate(namespace("missed-while-away"))
	if _, err := s.Delete(ctx, meshKey("a"), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := e.H.Reopen(t, s)
	t.Cleanup(func() { _ = s2.Close() })
	e.S = s2
	events, err := s2.Watch(ctx, store.Filter{}, saved)
	if err != nil {
		t.Fatal(err)
	}
	rev := e.marker("after-restart")
	if rev <= saved || e.H.Contiguous && rev != e.rev(5) {
		t.Errorf("revision after reopen = %d, want past %d (the counter survives)", rev, saved)
	}
	e.expectEvents(events,
		seen{store.Added, "missed-while-away", e.rev(3)}, seen{store.Deleted, "a", e.rev(4)}, seen{store.Added, "after-restart", e.rev(5)})
}

func testWatchEndsWithContext(e *Env) {
	t, s := e.T, e.S
	ctx, cancel := context.WithCancel(t.Context())
	events, err := s.Watch(ctx, store.Filter{}, e.start)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	e.expectClosed(events)
	// The store goes on without the watcher.
	e.mustCreate(mesh("m"))
}

func testWatchEventsAreCopies(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	a, err := s.Watch(ctx, store.Filter{}, e.start)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Watch(ctx, store.Filter{}, e.start)
	if err != nil {
		t.Fatal(err)
	}
	e.mustCreate(mesh("m"))
	ea, eb := e.next(a), e.next(b)
	ea.Object.SetName("changed by one consumer")
	if eb.Object.GetName() != "m" {
		t.Error("watchers share one object")
	}
	if _, ok := eb.Object.(*v1alpha1.Mesh); !ok {
		t.Errorf("event object is %T, want *v1alpha1.Mesh", eb.Object)
	}
}
