package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Wait bounds every blocking step so a broken store fails a test instead of hanging it.
const Wait = 20 * time.Second

// Harness says how to open a store and what it guarantees beyond the Store interface.
type Harness struct {
	// Open returns a store over fresh state; the harness closes it when the test ends
	// (Close twice must be harmless).
	Open func(t *testing.T) store.Store
	// Reopen returns a new store over the same state as s, which the suite has closed;
	// nil skips the test that needs it.
	Reopen func(t *testing.T, s store.Store) store.Store
	// Contiguous stores give every write the next revision, from 1 in a fresh store,
	// list an empty store at revision 0, commit a Txn atomically with one event per
	// write, and give every object, Namespace too, a generation.
	Contiguous bool
	// NamespaceRemovedAtOnce says a deleted Namespace is gone at once (no namespace
	// lifecycle holds it).
	NamespaceRemovedAtOnce bool
	// EnsureNamespaces makes namespaces exist before namespaced objects are created in
	// them, for stores that refuse objects in a missing namespace; nil does nothing.
	EnsureNamespaces func(t *testing.T, s store.Store, names ...string)
	// Small makes the tests that write hundreds of objects write tens.
	Small bool
}

// Run runs every test of the suite as a subtest of t.
func Run(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name string
		fn   func(*Env)
	}{
		{"CRUDRoundTrip", testCRUDRoundTrip},
		{"BadInput", testBadInput},
		{"ListOrderingAndFiltering", testListOrderingAndFiltering},
		{"ListNamespaced", testListNamespaced},
		{"StaleWritesConflict", testStaleWritesConflict},
		{"ConcurrentWritersConverge", testConcurrentWritersConverge},
		{"TxnIsAllOrNothing", testTxnIsAllOrNothing},
		{"GenerationFollowsSpec", testGenerationFollowsSpec},
		{"StatusRoundTrip", testStatusRoundTrip},
		{"Finalizers", testFinalizers},
		{"ClosedStore", testClosedStore},
		{"WatchFromZeroReplaysAllHistory", testWatchFromZeroReplaysAllHistory},
		{"WatchReplaysFromRevision", testWatchReplaysFromRevision},
		{"WatchReplayRacingWritersHasNoGapsOrDuplicates", testWatchReplayRacing},
		{"WatchFilters", testWatchFilters},
		{"WatchFiltersNamespace", testWatchFiltersNamespace},
		{"WatchResumesAfterReopen", testWatchResumesAfterReopen},
		{"WatchEndsWithContext", testWatchEndsWithContext},
		{"WatchEventsAreCopies", testWatchEventsAreCopies},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(open(t, h))
		})
	}
}

// Env is one test's store with what the suite noted when it was opened.
type Env struct {
	T *testing.T
	S store.Store
	H Harness
	// base are the objects the store held when opened (the API server's own
	// namespaces), left out of comparisons.
	base map[store.Key]bool
	// start is the store's revision when opened.
	start uint64
}

func open(t *testing.T, h Harness) *Env {
	t.Helper()
	s := h.Open(t)
	t.Cleanup(func() { _ = s.Close() })
	e := &Env{T: t, S: s, H: h, base: map[store.Key]bool{}}
	objs, rv, err := s.List(t.Context(), store.Filter{})
	if err != nil {
		t.Fatalf("List of a fresh store: %v", err)
	}
	for _, o := range objs {
		e.base[keyOf(t, o)] = true
	}
	e.start = rv
	if h.Contiguous && (rv != 0 || len(objs) != 0) {
		t.Fatalf("a fresh contiguous store lists %d objects at revision %d, want none at 0", len(objs), rv)
	}
	return e
}

// ensureNamespaces creates namespaces where the store needs them, leaving them out of
// comparisons like the store's own.
func (e *Env) ensureNamespaces(names ...string) {
	if e.H.EnsureNamespaces == nil {
		return
	}
	e.H.EnsureNamespaces(e.T, e.S, names...)
	for _, n := range names {
		e.base[store.Key{Kind: "Namespace", Name: n}] = true
	}
}

func keyOf(t *testing.T, o v1alpha1.Object) store.Key {
	t.Helper()
	k, err := store.KeyOf(o)
	if err != nil {
		t.Fatalf("key of %T %s: %v", o, o.GetName(), err)
	}
	return k
}

// rev returns the revision a contiguous store gives the n-th write of the test.
func (e *Env) rev(n uint64) uint64 { return e.start + n }

func mesh(name string) *v1alpha1.Mesh {
	return &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func virtualNode(ns, name string) *v1alpha1.VirtualNode {
	return &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func meshKey(name string) store.Key { return store.Key{Kind: "Mesh", Name: name} }

func (e *Env) mustCreate(obj v1alpha1.Object) v1alpha1.Object {
	e.T.Helper()
	out, err := e.S.Create(e.T.Context(), obj)
	if err != nil {
		e.T.Fatalf("Create %s: %v", obj.GetName(), err)
	}
	return out
}

// RV parses an object's resourceVersion.
func RV(t *testing.T, obj v1alpha1.Object) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q of %s: %v", obj.GetResourceVersion(), obj.GetName(), err)
	}
	return n
}

// names lists objects as Kind:NS/NAME, leaving out those the store held when opened.
func (e *Env) names(objs []v1alpha1.Object) string {
	var out []string
	for _, o := range objs {
		if e.base[keyOf(e.T, o)] {
			continue
		}
		gvk := o.GetObjectKind().GroupVersionKind()
		n := gvk.Kind + ":" + o.GetName()
		if o.GetNamespace() != "" {
			n = gvk.Kind + ":" + o.GetNamespace() + "/" + o.GetName()
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

// Seen is an event as tests compare it.
type seen struct {
	typ  store.EventType
	name string
	rev  uint64 // checked only on contiguous stores
}

func (s seen) String() string { return fmt.Sprintf("%s %s@%d", s.typ, s.name, s.rev) }

// next returns the next event not about an object the store held when opened.
func (e *Env) next(ch <-chan store.Event) store.Event {
	e.T.Helper()
	timeout := time.After(Wait)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				e.T.Fatal("watch channel closed, want an event")
			}
			if e.base[keyOf(e.T, ev.Object)] {
				continue
			}
			return ev
		case <-timeout:
			e.T.Fatal("no event")
		}
	}
}

func (e *Env) expectClosed(ch <-chan store.Event) {
	e.T.Helper()
	timeout := time.After(Wait)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			e.T.Logf("event before close: %s %s rv %d", ev.Type, ev.Object.GetName(), ev.ResourceVersion)
		case <-timeout:
			e.T.Fatal("watch channel still open")
		}
	}
}

// expectEvents reads len(want) events. A contiguous store must deliver them in order
// with exactly the revisions wanted; another store may interleave the streams of
// different kinds, so its events are put in revision order (the order of the writes)
// and compared by type and name.
func (e *Env) expectEvents(ch <-chan store.Event, want ...seen) {
	e.T.Helper()
	got := make([]store.Event, 0, len(want))
	for range want {
		ev := e.next(ch)
		if RV(e.T, ev.Object) != ev.ResourceVersion {
			e.T.Errorf("event %s %s: object resourceVersion %s, event %d", ev.Type, ev.Object.GetName(), ev.Object.GetResourceVersion(), ev.ResourceVersion)
		}
		got = append(got, ev)
	}
	if !e.H.Contiguous {
		sort.SliceStable(got, func(i, j int) bool { return got[i].ResourceVersion < got[j].ResourceVersion })
	}
	for i, w := range want {
		ev := got[i]
		g := seen{ev.Type, ev.Object.GetName(), ev.ResourceVersion}
		if !e.H.Contiguous {
			g.rev, w.rev = 0, 0
		}
		if g != w {
			e.T.Fatalf("event %d = %s, want %s", i, g, w)
		}
	}
}

func testCRUDRoundTrip(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	e.ensureNamespaces("shop")
	cases := []struct {
		obj     v1alpha1.Object
		key     store.Key
		apiVer  string
		kind    string
		mutate  func(v1alpha1.Object)
		checkUp func(*testing.T, v1alpha1.Object)
	}{
		{
			obj:    &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "global"}, Spec: v1alpha1.MeshSpec{EgressFilter: &v1alpha1.EgressFilter{Type: "DROP_ALL"}}},
			key:    store.Key{Kind: "meshes", Name: "global"}, // any registered name of the kind works
			apiVer: "canarymesh.dev/v1alpha1", kind: "Mesh",
			mutate: func(o v1alpha1.Object) { o.(*v1alpha1.Mesh).Spec.EgressFilter.Type = "ALLOW_ALL" },
			checkUp: func(t *testing.T, o v1alpha1.Object) {
				if got := o.(*v1alpha1.Mesh).Spec.EgressFilter.Type; got != "ALLOW_ALL" {
					t.Errorf("egressFilter.type after update = %q", got)
				}
			},
		},
		{
			obj:    virtualNode("shop", "cart"),
			key:    store.Key{Kind: "vn", Namespace: "shop", Name: "cart"},
			apiVer: "canarymesh.dev/v1alpha1", kind: "VirtualNode",
			mutate: func(o v1alpha1.Object) { o.SetAnnotations(map[string]string{"note": "b"}) },
			checkUp: func(t *testing.T, o v1alpha1.Object) {
				if got := o.GetAnnotations()["note"]; got != "b" {
					t.Errorf("annotation after update = %q", got)
				}
			},
		},
	}
	if e.H.NamespaceRemovedAtOnce {
		cases = append(cases, struct {
			obj     v1alpha1.Object
			key     store.Key
			apiVer  string
			kind    string
			mutate  func(v1alpha1.Object)
			checkUp func(*testing.T, v1alpha1.Object)
		}{
			obj:    &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bank", Labels: map[string]string{"team": "a"}}},
			key:    store.Key{Kind: "Namespace", Namespace: "ignored-for-cluster-scoped", Name: "bank"},
			apiVer: "v1", kind: "Namespace",
			mutate: func(o v1alpha1.Object) { o.SetLabels(map[string]string{"team": "b"}) },
			checkUp: func(t *testing.T, o v1alpha1.Object) {
				if got := o.GetLabels()["team"]; got != "b" {
					t.Errorf("label after update = %q", got)
				}
			},
		})
	}
	var writes uint64
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			base := writes
			writes += 3
			created, err := s.Create(ctx, tc.obj)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if tc.obj.GetResourceVersion() != "" || tc.obj.GetUID() != "" {
				t.Errorf("Create changed the caller's object: %+v", tc.obj)
			}
			gvk := created.GetObjectKind().GroupVersionKind()
			if gvk.GroupVersion().String() != tc.apiVer || gvk.Kind != tc.kind {
				t.Errorf("apiVersion/kind = %s/%s, want %s/%s", gvk.GroupVersion(), gvk.Kind, tc.apiVer, tc.kind)
			}
			if ts := created.GetCreationTimestamp(); created.GetUID() == "" || ts.IsZero() {
				t.Errorf("created without uid (%q) or creationTimestamp (%v)", created.GetUID(), created.GetCreationTimestamp())
			}
			if created.GetGeneration() != 1 {
				t.Errorf("generation %d, want 1", created.GetGeneration())
			}
			if e.H.Contiguous && RV(t, created) != e.rev(base+1) {
				t.Errorf("resourceVersion %s, want %d", created.GetResourceVersion(), e.rev(base+1))
			}

			got, err := s.Get(ctx, tc.key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.GetUID() != created.GetUID() || got.GetResourceVersion() != created.GetResourceVersion() {
				t.Errorf("Get = uid %s rv %s, want %s %s", got.GetUID(), got.GetResourceVersion(), created.GetUID(), created.GetResourceVersion())
			}
			if _, err := s.Create(ctx, tc.obj); !errors.Is(err, store.ErrExists) {
				t.Errorf("second Create: %v, want ErrExists", err)
			}

			tc.mutate(got)
			got.SetUID("forged")
			updated, err := s.Update(ctx, got)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			tc.checkUp(t, updated)
			if updated.GetUID() != created.GetUID() || !updated.GetCreationTimestamp().Time.Equal(created.GetCreationTimestamp().Time) {
				t.Errorf("Update changed uid or creationTimestamp: %s %v", updated.GetUID(), updated.GetCreationTimestamp())
			}
			if RV(t, updated) <= RV(t, created) || e.H.Contiguous && RV(t, updated) != e.rev(base+2) {
				t.Errorf("resourceVersion after update = %s, created at %s", updated.GetResourceVersion(), created.GetResourceVersion())
			}
			again, err := s.Get(ctx, tc.key)
			if err != nil {
				t.Fatalf("Get after update: %v", err)
			}
			tc.checkUp(t, again)

			deleted, err := s.Delete(ctx, tc.key, "")
			if err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if RV(t, deleted) < RV(t, updated) || e.H.Contiguous && RV(t, deleted) != e.rev(base+3) || deleted.GetUID() != created.GetUID() {
				t.Errorf("Delete returned rv %s uid %s, want after %s and %s", deleted.GetResourceVersion(), deleted.GetUID(), updated.GetResourceVersion(), created.GetUID())
			}
			if _, err := s.Get(ctx, tc.key); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get after delete: %v, want ErrNotFound", err)
			}
			if _, err := s.Update(ctx, got); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Update after delete: %v, want ErrNotFound", err)
			}
			if _, err := s.Delete(ctx, tc.key, ""); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Delete after delete: %v, want ErrNotFound", err)
			}
		})
	}
}

func testBadInput(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	if _, err := s.Get(ctx, store.Key{Kind: "Spaceship", Name: "x"}); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Errorf("Get of an unknown kind: %v", err)
	}
	if _, _, err := s.List(ctx, store.Filter{Kind: "Spaceship"}); err == nil {
		t.Error("List of an unknown kind: no error")
	}
	if _, err := s.Watch(ctx, store.Filter{Kind: "Spaceship"}, 0); err == nil {
		t.Error("Watch of an unknown kind: no error")
	}
	if _, err := s.Create(ctx, mesh("")); err == nil || !strings.Contains(err.Error(), "metadata.name is required") {
		t.Errorf("Create without a name: %v", err)
	}
	if _, err := s.Create(ctx, (*v1alpha1.Mesh)(nil)); err == nil {
		t.Error("Create(nil): no error")
	}
	if _, err := s.Update(ctx, nil); err == nil {
		t.Error("Update(nil): no error")
	}
	if _, err := s.Create(ctx, virtualNode("", "no-namespace")); err == nil || !strings.Contains(err.Error(), "metadata.namespace is required") {
		t.Errorf("Create of a namespaced kind without namespace: %v", err)
	}
}

func testListOrderingAndFiltering(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	var last v1alpha1.Object
	for _, o := range []v1alpha1.Object{namespace("zeta"), mesh("west"), namespace("alpha"), mesh("east"), mesh("central")} {
		last = e.mustCreate(o)
	}
	for _, tc := range []struct {
		f    store.Filter
		want string
	}{
		{store.Filter{}, "Mesh:central Mesh:east Mesh:west Namespace:alpha Namespace:zeta"},
		{store.Filter{Kind: "Mesh"}, "Mesh:central Mesh:east Mesh:west"},
		{store.Filter{Kind: "ns"}, "Namespace:alpha Namespace:zeta"},
		// Namespace means nothing to a cluster-scoped kind, as with kubectl -n.
		{store.Filter{Kind: "Mesh", Namespace: "shop"}, "Mesh:central Mesh:east Mesh:west"},
		// Without a kind, a namespace selects namespaced objects only.
		{store.Filter{Namespace: "shop"}, ""},
	} {
		objs, rev, err := s.List(ctx, tc.f)
		if err != nil {
			t.Fatalf("List %+v: %v", tc.f, err)
		}
		if got := e.names(objs); got != tc.want {
			t.Errorf("List %+v = %q, want %q", tc.f, got, tc.want)
		}
		if rev < RV(t, last) || e.H.Contiguous && rev != 5 {
			t.Errorf("List %+v revision = %d, the last write was %s", tc.f, rev, last.GetResourceVersion())
		}
	}
}

func testListNamespaced(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	e.ensureNamespaces("a", "b", "ab")
	for _, nn := range []string{"b/two", "a/two", "b/one", "ab/one", "a/one"} {
		ns, name, _ := strings.Cut(nn, "/")
		e.mustCreate(virtualNode(ns, name))
	}
	e.mustCreate(mesh("m"))
	for _, tc := range []struct {
		f    store.Filter
		want string
	}{
		{store.Filter{Kind: "VirtualNode"}, "VirtualNode:a/one VirtualNode:a/two VirtualNode:ab/one VirtualNode:b/one VirtualNode:b/two"},
		{store.Filter{Kind: "VirtualNode", Namespace: "a"}, "VirtualNode:a/one VirtualNode:a/two"},
		{store.Filter{Namespace: "b"}, "VirtualNode:b/one VirtualNode:b/two"},
		{store.Filter{Kind: "VirtualNode", Namespace: "none"}, ""},
	} {
		objs, _, err := s.List(ctx, tc.f)
		if err != nil {
			t.Fatalf("List %+v: %v", tc.f, err)
		}
		if got := e.names(objs); got != tc.want {
			t.Errorf("List %+v = %q, want %q", tc.f, got, tc.want)
		}
	}
	if _, err := s.Get(ctx, store.Key{Kind: "VirtualNode", Namespace: "ab", Name: "one"}); err != nil {
		t.Errorf("Get ab/one: %v", err)
	}
}

func testStaleWritesConflict(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	v1 := e.mustCreate(mesh("m"))
	v2 := v1.DeepCopyObject().(*v1alpha1.Mesh)
	v2.Labels = map[string]string{"by": "first"}
	if _, err := s.Update(ctx, v2); err != nil {
		t.Fatalf("first update: %v", err)
	}

	stale := v1.DeepCopyObject().(*v1alpha1.Mesh)
	stale.Labels = map[string]string{"by": "second"}
	_, err := s.Update(ctx, stale)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "Mesh/m") {
		t.Errorf("stale update: %v, want ErrConflict naming Mesh/m", err)
	}
	if _, err := s.Delete(ctx, meshKey("m"), v1.GetResourceVersion()); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale delete: %v, want ErrConflict", err)
	}
	got, err := s.Get(ctx, meshKey("m"))
	if err != nil {
		t.Fatal(err)
	}
	if got.GetLabels()["by"] != "first" {
		t.Errorf("label = %q after rejected writes, want first", got.GetLabels()["by"])
	}

	// Without a resourceVersion the write is unconditional.
	stale.ResourceVersion = ""
	if _, err := s.Update(ctx, stale); err != nil {
		t.Errorf("unconditional update: %v", err)
	}
	cur, _ := s.Get(ctx, meshKey("m"))
	if cur.GetLabels()["by"] != "second" {
		t.Errorf("label = %q after the unconditional update, want second", cur.GetLabels()["by"])
	}
	if _, err := s.Delete(ctx, meshKey("m"), cur.GetResourceVersion()); err != nil {
		t.Errorf("delete at the current resourceVersion: %v", err)
	}
}

func testConcurrentWritersConverge(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	e.mustCreate(mesh("counter"))
	writers, increments := 8, 25
	if e.H.Small {
		writers, increments = 4, 10
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range increments {
				if err := increment(ctx, s); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, meshKey("counter"))
	if err != nil {
		t.Fatal(err)
	}
	if n := got.GetAnnotations()["count"]; n != strconv.Itoa(writers*increments) {
		t.Errorf("count = %s, want %d", n, writers*increments)
	}
}

// increment reads the counter, adds one and writes it back, retrying on conflict.
func increment(ctx context.Context, s store.Store) error {
	for {
		obj, err := s.Get(ctx, meshKey("counter"))
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(obj.GetAnnotations()["count"])
		obj.SetAnnotations(map[string]string{"count": strconv.Itoa(n + 1)})
		_, err = s.Update(ctx, obj)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err
	}
}

func testTxnIsAllOrNothing(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	events, err := s.Watch(ctx, store.Filter{}, e.start)
	if err != nil {
		t.Fatal(err)
	}

	errBoom := errors.New("boom")
	err = s.Txn(ctx, func(tx store.Tx) error {
		if _, err := tx.Create(mesh("a")); err != nil {
			return err
		}
		if _, err := tx.Create(namespace("shop")); err != nil {
			return err
		}
		if _, err := tx.Get(meshKey("a")); err != nil {
			return fmt.Errorf("a write is not visible later in its own transaction: %w", err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Txn = %v, want the function's error", err)
	}
	objs, rev, err := s.List(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.names(objs); got != "" || e.H.Contiguous && rev != 0 {
		t.Errorf("after a failed Txn: %q at revision %d, want nothing", got, rev)
	}

	var leaked store.Tx
	var handed v1alpha1.Object
	err = s.Txn(ctx, func(tx store.Tx) error {
		leaked = tx
		a, err := tx.Create(mesh("a"))
		if err != nil {
			return err
		}
		a.SetLabels(map[string]string{"step": "2"})
		if handed, err = tx.Update(a); err != nil {
			return err
		}
		if _, err := tx.Create(namespace("shop")); err != nil {
			return err
		}
		listed, err := tx.List(store.Filter{})
		if err != nil {
			return err
		}
		if got := e.names(listed); got != "Mesh:a Namespace:shop" {
			return fmt.Errorf("tx.List = %q", got)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Txn: %v", err)
	}
	if _, err := leaked.Create(mesh("late")); err == nil {
		t.Error("a Tx used after its Txn returned still writes")
	}
	stored, err := s.Get(ctx, meshKey("a"))
	if err != nil {
		t.Fatal(err)
	}
	if stored.GetLabels()["step"] != "2" {
		t.Errorf("committed Mesh a has labels %v", stored.GetLabels())
	}
	if handed.GetResourceVersion() != stored.GetResourceVersion() {
		t.Errorf("object from tx.Update has resourceVersion %q after commit, stored %q", handed.GetResourceVersion(), stored.GetResourceVersion())
	}
	// The first events seen are from the committed transaction: the failed one sent none.
	if e.H.Contiguous {
		e.expectEvents(events, seen{store.Added, "a", 1}, seen{store.Modified, "a", 2}, seen{store.Added, "shop", 3})
		return
	}
	got := map[string]bool{}
	for len(got) < 2 {
		ev := e.next(events)
		if n := ev.Object.GetName(); n != "a" && n != "shop" || ev.Type == store.Deleted {
			t.Fatalf("event %s %s: the failed transaction wrote", ev.Type, n)
		}
		got[ev.Object.GetName()] = true
	}
}

func testGenerationFollowsSpec(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	m := e.mustCreate(&v1alpha1.Mesh{
		ObjectMeta: metav1.ObjectMeta{Name: "m"},
		Spec: v1alpha1.MeshSpec{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{"a": "1", "b": "2", "c": "3"},
		}},
	}).(*v1alpha1.Mesh)

	steps := []struct {
		what   string
		change func(*v1alpha1.Mesh)
		want   int64
	}{
		{"labels", func(m *v1alpha1.Mesh) { m.Labels = map[string]string{"x": "y"} }, 1},
		{"status", func(m *v1alpha1.Mesh) { m.Status.ObservedGeneration = 1 }, 1},
		{"a caller's generation", func(m *v1alpha1.Mesh) { m.Generation = 40 }, 1},
		{"same selector rebuilt", func(m *v1alpha1.Mesh) {
			m.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"c": "3", "a": "1", "b": "2"}}
		}, 1},
		{"spec", func(m *v1alpha1.Mesh) { m.Spec.EgressFilter = &v1alpha1.EgressFilter{Type: "ALLOW_ALL"} }, 2},
		{"spec again", func(m *v1alpha1.Mesh) { m.Spec.EgressFilter.Type = "DROP_ALL" }, 3},
	}
	for _, st := range steps {
		st.change(m)
		out, err := s.Update(ctx, m)
		if err != nil {
			t.Fatalf("update %s: %v", st.what, err)
		}
		m = out.(*v1alpha1.Mesh)
		if m.Generation != st.want {
			t.Errorf("after changing %s: generation %d, want %d", st.what, m.Generation, st.want)
		}
	}
	if m.Status.ObservedGeneration != 1 {
		t.Errorf("status.observedGeneration = %d after the updates, want 1", m.Status.ObservedGeneration)
	}
	if !e.H.Contiguous {
		return // the API server keeps no generation for Namespaces
	}
	n := e.mustCreate(namespace("shop"))
	n.SetLabels(map[string]string{"team": "payments"})
	out, err := s.Update(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if out.GetGeneration() != 1 {
		t.Errorf("Namespace generation after a label change = %d, want 1", out.GetGeneration())
	}
}

// A status set on create or update is stored and read back, alone or with a spec change.
func testStatusRoundTrip(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	cond := metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Tested", Message: "set by the test",
		LastTransitionTime: metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), ObservedGeneration: 1}
	m := mesh("with-status")
	m.Status.Conditions = []metav1.Condition{cond}
	created := e.mustCreate(m).(*v1alpha1.Mesh)
	if len(created.Status.Conditions) != 1 || created.Status.Conditions[0].Reason != "Tested" {
		t.Fatalf("created with status %+v", created.Status)
	}
	created.Spec.EgressFilter = &v1alpha1.EgressFilter{Type: "ALLOW_ALL"}
	created.Status.Conditions[0].Reason = "Changed"
	created.Status.ObservedGeneration = 2
	updated, err := s.Update(ctx, created)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, meshKey("with-status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []*v1alpha1.Mesh{updated.(*v1alpha1.Mesh), got.(*v1alpha1.Mesh)} {
		if o.Generation != 2 || o.Spec.EgressFilter == nil || o.Status.ObservedGeneration != 2 ||
			len(o.Status.Conditions) != 1 || o.Status.Conditions[0].Reason != "Changed" {
			t.Errorf("after a spec and status update: generation %d spec %+v status %+v", o.Generation, o.Spec, o.Status)
		}
	}
	if got.GetResourceVersion() != updated.GetResourceVersion() {
		t.Errorf("Update returned resourceVersion %s, stored %s", updated.GetResourceVersion(), got.GetResourceVersion())
	}
}

// Deletion with finalizers, through the helpers of finalizers.go.
func testFinalizers(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	m := mesh("held")
	m.Finalizers = []string{"canarymesh.dev/test"}
	e.mustCreate(m)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var marked bool
	err := s.Txn(ctx, func(tx store.Tx) error {
		var err error
		_, marked, err = store.DeleteOrMark(tx, meshKey("held"), "", now)
		return err
	})
	if err != nil || !marked {
		t.Fatalf("DeleteOrMark: marked %v, %v", marked, err)
	}
	cur, err := s.Get(ctx, meshKey("held"))
	if err != nil {
		t.Fatalf("Get of a marked object: %v", err)
	}
	if cur.GetDeletionTimestamp() == nil || !slices.Equal(cur.GetFinalizers(), []string{"canarymesh.dev/test"}) {
		t.Fatalf("marked object: deletionTimestamp %v finalizers %v", cur.GetDeletionTimestamp(), cur.GetFinalizers())
	}
	// An update keeps the mark, whatever it says.
	cur.SetLabels(map[string]string{"cleaning": "up"})
	cur.SetDeletionTimestamp(nil)
	var removed bool
	err = s.Txn(ctx, func(tx store.Tx) error {
		var err error
		_, removed, err = store.UpdateOrFinalize(tx, cur)
		return err
	})
	if err != nil || removed {
		t.Fatalf("UpdateOrFinalize keeping the finalizer: removed %v, %v", removed, err)
	}
	cur, err = s.Get(ctx, meshKey("held"))
	if err != nil {
		t.Fatal(err)
	}
	if cur.GetDeletionTimestamp() == nil || cur.GetLabels()["cleaning"] != "up" {
		t.Fatalf("after an update: deletionTimestamp %v labels %v", cur.GetDeletionTimestamp(), cur.GetLabels())
	}
	cur.SetFinalizers(nil)
	err = s.Txn(ctx, func(tx store.Tx) error {
		var err error
		_, removed, err = store.UpdateOrFinalize(tx, cur)
		return err
	})
	if err != nil || !removed {
		t.Fatalf("UpdateOrFinalize without finalizers: removed %v, %v", removed, err)
	}
	if _, err := s.Get(ctx, meshKey("held")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after the last finalizer went: %v, want ErrNotFound", err)
	}

	// Without finalizers DeleteOrMark removes at once.
	e.mustCreate(mesh("free"))
	err = s.Txn(ctx, func(tx store.Tx) error {
		var err error
		_, marked, err = store.DeleteOrMark(tx, meshKey("free"), "", now)
		return err
	})
	if err != nil || marked {
		t.Fatalf("DeleteOrMark without finalizers: marked %v, %v", marked, err)
	}
	if _, err := s.Get(ctx, meshKey("free")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after DeleteOrMark: %v, want ErrNotFound", err)
	}
}

func testClosedStore(e *Env) {
	t, s, ctx := e.T, e.S, e.T.Context()
	events, err := s.Watch(ctx, store.Filter{}, e.start)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	e.expectClosed(events)
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Create(ctx, mesh("m")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Create after Close: %v", err)
	}
	if _, err := s.Get(ctx, meshKey("m")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := s.Watch(ctx, store.Filter{}, 0); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Watch after Close: %v", err)
	}
}
