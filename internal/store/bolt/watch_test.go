package bolt_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

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

// marker writes one more object, so a test can check that nothing came before it.
func marker(t *testing.T, s store.Store, name string) uint64 {
	t.Helper()
	return rv(t, mustCreate(t, s, mesh(name)))
}
