package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

// wait bounds every blocking step so a broken store fails a test instead of hanging it.
const wait = 20 * time.Second

func open(t *testing.T, dir string, opts bolt.Options) *bolt.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := bolt.Open(t.Context(), dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func newStore(t *testing.T) *bolt.Store {
	t.Helper()
	return open(t, t.TempDir(), bolt.Options{})
}

func mesh(name string) *v1alpha1.Mesh {
	return &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func meshKey(name string) store.Key { return store.Key{Kind: "Mesh", Name: name} }

func mustCreate(t *testing.T, s store.Store, obj v1alpha1.Object) v1alpha1.Object {
	t.Helper()
	out, err := s.Create(t.Context(), obj)
	if err != nil {
		t.Fatalf("Create %s: %v", obj.GetName(), err)
	}
	return out
}

func rv(t *testing.T, obj v1alpha1.Object) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q of %s: %v", obj.GetResourceVersion(), obj.GetName(), err)
	}
	return n
}

func names(objs []v1alpha1.Object) string {
	var out []string
	for _, o := range objs {
		gvk := o.GetObjectKind().GroupVersionKind()
		n := gvk.Kind + ":" + o.GetName()
		if o.GetNamespace() != "" {
			n = gvk.Kind + ":" + o.GetNamespace() + "/" + o.GetName()
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

// namespacedKind returns VirtualNode, or another namespaced kind, or skips the test
// when none is registered.
func namespacedKind(t *testing.T) *v1alpha1.KindInfo {
	t.Helper()
	if k := namespacedKindOrNil(); k != nil {
		return k
	}
	t.Skip("no namespaced kind is registered in api/v1alpha1")
	return nil
}

func namespacedKindOrNil() *v1alpha1.KindInfo {
	if k, err := v1alpha1.LookupKind("VirtualNode"); err == nil && k.Namespaced {
		return k
	}
	for _, k := range v1alpha1.Kinds() {
		if k.Namespaced {
			return k
		}
	}
	return nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestCRUDRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := open(t, t.TempDir(), bolt.Options{Now: func() time.Time { return now }})
	ctx := t.Context()

	for i, tc := range []struct {
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
			obj:    &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "a"}}},
			key:    store.Key{Kind: "Namespace", Namespace: "ignored-for-cluster-scoped", Name: "shop"},
			apiVer: "v1", kind: "Namespace",
			mutate: func(o v1alpha1.Object) { o.SetLabels(map[string]string{"team": "b"}) },
			checkUp: func(t *testing.T, o v1alpha1.Object) {
				if got := o.GetLabels()["team"]; got != "b" {
					t.Errorf("label after update = %q", got)
				}
			},
		},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			base := uint64(3 * i) // each case makes three writes
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
			if !uuidRE.MatchString(string(created.GetUID())) {
				t.Errorf("uid %q is not a random UUID", created.GetUID())
			}
			if !created.GetCreationTimestamp().Time.Equal(now) {
				t.Errorf("creationTimestamp = %v, want %v", created.GetCreationTimestamp(), now)
			}
			if created.GetGeneration() != 1 || rv(t, created) != base+1 {
				t.Errorf("generation %d resourceVersion %s, want 1 and %d", created.GetGeneration(), created.GetResourceVersion(), base+1)
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
			if rv(t, updated) != base+2 {
				t.Errorf("resourceVersion after update = %s, want %d", updated.GetResourceVersion(), base+2)
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
			if rv(t, deleted) != base+3 || deleted.GetUID() != created.GetUID() {
				t.Errorf("Delete returned rv %s uid %s, want %d %s", deleted.GetResourceVersion(), deleted.GetUID(), base+3, created.GetUID())
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

func ptr[T any](v T) *T { return &v }

func TestBadInput(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
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
	if k := namespacedKindOrNil(); k != nil {
		o := k.NewObject()
		o.SetName("no-namespace")
		if _, err := s.Create(ctx, o); err == nil || !strings.Contains(err.Error(), "metadata.namespace is required") {
			t.Errorf("Create of a namespaced kind without namespace: %v", err)
		}
	}
}

func TestListOrderingAndFiltering(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	for _, o := range []v1alpha1.Object{namespace("zeta"), mesh("west"), namespace("alpha"), mesh("east"), mesh("central")} {
		mustCreate(t, s, o)
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
		if got := names(objs); got != tc.want {
			t.Errorf("List %+v = %q, want %q", tc.f, got, tc.want)
		}
		if rev != 5 {
			t.Errorf("List %+v revision = %d, want 5", tc.f, rev)
		}
	}
}

func TestListNamespaced(t *testing.T) {
	k := namespacedKind(t)
	s := newStore(t)
	ctx := t.Context()
	for _, nn := range []string{"b/two", "a/two", "b/one", "ab/one", "a/one"} {
		o := k.NewObject()
		ns, name, _ := strings.Cut(nn, "/")
		o.SetNamespace(ns)
		o.SetName(name)
		mustCreate(t, s, o)
	}
	mustCreate(t, s, mesh("m"))
	kn := k.Kind
	for _, tc := range []struct {
		f    store.Filter
		want string
	}{
		{store.Filter{Kind: kn}, fmt.Sprintf("%[1]s:a/one %[1]s:a/two %[1]s:ab/one %[1]s:b/one %[1]s:b/two", kn)},
		{store.Filter{Kind: kn, Namespace: "a"}, fmt.Sprintf("%[1]s:a/one %[1]s:a/two", kn)},
		{store.Filter{Namespace: "b"}, fmt.Sprintf("%[1]s:b/one %[1]s:b/two", kn)},
		{store.Filter{Kind: kn, Namespace: "none"}, ""},
	} {
		objs, _, err := s.List(ctx, tc.f)
		if err != nil {
			t.Fatalf("List %+v: %v", tc.f, err)
		}
		if got := names(objs); got != tc.want {
			t.Errorf("List %+v = %q, want %q", tc.f, got, tc.want)
		}
	}
	if _, err := s.Get(ctx, store.Key{Kind: kn, Namespace: "ab", Name: "one"}); err != nil {
		t.Errorf("Get ab/one: %v", err)
	}
}

func TestStaleWritesConflict(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	v1 := mustCreate(t, s, mesh("m"))
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
	if _, err := s.Delete(ctx, meshKey("m"), cur.GetResourceVersion()); err != nil {
		t.Errorf("delete at the current resourceVersion: %v", err)
	}
}

func TestConcurrentWritersConverge(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	mustCreate(t, s, mesh("counter"))
	const writers, increments = 8, 25

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

func TestTxnIsAllOrNothing(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	events, err := s.Watch(ctx, store.Filter{}, 0)
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
	if len(objs) != 0 || rev != 0 {
		t.Errorf("after a failed Txn: %q at revision %d, want nothing at 0", names(objs), rev)
	}

	var leaked store.Tx
	err = s.Txn(ctx, func(tx store.Tx) error {
		leaked = tx
		a, err := tx.Create(mesh("a"))
		if err != nil {
			return err
		}
		a.SetLabels(map[string]string{"step": "2"})
		if _, err := tx.Update(a); err != nil {
			return err
		}
		if _, err := tx.Create(namespace("shop")); err != nil {
			return err
		}
		listed, err := tx.List(store.Filter{})
		if err != nil {
			return err
		}
		if got := names(listed); got != "Mesh:a Namespace:shop" {
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
	// The first event seen is from the committed transaction: the failed one sent none.
	for i, want := range []struct {
		typ  store.EventType
		name string
	}{{store.Added, "a"}, {store.Modified, "a"}, {store.Added, "shop"}} {
		ev := next(t, events)
		if ev.Type != want.typ || ev.Object.GetName() != want.name || ev.ResourceVersion != uint64(i+1) {
			t.Errorf("event %d = %s %s rv %d, want %s %s rv %d", i, ev.Type, ev.Object.GetName(), ev.ResourceVersion, want.typ, want.name, i+1)
		}
	}
}

func TestGenerationFollowsSpec(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	m := mustCreate(t, s, &v1alpha1.Mesh{
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

	n := mustCreate(t, s, namespace("shop"))
	n.SetLabels(map[string]string{"team": "payments"})
	out, err := s.Update(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if out.GetGeneration() != 1 {
		t.Errorf("Namespace generation after a label change = %d, want 1", out.GetGeneration())
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	first := open(t, dir, bolt.Options{})
	_, err := bolt.Open(t.Context(), dir, bolt.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, bolt.ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	if want := fmt.Sprintf("data directory %s is in use by another canarymesh", dir); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, dir, bolt.Options{})
}

func TestClosedStore(t *testing.T) {
	s, err := bolt.Open(t.Context(), t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	events, err := s.Watch(ctx, store.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, events)
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
