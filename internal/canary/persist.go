package canary

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// FinalizerRevert holds a Canary with revertOnDeletion after it is deleted, until the
// controller has given the target its traffic back.
const FinalizerRevert = "canarymesh.dev/canary"

// persist writes the decision's status onto the Canary as read (compare-and-swap on its
// resourceVersion, so a Canary changed meanwhile is ErrConflict and decided again),
// removes a consumed manual command in the same write, and keeps the finalizer in step
// with revertOnDeletion. A Terminated Canary that is being deleted loses the finalizer
// and is removed: removed is true, and out is the Canary as it was last.
func (c *Controller) persist(ctx context.Context, cur *v1alpha1.Canary, st *canaryState, dec Decision, consumed bool) (out *v1alpha1.Canary, removed bool, err error) {
	next := cur.DeepCopy()
	next.Status = dec.Status
	if consumed {
		delete(next.Annotations, AnnotationCommand)
		delete(next.Annotations, AnnotationCommandNonce)
	}
	setFinalizer(next, next.Spec.RevertOnDeletion && dec.Status.Phase != v1alpha1.CanaryPhaseTerminated)
	if equality.Semantic.DeepEqual(cur, next) {
		return cur, false, nil
	}
	var written v1alpha1.Object
	err = c.Store.Txn(ctx, func(tx store.Tx) error {
		var err error
		written, removed, err = store.UpdateOrFinalize(tx, next)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if removed {
		return next, true, nil
	}
	out, _ = written.(*v1alpha1.Canary)
	if out == nil {
		return next, false, nil
	}
	out.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	c.mu.Lock()
	st.written = out.ResourceVersion
	c.mu.Unlock()
	return out, false, nil
}

// setFinalizer adds or removes FinalizerRevert, leaving other finalizers alone.
func setFinalizer(cd *v1alpha1.Canary, want bool) {
	has := slices.Contains(cd.Finalizers, FinalizerRevert)
	switch {
	case want && !has:
		cd.Finalizers = append(cd.Finalizers, FinalizerRevert)
	case !want && has:
		cd.Finalizers = slices.DeleteFunc(cd.Finalizers, func(f string) bool { return f == FinalizerRevert })
		if len(cd.Finalizers) == 0 {
			cd.Finalizers = nil
		}
	}
}
