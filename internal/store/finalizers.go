package store

import (
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Deletion with finalizers works as in Kubernetes, for every writer that goes through
// these two helpers (the API server and the controllers):
//
//	DELETE, no finalizers      ─▶ removed
//	DELETE, finalizers left    ─▶ metadata.deletionTimestamp set; the owners of the
//	                              finalizers clean up, then remove theirs
//	update that empties the finalizers of an object with a deletionTimestamp ─▶ removed

// DeleteOrMark deletes the object at key, or, while it has finalizers, only marks it
// with a deletionTimestamp (once) and reports marked. A non-empty resourceVersion makes
// it compare-and-swap.
func DeleteOrMark(tx Tx, key Key, resourceVersion string, now time.Time) (obj v1alpha1.Object, marked bool, err error) {
	cur, err := tx.Get(key)
	if err != nil {
		return nil, false, err
	}
	if resourceVersion != "" && resourceVersion != cur.GetResourceVersion() {
		return nil, false, fmt.Errorf("%s: %w", key, ErrConflict)
	}
	if len(cur.GetFinalizers()) == 0 {
		obj, err = tx.Delete(key, cur.GetResourceVersion())
		return obj, false, err
	}
	if cur.GetDeletionTimestamp() != nil {
		return cur, true, nil
	}
	t := metav1.NewTime(now.UTC().Truncate(time.Second))
	cur.SetDeletionTimestamp(&t)
	obj, err = tx.Update(cur)
	return obj, err == nil, err
}

// UpdateOrFinalize writes obj (compare-and-swap on its resourceVersion when set). The
// stored deletionTimestamp is kept whatever obj says; when the object is being deleted
// and obj has no finalizers left, it is removed instead and removed is true.
func UpdateOrFinalize(tx Tx, obj v1alpha1.Object) (out v1alpha1.Object, removed bool, err error) {
	key, err := KeyOf(obj)
	if err != nil {
		return nil, false, err
	}
	cur, err := tx.Get(key)
	if err != nil {
		return nil, false, err
	}
	if rv := obj.GetResourceVersion(); rv != "" && rv != cur.GetResourceVersion() {
		return nil, false, fmt.Errorf("%s: %w", key, ErrConflict)
	}
	if cur.GetDeletionTimestamp() != nil && len(obj.GetFinalizers()) == 0 {
		out, err = tx.Delete(key, cur.GetResourceVersion())
		if errors.Is(err, ErrNotFound) {
			return nil, true, nil
		}
		return out, err == nil, err
	}
	next, ok := obj.DeepCopyObject().(v1alpha1.Object)
	if !ok {
		return nil, false, fmt.Errorf("%s: deep copy is not an object", key)
	}
	next.SetDeletionTimestamp(cur.GetDeletionTimestamp())
	out, err = tx.Update(next)
	return out, false, err
}
