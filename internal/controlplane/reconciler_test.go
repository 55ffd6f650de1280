package controlplane

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

func vs(ns, name, router, meshName string) *v1alpha1.VirtualService {
	o := &v1alpha1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	o.Spec.MeshRef = &v1alpha1.MeshReference{Name: meshName}
	o.Spec.Provider = &v1alpha1.VirtualServiceProvider{VirtualRouter: &v1alpha1.VirtualRouterServiceProvider{
		VirtualRouterRef: &v1alpha1.VirtualRouterReference{Name: router}}}
	o.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("VirtualService"))
	o.Default()
	return o
}

func vr(ns, name, meshName string, targets ...string) *v1alpha1.VirtualRouter {
	o := &v1alpha1.VirtualRouter{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	o.Spec.MeshRef = &v1alpha1.MeshReference{Name: meshName}
	var wts []v1alpha1.WeightedTarget
	for _, t := range targets {
		wts = append(wts, v1alpha1.WeightedTarget{VirtualNodeRef: &v1alpha1.VirtualNodeReference{Name: t}, Weight: 1})
	}
	prefix := "/"
	o.Spec.Routes = []v1alpha1.Route{{Name: "r", HTTPRoute: &v1alpha1.HTTPRoute{
		Match: v1alpha1.HTTPRouteMatch{Prefix: &prefix}, Action: v1alpha1.HTTPRouteAction{WeightedTargets: wts}}}}
	o.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("VirtualRouter"))
	return o
}

func condOf(t *testing.T, st store.Store, kind, ns, name, typ string) *metav1.Condition {
	t.Helper()
	o, err := st.Get(context.Background(), store.Key{Kind: kind, Namespace: ns, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := meshStatus(o)
	return apimeta.FindStatusCondition(s.Conditions, typ)
}

// Apply order does not matter: a service naming a router that is not there yet is stored
// and reported not ready, and turns ready once the router and its nodes arrive.
func TestReferencesShowAsConditions(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx := context.Background()
	r := &StatusReconciler{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return time.Unix(1000, 0) }}

	if _, err := c.Apply(ctx, []v1alpha1.Object{vs("shop", "web", "web-router", "m")}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := condOf(t, st, "VirtualService", "shop", "web", v1alpha1.ConditionReferencesResolved)
	if got == nil || got.Status != metav1.ConditionFalse ||
		!strings.Contains(got.Message, "Mesh m not found") || !strings.Contains(got.Message, "VirtualRouter shop/web-router not found") {
		t.Fatalf("condition: %+v", got)
	}
	if ready := condOf(t, st, "VirtualService", "shop", "web", v1alpha1.ConditionReady); ready.Status != metav1.ConditionFalse {
		t.Errorf("ready: %+v", ready)
	}

	if _, err := c.Apply(ctx, []v1alpha1.Object{mesh("m", nil), vr("shop", "web-router", "m", "web-v1")}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := condOf(t, st, "VirtualService", "shop", "web", v1alpha1.ConditionReady); got.Status != metav1.ConditionTrue {
		t.Errorf("service after router arrived: %+v", got)
	}
	if got := condOf(t, st, "VirtualRouter", "shop", "web-router", v1alpha1.ConditionReferencesResolved); got.Status != metav1.ConditionFalse ||
		!strings.Contains(got.Message, "VirtualNode shop/web-v1 not found") {
		t.Errorf("router with a missing node: %+v", got)
	}

	// A second pass with nothing changed writes nothing.
	_, rv1, _ := st.List(ctx, store.Filter{})
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	_, rv2, _ := st.List(ctx, store.Filter{})
	if rv1 != rv2 {
		t.Errorf("an idle reconcile wrote: resourceVersion %d → %d", rv1, rv2)
	}
}

// Run follows changes by itself.
func TestReconcilerRunFollowsChanges(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := &StatusReconciler{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Settle: time.Millisecond}
	go func() { _ = r.Run(ctx) }()
	if _, err := c.Apply(ctx, []v1alpha1.Object{mesh("m", nil), vs("shop", "web", "web-router", "m")}, false); err != nil {
		t.Fatal(err)
	}
	waitCond(ctx, t, st, "VirtualService", "shop", "web", metav1.ConditionFalse)
	if _, err := c.Apply(ctx, []v1alpha1.Object{vr("shop", "web-router", "m", "web-v1")}, false); err != nil {
		t.Fatal(err)
	}
	waitCond(ctx, t, st, "VirtualService", "shop", "web", metav1.ConditionTrue)
}

func waitCond(ctx context.Context, t *testing.T, st store.Store, kind, ns, name string, want metav1.ConditionStatus) {
	t.Helper()
	for ctx.Err() == nil {
		o, err := st.Get(ctx, store.Key{Kind: kind, Namespace: ns, Name: name})
		if err == nil {
			s, _, _ := meshStatus(o)
			if c := apimeta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == want {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s %s/%s never became Ready=%s", kind, ns, name, want)
}

// A virtual node applied before any mesh selects its namespace joins the mesh once one
// appears: the order of applies does not matter.
func TestObjectsJoinAMeshThatAppearsLater(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx := context.Background()
	r := &StatusReconciler{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	vn := &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	vn.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("VirtualNode"))
	if _, err := c.Apply(ctx, []v1alpha1.Object{vn}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := condOf(t, st, "VirtualNode", "shop", "web", v1alpha1.ConditionReady); got.Status != metav1.ConditionFalse ||
		!strings.Contains(got.Message, "no Mesh selects namespace shop") {
		t.Fatalf("before the mesh: %+v", got)
	}
	if _, err := c.Apply(ctx, []v1alpha1.Object{mesh("m", &metav1.LabelSelector{})}, false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	o, _ := st.Get(ctx, store.Key{Kind: "VirtualNode", Namespace: "shop", Name: "web"})
	if ref := o.(*v1alpha1.VirtualNode).Spec.MeshRef; ref == nil || ref.Name != "m" {
		t.Fatalf("meshRef after the mesh appeared: %+v", ref)
	}
	if got := condOf(t, st, "VirtualNode", "shop", "web", v1alpha1.ConditionReady); got.Status != metav1.ConditionTrue {
		t.Errorf("after the mesh: %+v", got)
	}
}

// Run reconciles again for changes of mesh objects, metric templates, alert providers
// and namespaces, but not for its own status writes nor for kinds it does not read.
func TestReconcilerConcerns(t *testing.T) {
	r := &StatusReconciler{}
	router := vr("shop", "web-router", "m", "a")
	router.ResourceVersion = "7"
	r.wrote(router)
	cd := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
	steps := []struct {
		name string
		ev   store.Event
		want bool
	}{
		{"its own status write", store.Event{Type: store.Modified, Object: router, ResourceVersion: 7}, false},
		{"the same revision again", store.Event{Type: store.Modified, Object: router, ResourceVersion: 7}, true},
		{"another write of the router", store.Event{Type: store.Modified, Object: router, ResourceVersion: 8}, true},
		{"a namespace", store.Event{Type: store.Added, Object: namespace("shop", nil), ResourceVersion: 9}, true},
		{"a canary", store.Event{Type: store.Modified, Object: cd, ResourceVersion: 10}, false},
		{"a metric template", store.Event{Type: store.Added, Object: metricTemplate("shop", "t", "prometheus", "", "up"), ResourceVersion: 11}, true},
		{"an alert provider", store.Event{Type: store.Modified, Object: alertProvider("shop", "a", "slack", "https://x.example"), ResourceVersion: 12}, true},
	}
	for _, s := range steps {
		if got := r.concerns(s.ev); got != s.want {
			t.Errorf("%s: concerns = %v, want %v", s.name, got, s.want)
		}
	}
}
