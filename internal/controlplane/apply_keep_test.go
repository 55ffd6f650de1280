package controlplane

import (
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

func workloadManifest(replicas int32, ann map[string]string) *v1alpha1.Workload {
	w := &v1alpha1.Workload{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", Annotations: ann}}
	w.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Workload"))
	w.Spec.Command = []string{"canarymesh"}
	w.Spec.Args = []string{"demo-app", "--version", "3.1.0"}
	w.Spec.Port = 9898
	w.Spec.Replicas = &replicas
	return w
}

// Re-applying a manifest (as `up -f` does on every file change) must not undo what the
// canary controller and the manual commands keep on the objects.
func TestReapplyKeepsCanarymeshState(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx := context.Background()
	if _, err := c.Apply(ctx, []v1alpha1.Object{workloadManifest(2, map[string]string{"team": "web"})}, false); err != nil {
		t.Fatal(err)
	}
	// The canary controller parks the target and a user asks for a promotion.
	key := store.Key{Kind: "Workload", Namespace: "test", Name: "podinfo"}
	obj, err := st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	w := obj.(*v1alpha1.Workload)
	zero := int32(0)
	w.Spec.Replicas = &zero
	w.Annotations[v1alpha1.AnnotationCanaryReplicas] = "2"
	w.Annotations["canarymesh.dev/command"] = "promote"
	if _, err := st.Update(ctx, w); err != nil {
		t.Fatal(err)
	}

	get := func() *v1alpha1.Workload {
		t.Helper()
		o, err := st.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return o.(*v1alpha1.Workload)
	}

	// The same manifest again: nothing to change.
	resp, err := c.Apply(ctx, []v1alpha1.Object{workloadManifest(2, map[string]string{"team": "web"})}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(resp); got != "unchanged" {
		t.Errorf("re-apply of the same manifest: %s, want unchanged", got)
	}
	if got := get(); got.GetReplicas() != 0 || got.Annotations["canarymesh.dev/command"] != "promote" {
		t.Errorf("after re-apply: replicas %d, annotations %v; want the parked 0 and the pending command", got.GetReplicas(), got.Annotations)
	}

	// A new replica count while parked is the count the next analysis restores; a user
	// annotation dropped from the manifest goes; an own annotation the manifest sets wins.
	if _, err := c.Apply(ctx, []v1alpha1.Object{workloadManifest(3, map[string]string{"canarymesh.dev/command": "abort"})}, false); err != nil {
		t.Fatal(err)
	}
	got := get()
	if got.GetReplicas() != 0 {
		t.Errorf("parked workload scaled to %d by a re-apply", got.GetReplicas())
	}
	if r := got.Annotations[v1alpha1.AnnotationCanaryReplicas]; r != "3" {
		t.Errorf("canary replicas to restore = %q, want 3", r)
	}
	if _, ok := got.Annotations["team"]; ok {
		t.Errorf("user annotation removed from the manifest is still there: %v", got.Annotations)
	}
	if cmd := got.Annotations["canarymesh.dev/command"]; cmd != "abort" {
		t.Errorf("command = %q, want the manifest's abort", cmd)
	}

	// A workload that is not parked takes the manifest's replicas as they are.
	w = get()
	delete(w.Annotations, v1alpha1.AnnotationCanaryReplicas)
	one := int32(1)
	w.Spec.Replicas = &one
	if _, err := st.Update(ctx, w); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, []v1alpha1.Object{workloadManifest(4, nil)}, false); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.GetReplicas() != 4 {
		t.Errorf("unparked workload replicas = %d, want 4", got.GetReplicas())
	}
}

// App Mesh fixes awsName and the mesh an object belongs to at creation; an apply or PUT
// that changes them is refused with the field, and nothing of the batch is stored.
func TestImmutableFieldsAreRefused(t *testing.T) {
	c, _, _ := newTestAPI(t)
	ctx := context.Background()
	node := func(awsName string) *v1alpha1.VirtualNode {
		vn := &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
		vn.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("VirtualNode"))
		if awsName != "" {
			vn.Spec.AWSName = &awsName
		}
		return vn
	}
	if _, err := c.Apply(ctx, []v1alpha1.Object{namespace("shop", nil), mesh("m", &metav1.LabelSelector{}), node("web-aws")}, false); err != nil {
		t.Fatal(err)
	}
	// Re-applying without meshRef (the system filled it) is fine.
	if _, err := c.Apply(ctx, []v1alpha1.Object{node("web-aws")}, false); err != nil {
		t.Fatalf("re-apply of the same manifest: %v", err)
	}
	_, err := c.Apply(ctx, []v1alpha1.Object{namespace("extra", nil), node("renamed")}, false)
	var se *StatusError
	if !errors.As(err, &se) || se.Status.Details == nil || len(se.Status.Details.Causes) != 1 {
		t.Fatalf("apply with a new awsName: %v, want one cause", err)
	}
	if cause := se.Status.Details.Causes[0]; cause.Index != 1 || cause.Field != "spec.awsName" || !strings.Contains(cause.Message, "immutable") {
		t.Errorf("cause = %+v, want index 1, spec.awsName, immutable", cause)
	}
	if _, err := c.Get(ctx, kind(t, "ns"), "", "extra"); err == nil {
		t.Error("namespace extra was stored although the batch was refused")
	}

	cur, err := c.Get(ctx, kind(t, "vn"), "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	vn := cur.(*v1alpha1.VirtualNode)
	vn.Spec.MeshRef = &v1alpha1.MeshReference{Name: "elsewhere"}
	if _, err := c.Update(ctx, vn, false); err == nil || !strings.Contains(err.Error(), "spec.meshRef.name") {
		t.Errorf("PUT moving the node to another mesh: %v", err)
	}
}
