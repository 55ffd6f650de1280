package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/store"
)

// LabelMirrorOf marks a canarymesh.dev object mirrored from a compat object; its value is
// the compat kind, as KIND.GROUP (VirtualNode.appmesh.k8s.aws).
const LabelMirrorOf = "canarymesh.dev/mirror-of"

// ConditionMirrored is the condition on a compat object's status saying whether its
// canarymesh.dev twin could be written.
const ConditionMirrored = "Mirrored"

// CompatKinds are the kinds --serve-compat-apis reconciles.
var CompatKinds = []schema.GroupVersionKind{
	{Group: "appmesh.k8s.aws", Version: "v1beta2", Kind: "Mesh"},
	{Group: "appmesh.k8s.aws", Version: "v1beta2", Kind: "VirtualNode"},
	{Group: "appmesh.k8s.aws", Version: "v1beta2", Kind: "VirtualService"},
	{Group: "appmesh.k8s.aws", Version: "v1beta2", Kind: "VirtualRouter"},
	{Group: "appmesh.k8s.aws", Version: "v1beta2", Kind: "VirtualGateway"},
	{Group: "appmesh.k8s.aws", Version: "v1beta2", Kind: "GatewayRoute"},
	{Group: "flagger.app", Version: "v1beta1", Kind: "Canary"},
	{Group: "flagger.app", Version: "v1beta1", Kind: "MetricTemplate"},
	{Group: "flagger.app", Version: "v1beta1", Kind: "AlertProvider"},
}

func mirrorLabel(gvk schema.GroupVersionKind) string { return gvk.Kind + "." + gvk.Group }

// addCompat adds one controller per compat kind.
func addCompat(mgr manager.Manager, st store.Store, log *slog.Logger) error {
	for _, gvk := range CompatKinds {
		kind, err := v1alpha1.LookupKind(gvk.Kind)
		if err != nil {
			return err
		}
		r := &compatReconciler{c: mgr.GetClient(), st: st, gvk: gvk, kind: kind, log: log.With("kind", gvk.Kind+"."+gvk.Group)}
		c, err := controller.New("compat-"+gvk.Group+"-"+gvk.Kind, mgr, controller.Options{Reconciler: r})
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		if err := c.Watch(source.Kind[client.Object](mgr.GetCache(), u, &handler.EnqueueRequestForObject{})); err != nil {
			return err
		}
		// The twin's status changing is copied back.
		label := mirrorLabel(gvk)
		twins := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if o.GetLabels()[LabelMirrorOf] != label {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}}}
		})
		if err := c.Watch(source.Kind[client.Object](mgr.GetCache(), kind.New(), twins)); err != nil {
			return err
		}
	}
	return nil
}

// compatReconciler mirrors objects of one compat kind into their twins.
type compatReconciler struct {
	c    client.Client
	st   store.Store
	gvk  schema.GroupVersionKind
	kind *v1alpha1.KindInfo
	log  *slog.Logger
}

func (r *compatReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(r.gvk)
	key := store.Key{Kind: r.kind.Kind, Namespace: req.Namespace, Name: req.Name}
	err := r.c.Get(ctx, req.NamespacedName, u)
	if apierrors.IsNotFound(err) {
		return reconcile.Result{}, r.removeTwin(ctx, key)
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if u.GetDeletionTimestamp() != nil {
		return reconcile.Result{}, nil
	}
	want, err := Twin(u)
	if err != nil {
		return reconcile.Result{}, r.setStatus(ctx, u, nil, metav1.ConditionFalse, "InvalidObject", err.Error())
	}
	cur, err := r.st.Get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		cur, err = r.st.Create(ctx, want)
		if err != nil {
			return reconcile.Result{}, r.setStatus(ctx, u, nil, metav1.ConditionFalse, "WriteFailed", err.Error())
		}
	case err != nil:
		return reconcile.Result{}, err
	case !ownedBy(cur, u):
		msg := fmt.Sprintf("%s %s exists and is not a mirror of this object; it is left alone", r.kind.Kind, key)
		return reconcile.Result{}, r.setStatus(ctx, u, nil, metav1.ConditionFalse, "NameTaken", msg)
	default:
		next, changed := updatedTwin(cur, want)
		if changed {
			cur, err = r.st.Update(ctx, next)
			if errors.Is(err, store.ErrConflict) {
				return reconcile.Result{Requeue: true}, nil
			}
			if err != nil {
				return reconcile.Result{}, r.setStatus(ctx, u, nil, metav1.ConditionFalse, "WriteFailed", err.Error())
			}
		}
	}
	return reconcile.Result{}, r.setStatus(ctx, u, cur, metav1.ConditionTrue, "Mirrored", fmt.Sprintf("mirrored to %s", key))
}

// removeTwin deletes the twin of a compat object that is gone (the garbage collector
// does too, where it runs).
func (r *compatReconciler) removeTwin(ctx context.Context, key store.Key) error {
	cur, err := r.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.GetLabels()[LabelMirrorOf] != mirrorLabel(r.gvk) {
		return nil
	}
	// Deleted as the API server deletes: finalizers (a Canary's revertOnDeletion) run
	// first.
	err = r.st.Txn(ctx, func(tx store.Tx) error {
		_, _, err := store.DeleteOrMark(tx, key, cur.GetResourceVersion(), time.Now())
		return err
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

// ownedBy says whether twin is the mirror of u.
func ownedBy(twin v1alpha1.Object, u *unstructured.Unstructured) bool {
	for _, ref := range twin.GetOwnerReferences() {
		if ref.UID == u.GetUID() {
			return true
		}
	}
	return false
}

// Twin decodes a compat object into its canarymesh.dev twin, through the same import
// `canarymesh apply` uses, owned by it and labelled as its mirror.
func Twin(u *unstructured.Unstructured) (v1alpha1.Object, error) {
	gvk := u.GroupVersionKind()
	doc := map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind()}
	meta := map[string]any{"name": u.GetName()}
	if u.GetNamespace() != "" {
		meta["namespace"] = u.GetNamespace()
	}
	if l := u.GetLabels(); len(l) > 0 {
		meta["labels"] = l
	}
	if a := userAnnotations(u.GetAnnotations()); len(a) > 0 {
		meta["annotations"] = a
	}
	doc["metadata"] = meta
	if spec, ok := u.Object["spec"]; ok {
		doc["spec"] = spec
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	name := gvk.Kind + "." + gvk.Group + " " + u.GetName()
	if u.GetNamespace() != "" {
		name = gvk.Kind + "." + gvk.Group + " " + u.GetNamespace() + "/" + u.GetName()
	}
	res, err := manifest.Decode(name, raw, manifest.Options{Namespace: u.GetNamespace()})
	if err != nil {
		return nil, err
	}
	if len(res.Items) != 1 {
		return nil, fmt.Errorf("%s: decodes to %d objects, want 1", name, len(res.Items))
	}
	twin := res.Items[0].Object
	labels := twin.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelMirrorOf] = mirrorLabel(gvk)
	twin.SetLabels(labels)
	yes, no := true, false
	twin.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Name: u.GetName(), UID: u.GetUID(),
		Controller: &yes, BlockOwnerDeletion: &no,
	}})
	return twin, nil
}

// userAnnotations drops the annotation kubectl keeps its last apply in, which is the
// compat object's, not the twin's.
func userAnnotations(a map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		if k == "kubectl.kubernetes.io/last-applied-configuration" {
			continue
		}
		out[k] = v
	}
	return out
}

// updatedTwin returns cur with want's spec, labels, annotations and owners, and whether
// anything changed.
func updatedTwin(cur, want v1alpha1.Object) (v1alpha1.Object, bool) {
	next, _ := cur.DeepCopyObject().(v1alpha1.Object)
	changed := false
	cs := reflect.ValueOf(next).Elem().FieldByName("Spec")
	ws := reflect.ValueOf(want).Elem().FieldByName("Spec")
	if cs.IsValid() && ws.IsValid() {
		// A mesh object that names no mesh joins one by its namespace, and the status
		// reconciler writes that meshRef into the twin; it is the twin's, not a change.
		want := reflect.New(ws.Type()).Elem()
		want.Set(ws)
		if wr, cr := want.FieldByName("MeshRef"), cs.FieldByName("MeshRef"); wr.IsValid() && wr.IsNil() && cr.IsValid() {
			wr.Set(cr)
		}
		if !equality.Semantic.DeepEqual(cs.Interface(), want.Interface()) {
			cs.Set(want)
			changed = true
		}
	}
	if !equality.Semantic.DeepEqual(cur.GetLabels(), want.GetLabels()) {
		next.SetLabels(want.GetLabels())
		changed = true
	}
	if !equality.Semantic.DeepEqual(nonEmpty(cur.GetAnnotations()), nonEmpty(want.GetAnnotations())) {
		next.SetAnnotations(want.GetAnnotations())
		changed = true
	}
	if !equality.Semantic.DeepEqual(cur.GetOwnerReferences(), want.GetOwnerReferences()) {
		next.SetOwnerReferences(want.GetOwnerReferences())
		changed = true
	}
	return next, changed
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// setStatus writes the compat object's status through its status subresource: the
// twin's status when there is one, and the Mirrored condition. Its spec is never
// written.
func (r *compatReconciler) setStatus(ctx context.Context, u *unstructured.Unstructured, twin v1alpha1.Object, cs metav1.ConditionStatus, reason, msg string) error {
	status := map[string]any{}
	if twin != nil {
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(twin)
		if err != nil {
			return err
		}
		if s, ok := raw["status"].(map[string]any); ok {
			status = s
		}
	} else if s, ok := u.Object["status"].(map[string]any); ok {
		status = runtime.DeepCopyJSON(s)
	}
	conds, _ := status["conditions"].([]any)
	var kept []any
	var prev map[string]any
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == ConditionMirrored {
			continue
		}
		kept = append(kept, c)
	}
	cond := map[string]any{"type": ConditionMirrored, "status": string(cs), "reason": reason, "message": msg,
		"lastTransitionTime": metav1.Now().UTC().Format("2006-01-02T15:04:05Z"), "observedGeneration": u.GetGeneration()}
	if old, _ := u.Object["status"].(map[string]any); old != nil {
		for _, c := range asSlice(old["conditions"]) {
			if m, ok := c.(map[string]any); ok && m["type"] == ConditionMirrored && m["status"] == string(cs) {
				prev = m
			}
		}
	}
	if prev != nil && prev["status"] == string(cs) {
		cond["lastTransitionTime"] = prev["lastTransitionTime"]
	}
	status["conditions"] = append(kept, cond)
	if equality.Semantic.DeepEqual(normalize(u.Object["status"]), normalize(status)) {
		return nil
	}
	next := u.DeepCopy()
	next.Object["status"] = status
	if err := r.c.Status().Update(ctx, next); err != nil {
		if apierrors.IsConflict(err) {
			return nil // the watch brings the newer object back
		}
		return fmt.Errorf("status of %s %s/%s: %w", r.gvk.Kind, u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// normalize puts a status through JSON, so int64 and float64 numbers compare equal.
func normalize(v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(raw, &out)
	return out
}
