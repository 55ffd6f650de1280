package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

const testToken = "t0ken"

// newTestAPI runs the API over a real bbolt store in a temporary directory.
func newTestAPI(t *testing.T) (*Client, store.Store, *httptest.Server) {
	t.Helper()
	st, err := bolt.Open(context.Background(), t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(NewServer(st, testToken, "test", slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	t.Cleanup(srv.Close)
	return NewClient(srv.URL, testToken), st, srv
}

func kind(t *testing.T, name string) *v1alpha1.KindInfo {
	t.Helper()
	k, err := v1alpha1.LookupKind(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mesh(name string, sel *metav1.LabelSelector) *v1alpha1.Mesh {
	m := &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.MeshSpec{NamespaceSelector: sel}}
	m.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Mesh"))
	return m
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	ns.APIVersion, ns.Kind = "v1", "Namespace"
	return ns
}

func TestApplyCreatesConfiguresAndLeavesUnchanged(t *testing.T) {
	c, _, _ := newTestAPI(t)
	ctx := context.Background()
	resp, err := c.Apply(ctx, []v1alpha1.Object{mesh("m", nil), namespace("shop", nil)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(resp); got != "created,created" {
		t.Errorf("first apply: %s", got)
	}
	resp, err = c.Apply(ctx, []v1alpha1.Object{mesh("m", nil), namespace("shop", map[string]string{"a": "b"})}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(resp); got != "unchanged,configured" {
		t.Errorf("second apply: %s", got)
	}
	ns, err := c.Get(ctx, kind(t, "ns"), "", "shop")
	if err != nil {
		t.Fatal(err)
	}
	if ns.GetLabels()["a"] != "b" {
		t.Errorf("labels not applied: %v", ns.GetLabels())
	}
}

func actions(r *ApplyResponse) string {
	var s []string
	for _, x := range r.Results {
		s = append(s, x.Action)
	}
	return strings.Join(s, ",")
}

// One invalid item and nothing is stored; the causes carry the item's index and field.
func TestApplyIsAllOrNothing(t *testing.T) {
	c, _, _ := newTestAPI(t)
	ctx := context.Background()
	bad := mesh("bad", nil)
	bad.Spec.EgressFilter = &v1alpha1.EgressFilter{Type: "SOMETIMES"}
	_, err := c.Apply(ctx, []v1alpha1.Object{mesh("good", nil), bad}, false)
	var se *StatusError
	if !errors.As(err, &se) || se.Status.Code != http.StatusUnprocessableEntity {
		t.Fatalf("want 422, got %v", err)
	}
	if cs := se.Status.Details.Causes; len(cs) != 1 || cs[0].Index != 1 || cs[0].Field != "spec.egressFilter.type" {
		t.Errorf("causes: %+v", se.Status.Details.Causes)
	}
	if _, err := c.Get(ctx, kind(t, "mesh"), "", "good"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the valid item of a refused batch was stored: %v", err)
	}
}

func TestDryRunStoresNothing(t *testing.T) {
	c, _, _ := newTestAPI(t)
	ctx := context.Background()
	resp, err := c.Apply(ctx, []v1alpha1.Object{mesh("m", nil)}, true)
	if err != nil || actions(resp) != "created" || !resp.DryRun {
		t.Fatalf("%+v %v", resp, err)
	}
	if _, err := c.Get(ctx, kind(t, "mesh"), "", "m"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("dry run stored: %v", err)
	}
}

func TestStaleUpdateConflicts(t *testing.T) {
	c, _, _ := newTestAPI(t)
	ctx := context.Background()
	created, err := c.Create(ctx, mesh("m", nil))
	if err != nil {
		t.Fatal(err)
	}
	first := created.DeepCopyObject().(*v1alpha1.Mesh)
	first.Spec.EgressFilter = &v1alpha1.EgressFilter{Type: v1alpha1.EgressFilterAllowAll}
	if _, err := c.Update(ctx, first, false); err != nil {
		t.Fatal(err)
	}
	stale := created.DeepCopyObject().(*v1alpha1.Mesh)
	stale.Spec.EgressFilter = &v1alpha1.EgressFilter{Type: v1alpha1.EgressFilterDropAll}
	if _, err := c.Update(ctx, stale, false); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: %v, want conflict", err)
	}
	if _, err := c.Create(ctx, mesh("m", nil)); !errors.Is(err, store.ErrExists) {
		t.Errorf("second create: %v, want already exists", err)
	}
}

// A status update leaves spec alone, and a spec update leaves status alone.
func TestStatusIsItsOwnSubresource(t *testing.T) {
	c, _, _ := newTestAPI(t)
	ctx := context.Background()
	created, err := c.Create(ctx, mesh("m", nil))
	if err != nil {
		t.Fatal(err)
	}
	m := created.(*v1alpha1.Mesh)
	m.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Test", LastTransitionTime: metav1.Now()}}
	m.Spec.EgressFilter = &v1alpha1.EgressFilter{Type: v1alpha1.EgressFilterAllowAll}
	out, err := c.Update(ctx, m, true)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1alpha1.Mesh)
	if len(got.Status.Conditions) != 1 || got.Spec.EgressFilter.Type != v1alpha1.EgressFilterDropAll {
		t.Errorf("status update: conditions %v, egress %v", got.Status.Conditions, got.Spec.EgressFilter)
	}
	got.Spec.EgressFilter.Type = v1alpha1.EgressFilterAllowAll
	got.Status.Conditions = nil
	out, err = c.Update(ctx, got, false)
	if err != nil {
		t.Fatal(err)
	}
	if m := out.(*v1alpha1.Mesh); len(m.Status.Conditions) != 1 || m.Spec.EgressFilter.Type != v1alpha1.EgressFilterAllowAll {
		t.Errorf("spec update: conditions %v, egress %v", m.Status.Conditions, m.Spec.EgressFilter)
	}
}

func TestUnauthorizedChangesNothing(t *testing.T) {
	_, _, srv := newTestAPI(t)
	ctx := context.Background()
	bad := NewClient(srv.URL, "nope")
	_, err := bad.Apply(ctx, []v1alpha1.Object{mesh("m", nil)}, false)
	var se *StatusError
	if !errors.As(err, &se) || se.Status.Code != http.StatusUnauthorized {
		t.Fatalf("want 401, got %v", err)
	}
	good := NewClient(srv.URL, testToken)
	if l, _, err := good.List(ctx, kind(t, "mesh"), ""); err != nil || len(l) != 0 {
		t.Errorf("after a refused apply: %v %v", l, err)
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("healthz needs no token: %v %v", resp, err)
	}
}

func TestUnknownPathsAndFields(t *testing.T) {
	_, _, srv := newTestAPI(t)
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/apis/canarymesh.dev/v1alpha1/gadgets", "", 404},
		{"GET", "/apis/canarymesh.dev/v1alpha1/virtualnodes/x", "", 404}, // namespaced kind without namespace
		{"GET", "/apis/canarymesh.dev/v1alpha1/namespaces/a/meshes", "", 404},
		{"POST", "/apis/canarymesh.dev/v1alpha1/meshes", `{"apiVersion":"canarymesh.dev/v1alpha1","kind":"Mesh","metadata":{"name":"m"},"spec":{"colour":"red"}}`, 400},
		{"POST", "/apis/canarymesh.dev/v1alpha1/meshes", `{"apiVersion":"canarymesh.dev/v1alpha1","kind":"Canary","metadata":{"name":"m"}}`, 400},
		{"PATCH", "/apis/canarymesh.dev/v1alpha1/meshes/m", `{}`, 405},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var st Status
		_ = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode != c.code || st.Kind != "Status" || st.Message == "" {
			t.Errorf("%s %s: %d %+v, want %d with a Status", c.method, c.path, resp.StatusCode, st, c.code)
		}
	}
}

// Mesh membership follows App Mesh: the namespace joins the Mesh whose selector matches
// its labels; an empty selector matches all; several matches are refused.
func TestMeshMembership(t *testing.T) {
	c, _, _ := newTestAPI(t)
	ctx := context.Background()
	node := func(ns string) v1alpha1.Object {
		vn := &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
		vn.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("VirtualNode"))
		return vn
	}
	_, err := c.Apply(ctx, []v1alpha1.Object{
		namespace("shop", map[string]string{"mesh": "blue"}),
		namespace("other", nil),
		mesh("blue", &metav1.LabelSelector{MatchLabels: map[string]string{"mesh": "blue"}}),
		node("shop"), node("other"),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	vn, err := c.Get(ctx, kind(t, "vn"), "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	if ref := vn.(*v1alpha1.VirtualNode).Spec.MeshRef; ref == nil || ref.Name != "blue" || ref.UID == "" {
		t.Errorf("shop/web meshRef = %+v, want blue with its uid", ref)
	}
	vn, _ = c.Get(ctx, kind(t, "vn"), "other", "web")
	if ref := vn.(*v1alpha1.VirtualNode).Spec.MeshRef; ref != nil {
		t.Errorf("other/web joined %+v; no mesh selects it", ref)
	}
	// An empty selector selects every namespace, so shop now matches two meshes.
	if _, err := c.Apply(ctx, []v1alpha1.Object{mesh("all", &metav1.LabelSelector{})}, false); err != nil {
		t.Fatal(err)
	}
	_, err = c.Apply(ctx, []v1alpha1.Object{func() v1alpha1.Object { o := node("shop"); o.SetName("api"); return o }()}, false)
	if err == nil || !strings.Contains(err.Error(), "matches 2 meshes") {
		t.Errorf("two matching meshes: %v", err)
	}
	// Meshes themselves belong to no mesh: a third one is not refused for that.
	if _, err := c.Apply(ctx, []v1alpha1.Object{mesh("third", &metav1.LabelSelector{})}, false); err != nil {
		t.Errorf("a Mesh applied while namespaces match several: %v", err)
	}
}

// A watch streams every change after the list's resourceVersion, and resumes from any
// resourceVersion it saw.
func TestWatchStreamsAndResumes(t *testing.T) {
	c, _, _ := newTestAPI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := kind(t, "mesh")
	_, rv, err := c.List(ctx, k, "")
	if err != nil {
		t.Fatal(err)
	}
	events, errc, err := c.Watch(ctx, k, "", "", rv)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, n := range []string{"a", "b"} {
			if _, err := c.Create(ctx, mesh(n, nil)); err != nil {
				t.Error(err)
			}
		}
		if err := c.Delete(ctx, k, "", "a"); err != nil {
			t.Error(err)
		}
	}()
	var got []string
	var resumeFrom string
	for ev := range events {
		got = append(got, string(ev.Type)+" "+ev.Object.GetName())
		if len(got) == 1 {
			resumeFrom = ev.Object.GetResourceVersion()
		}
		if len(got) == 3 {
			break
		}
	}
	wg.Wait()
	if strings.Join(got, ",") != "ADDED a,ADDED b,DELETED a" {
		t.Errorf("events: %v", got)
	}
	_ = errc
	events2, _, err := c.Watch(ctx, k, "", "", resumeFrom)
	if err != nil {
		t.Fatal(err)
	}
	ev := <-events2
	if ev.Type != store.Added || ev.Object.GetName() != "b" {
		t.Errorf("resumed watch starts with %s %s, want ADDED b", ev.Type, ev.Object.GetName())
	}
}
