package bolt_test

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
	"github.com/canarymesh/canarymesh/internal/store/storetest"
)

// wait bounds every blocking step so a broken store fails a test instead of hanging it.
const wait = storetest.Wait

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

// TestConformance runs the behaviour every store shares (internal/store/storetest).
func TestConformance(t *testing.T) {
	dirs := map[store.Store]string{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			dir := t.TempDir()
			s := open(t, dir, bolt.Options{})
			dirs[s] = dir
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			return open(t, dirs[s], bolt.Options{})
		},
		Contiguous:             true,
		NamespaceRemovedAtOnce: true,
	})
}

func mesh(name string) *v1alpha1.Mesh {
	return &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

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

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// The store stamps objects with its clock and a random (version 4) UUID.
func TestCreateUsesClockAndRandomUID(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := open(t, t.TempDir(), bolt.Options{Now: func() time.Time { return now }})
	created := mustCreate(t, s, mesh("global"))
	if !uuidRE.MatchString(string(created.GetUID())) {
		t.Errorf("uid %q is not a random UUID", created.GetUID())
	}
	if !created.GetCreationTimestamp().Time.Equal(now) {
		t.Errorf("creationTimestamp = %v, want %v", created.GetCreationTimestamp(), now)
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

func meshKey(name string) store.Key { return store.Key{Kind: "Mesh", Name: name} }
