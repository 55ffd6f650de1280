package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

func next(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want an event")
		}
		return ev
	case <-time.After(wait):
		t.Fatal("no event")
	}
	return store.Event{}
}

func expectClosed(t *testing.T, ch <-chan store.Event) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			t.Logf("event before close: %s %s rv %d", ev.Type, ev.Object.GetName(), ev.ResourceVersion)
		case <-timeout:
			t.Fatal("watch channel still open")
		}
	}
}

type seen struct {
	typ  store.EventType
	name string
	rev  uint64
}

func (s seen) String() string { return fmt.Sprintf("%s %s@%d", s.typ, s.name, s.rev) }

func expectEvents(t *testing.T, ch <-chan store.Event, want ...seen) {
	t.Helper()
	for i, w := range want {
		ev := next(t, ch)
		got := seen{ev.Type, ev.Object.GetName(), ev.ResourceVersion}
		if got != w {
			t.Fatalf("event %d = %s, want %s", i, got, w)
		}
		if rv(t, ev.Object) != ev.ResourceVersion {
			t.Errorf("event %d: object resourceVersion %s, event %d", i, ev.Object.GetResourceVersion(), ev.ResourceVersion)
		}
	}
}

// marker writes one more object, so a test can check that nothing came before it.
func marker(t *testing.T, s store.Store, name string) uint64 {
	t.Helper()
	return rv(t, mustCreate(t, s, mesh(name)))
}

// From 0 replays all history: a List that found an empty store and a Watch from its
// resourceVersion 0 must not lose what was created in between.
func TestWatchFromZeroReplaysAllHistory(t *testing.T) {
	s := newStore(t)
	_, rv, err := s.List(t.Context(), store.Filter{})
	if err != nil || rv != 0 {
		t.Fatalf("empty store lists at %d, %v", rv, err)
	}
	mustCreate(t, s, mesh("old"))
	events, err := s.Watch(t.Context(), store.Filter{}, rv)
	if err != nil {
		t.Fatal(err)
	}
	m := mustCreate(t, s, mesh("new"))
	m.SetLabels(map[string]string{"v": "2"})
	if _, err := s.Update(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(t.Context(), meshKey("new"), ""); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, events, seen{store.Added, "old", 1}, seen{store.Added, "new", 2}, seen{store.Modified, "new", 3}, seen{store.Deleted, "new", 4})
}

func TestWatchReplaysFromRevision(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	for _, n := range []string{"a", "b", "c", "d"} {
		mustCreate(t, s, mesh(n))
	}
	if _, err := s.Delete(ctx, meshKey("a"), ""); err != nil {
		t.Fatal(err)
	}
	events, err := s.Watch(ctx, store.Filter{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	marker(t, s, "live")
	expectEvents(t, events,
		seen{store.Added, "c", 3}, seen{store.Added, "d", 4}, seen{store.Deleted, "a", 5}, seen{store.Added, "live", 6})

	// From the current revision nothing is replayed.
	_, cur, err := s.List(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	events, err = s.Watch(ctx, store.Filter{}, cur)
	if err != nil {
		t.Fatal(err)
	}
	rev := marker(t, s, "after")
	expectEvents(t, events, seen{store.Added, "after", rev})
}

// A replay longer than one read batch and live writes racing it give every change once.
func TestWatchReplayRacingWritersHasNoGapsOrDuplicates(t *testing.T) {
	s := open(t, t.TempDir(), bolt.Options{WatchBuffer: 10000})
	ctx := t.Context()
	const before, during = 700, 300
	for i := range before {
		mustCreate(t, s, mesh(fmt.Sprintf("before-%d", i)))
	}
	done := make(chan error, 1)
	events, err := s.Watch(ctx, store.Filter{Kind: "Mesh"}, 1)
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
	for want := uint64(2); want <= before+during; want++ {
		if ev := next(t, events); ev.ResourceVersion != want {
			t.Fatalf("event rv %d, want %d", ev.ResourceVersion, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestWatchFilters(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	meshes, err := s.Watch(ctx, store.Filter{Kind: "Mesh"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	namespaces, err := s.Watch(ctx, store.Filter{Kind: "namespaces"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, namespace("shop"))
	mustCreate(t, s, mesh("m"))
	mustCreate(t, s, namespace("bank"))
	expectEvents(t, meshes, seen{store.Added, "m", 2})
	expectEvents(t, namespaces, seen{store.Added, "shop", 1}, seen{store.Added, "bank", 3})

	// Replay filters the same way.
	replayed, err := s.Watch(ctx, store.Filter{Kind: "Namespace"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, replayed, seen{store.Added, "bank", 3})
}

func TestWatchFiltersNamespace(t *testing.T) {
	k := namespacedKind(t)
	s := newStore(t)
	ctx := t.Context()
	inA, err := s.Watch(ctx, store.Filter{Kind: k.Kind, Namespace: "a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	anyInB, err := s.Watch(ctx, store.Filter{Namespace: "b"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	create := func(ns, name string) {
		o := k.NewObject()
		o.SetNamespace(ns)
		o.SetName(name)
		mustCreate(t, s, o)
	}
	create("b", "x")            // 1
	create("ab", "x")           // 2
	mustCreate(t, s, mesh("m")) // 3
	create("a", "x")            // 4
	create("b", "y")            // 5
	expectEvents(t, inA, seen{store.Added, "x", 4})
	expectEvents(t, anyInB, seen{store.Added, "x", 1}, seen{store.Added, "y", 5})
	replayed, err := s.Watch(ctx, store.Filter{Kind: k.Kind, Namespace: "ab"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, replayed, seen{store.Added, "x", 2})
}

func TestWatchResumesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s, err := bolt.Open(ctx, dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, mesh("a"))
	saved := rv(t, mustCreate(t, s, mesh("b")))
	mustCreate(t, s, namespace("missed-while-away"))
	if _, err := s.Delete(ctx, meshKey("a"), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, dir, bolt.Options{})
	events, err := s2.Watch(ctx, store.Filter{}, saved)
	if err != nil {
		t.Fatal(err)
	}
	rev := marker(t, s2, "after-restart")
	if rev != 5 {
		t.Errorf("revision after reopen = %d, want 5 (the counter survives)", rev)
	}
	expectEvents(t, events,
		seen{store.Added, "missed-while-away", 3}, seen{store.Deleted, "a", 4}, seen{store.Added, "after-restart", 5})
}

func TestWatchTooOldIsGone(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s, err := bolt.Open(ctx, dir, bolt.Options{HistorySize: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustCreate(t, s, mesh(fmt.Sprintf("m%02d", i)))
	}
	// Revisions 16..20 are kept: resuming from 15 still works, from 14 does not.
	for _, from := range []uint64{1, 14} {
		if _, err := s.Watch(ctx, store.Filter{}, from); !errors.Is(err, store.ErrGone) {
			t.Errorf("Watch from %d: %v, want ErrGone", from, err)
		}
	}
	if _, err := s.Watch(ctx, store.Filter{}, 21); !errors.Is(err, store.ErrGone) {
		t.Errorf("Watch from a revision the store never reached: %v, want ErrGone", err)
	}
	events, err := s.Watch(ctx, store.Filter{}, 15)
	if err != nil {
		t.Fatalf("Watch from 15: %v", err)
	}
	expectEvents(t, events, seen{store.Added, "m15", 16}, seen{store.Added, "m16", 17})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A smaller history on reopen compacts at once.
	s2 := open(t, dir, bolt.Options{HistorySize: 2})
	if _, err := s2.Watch(ctx, store.Filter{}, 15); !errors.Is(err, store.ErrGone) {
		t.Errorf("Watch from 15 after shrinking history: %v, want ErrGone", err)
	}
	events, err = s2.Watch(ctx, store.Filter{}, 18)
	if err != nil {
		t.Fatal(err)
	}
	expectEvents(t, events, seen{store.Added, "m18", 19}, seen{store.Added, "m19", 20})
}

func TestLaggingWatcherIsClosedAndWritersGoOn(t *testing.T) {
	s := open(t, t.TempDir(), bolt.Options{WatchBuffer: 4})
	ctx := t.Context()
	lagging, err := s.Watch(ctx, store.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	keeping, err := s.Watch(ctx, store.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	const writes = 50
	wrote := make(chan error, 1)
	go func() {
		for i := range writes {
			if _, err := s.Create(ctx, mesh(fmt.Sprintf("m%02d", i))); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	// A consumer that keeps up sees everything while the other one never reads.
	for want := uint64(1); want <= writes; want++ {
		if ev := next(t, keeping); ev.ResourceVersion != want {
			t.Fatalf("keeping watcher: rv %d, want %d", ev.ResourceVersion, want)
		}
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("writers blocked by a watcher that does not read")
	}

	// The lagging watcher delivers what it buffered, in order, and then closes.
	var got []uint64
	timeout := time.After(wait)
	for closed := false; !closed; {
		select {
		case ev, ok := <-lagging:
			if !ok {
				closed = true
				break
			}
			got = append(got, ev.ResourceVersion)
		case <-timeout:
			t.Fatalf("lagging watcher not closed; got %v", got)
		}
	}
	if len(got) >= writes {
		t.Errorf("lagging watcher got all %d events", len(got))
	}
	for i, r := range got {
		if r != uint64(i+1) {
			t.Fatalf("lagging watcher got %v, want a gapless prefix of 1..%d", got, writes)
		}
	}
}

func TestWatchEndsWithContext(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	events, err := s.Watch(ctx, store.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	expectClosed(t, events)
	// The store goes on without the watcher.
	mustCreate(t, s, mesh("m"))
}

func TestWatchEventsAreCopies(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	a, err := s.Watch(ctx, store.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Watch(ctx, store.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, mesh("m"))
	ea, eb := next(t, a), next(t, b)
	ea.Object.SetName("changed by one consumer")
	if eb.Object.GetName() != "m" {
		t.Error("watchers share one object")
	}
	if _, ok := eb.Object.(*v1alpha1.Mesh); !ok {
		t.Errorf("event object is %T, want *v1alpha1.Mesh", eb.Object)
	}
}
