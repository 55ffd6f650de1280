package kube_test

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/kube"
	"github.com/canarymesh/canarymesh/internal/store/storetest"
)

func newStore(t *testing.T, cfg *rest.Config) *kube.Store {
	t.Helper()
	s, err := kube.New(cfg, kube.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func startStore(t *testing.T) (*kube.Store, *kubetest.Env) {
	t.Helper()
	env := kubetest.Start(t, kubetest.Options{CRDs: true})
	return newStore(t, env.Config), env
}

// TestConformance runs the behaviour every store shares against a real API server, a
// new one for each test.
func TestConformance(t *testing.T) {
	configs := map[store.Store]*rest.Config{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			s, env := startStore(t)
			configs[s] = env.Config
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			return newStore(t, configs[s])
		},
		EnsureNamespaces: func(t *testing.T, s store.Store, names ...string) {
			for _, n := range names {
				_, err := s.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
				if err != nil && !errors.Is(err, store.ErrExists) {
					t.Fatalf("create namespace %s: %v", n, err)
				}
			}
		},
		Small: true,
	})
}

// Events are stored as Event resources and mirrored as core/v1 Events, so kubectl's
// `get events` and `describe` show them.
func TestEventsMirroredAsCoreEvents(t *testing.T) {
	s, env := startStore(t)
	ctx := t.Context()
	if _, err := s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "test"}}); err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	ev := &v1alpha1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "test", Name: "podinfo.progressing"},
		InvolvedObject: v1alpha1.ObjectReference{Kind: "Canary", Namespace: "test", Name: "podinfo", UID: "1234"},
		Type:           v1alpha1.EventTypeNormal, Reason: "Progressing", Message: "Advance podinfo.test canary weight 10",
		Count: 1, FirstTimestamp: now, LastTimestamp: now, Source: "canary-controller",
	}
	created, err := s.Create(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	created.(*v1alpha1.Event).Count = 2
	if _, err := s.Update(ctx, created); err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(env.Config)
	core, err := cs.CoreV1().Events("test").Get(ctx, "podinfo.progressing", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("core event: %v", err)
	}
	io := core.InvolvedObject
	if io.APIVersion != v1alpha1.APIVersion || io.Kind != "Canary" || io.Name != "podinfo" || core.Reason != "Progressing" ||
		core.Count != 2 || core.Source.Component != "canary-controller" || core.Message != ev.Message {
		t.Errorf("core event = %+v", core)
	}
	if _, err := s.Delete(ctx, store.Key{Kind: "Event", Namespace: "test", Name: "podinfo.progressing"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Events("test").Get(ctx, "podinfo.progressing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("core event after the Event was deleted: %v", err)
	}
}

// The API server refuses what its schema refuses, and the error names the field.
func TestSchemaViolationNamesField(t *testing.T) {
	s, _ := startStore(t)
	ctx := t.Context()
	if _, err := s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "test"}}); err != nil {
		t.Fatal(err)
	}
	vn := &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "podinfo"},
		Spec: v1alpha1.VirtualNodeSpec{Listeners: []v1alpha1.Listener{{PortMapping: v1alpha1.PortMapping{Port: 70000, Protocol: "http"}}}}}
	_, err := s.Create(ctx, vn)
	if err == nil || !strings.Contains(err.Error(), "spec.listeners[0].portMapping.port") || !strings.Contains(err.Error(), "VirtualNode/test/podinfo") {
		t.Errorf("Create with listener port 70000: %v", err)
	}
	if _, err := s.Get(ctx, store.Key{Kind: "VirtualNode", Namespace: "test", Name: "podinfo"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused object is stored: %v", err)
	}
}

func TestProxyIsReadOnly(t *testing.T) {
	s, _ := startStore(t)
	ctx := t.Context()
	if _, err := s.Create(ctx, &v1alpha1.Proxy{ObjectMeta: metav1.ObjectMeta{Name: "p"}}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Create of a Proxy: %v", err)
	}
	objs, _, err := s.List(ctx, store.Filter{Kind: "Proxy"})
	if err != nil || len(objs) != 0 {
		t.Errorf("List of proxies = %d objects, %v", len(objs), err)
	}
	if _, err := s.Get(ctx, store.Key{Kind: "Proxy", Name: "p"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a Proxy: %v", err)
	}
}

// The API server's errors map to the store's sentinels; 410 Expired cannot be provoked
// here (etcd compacts on its own schedule), so its mapping is checked on the error the
// API server sends.
func TestErrorMapping(t *testing.T) {
	gr := schema.GroupResource{Group: v1alpha1.Group, Resource: "meshes"}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{apierrors.NewNotFound(gr, "m"), store.ErrNotFound},
		{apierrors.NewAlreadyExists(gr, "m"), store.ErrExists},
		{apierrors.NewConflict(gr, "m", errors.New("the object has been modified")), store.ErrConflict},
		{apierrors.NewResourceExpired("too old resource version: 5 (100)"), store.ErrGone},
		{&apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonGone}}, store.ErrGone},
	} {
		got := kube.MapError(store.Key{Kind: "Mesh", Name: "m"}, tc.err)
		if !errors.Is(got, tc.want) || !strings.Contains(got.Error(), "Mesh/m") {
			t.Errorf("%v → %v, want %v naming Mesh/m", tc.err, got, tc.want)
		}
	}
}

// Watches the API server ends (here after a second each) are resumed from the last
// revision delivered: the consumer sees every change once, in order, on one channel.
func TestWatchResumesAcrossServerTimeouts(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true})
	s, err := kube.New(env.Config, kube.Options{WatchTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	_, rv, err := s.List(ctx, store.Filter{Kind: "Mesh"})
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.Watch(ctx, store.Filter{Kind: "Mesh"}, rv)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for i := range 4 {
		// Each write lands after the watch it would have gone to has been ended.
		time.Sleep(1500 * time.Millisecond)
		m, err := s.Create(ctx, &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "m" + strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
		want = append(want, n)
	}
	for i, w := range want {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("watch closed after %d events", i)
			}
			if ev.ResourceVersion != w || ev.Object.GetName() != "m"+strconv.Itoa(i) {
				t.Fatalf("event %d: %s rv %d, want m%d rv %d", i, ev.Object.GetName(), ev.ResourceVersion, i, w)
			}
		case <-time.After(storetest.Wait):
			t.Fatalf("no event %d", i)
		}
	}
}
