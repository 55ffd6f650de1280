package deploytarget

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
)

// Finalize undoes a Canary that is deleted with revertOnDeletion, once the target has
// its replicas back and its traffic: the apex Service selects the target's pods again
// and no longer belongs to the Canary, and the primary Deployment, its HPA, the primary
// copies of ConfigMaps and Secrets and the -primary and -canary Services are deleted.
// Only objects marked as this Canary's are deleted. With OwnerReferences, Kubernetes'
// garbage collector would delete them as well when the Canary goes; Finalize makes it
// happen in either mode, and keeps the apex.
func (t *Target) Finalize(ctx context.Context, cd *v1alpha1.Canary) error {
	// Without the target there is nothing for the apex to select, and the tracked
	// ConfigMaps and Secrets are unknown: the rest is removed all the same.
	o, err := t.observe(ctx, cd)
	if err != nil && !errors.Is(err, canary.ErrTargetNotFound) {
		return err
	}
	apex, primarySvc, canarySvc := cd.GetServiceNames()
	if o != nil {
		if err := t.releaseApex(ctx, cd, apex, o); err != nil {
			return err
		}
	}
	var errs []error
	mine := func(m metav1.Object) bool { return m.GetAnnotations()[AnnotationOwner] == owner(cd) }
	del := func(kind, name string, get func() (metav1.Object, error), remove func() error) {
		m, err := get()
		if apierrors.IsNotFound(err) {
			return
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("get %s %s/%s: %w", kind, cd.Namespace, name, err))
			return
		}
		if !mine(m) {
			return
		}
		if err := remove(); !goneOrNil(err) {
			errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", kind, cd.Namespace, name, err))
			return
		}
		t.log().InfoContext(ctx, "primary object deleted", "canary", cd.Namespace+"/"+cd.Name, "kind", kind, "name", name)
	}
	ns, opts := cd.Namespace, metav1.DeleteOptions{}
	core, apps := t.Client.CoreV1(), t.Client.AppsV1()
	pd := PrimaryName(cd.Spec.TargetRef.Name)
	del("deployment", pd, func() (metav1.Object, error) { return apps.Deployments(ns).Get(ctx, pd, metav1.GetOptions{}) },
		func() error { return apps.Deployments(ns).Delete(ctx, pd, opts) })
	if ref := cd.Spec.AutoscalerRef; ref != nil {
		ph := PrimaryName(ref.Name)
		hpas := t.Client.AutoscalingV2().HorizontalPodAutoscalers(ns)
		del("HorizontalPodAutoscaler", ph, func() (metav1.Object, error) { return hpas.Get(ctx, ph, metav1.GetOptions{}) },
			func() error { return hpas.Delete(ctx, ph, opts) })
	}
	var tracked configSet
	if o != nil {
		tracked = o.tracked
	}
	for ref := range tracked {
		pn := PrimaryName(ref.Name)
		switch ref.Kind {
		case kindConfigMap:
			del("ConfigMap", pn, func() (metav1.Object, error) { return core.ConfigMaps(ns).Get(ctx, pn, metav1.GetOptions{}) },
				func() error { return core.ConfigMaps(ns).Delete(ctx, pn, opts) })
		case kindSecret:
			del("Secret", pn, func() (metav1.Object, error) { return core.Secrets(ns).Get(ctx, pn, metav1.GetOptions{}) },
				func() error { return core.Secrets(ns).Delete(ctx, pn, opts) })
		}
	}
	for _, name := range []string{primarySvc, canarySvc} {
		del("service", name, func() (metav1.Object, error) { return core.Services(ns).Get(ctx, name, metav1.GetOptions{}) },
			func() error { return core.Services(ns).Delete(ctx, name, opts) })
	}
	return errors.Join(errs...)
}

// releaseApex points the apex Service at the target's pods and drops the Canary's marks
// from it, so that it outlives the Canary.
func (t *Target) releaseApex(ctx context.Context, cd *v1alpha1.Canary, apex string, o *observed) error {
	svcs := t.Client.CoreV1().Services(cd.Namespace)
	err := retry.RetryOnConflict(writeBackoff, func() error {
		svc, err := svcs.Get(ctx, apex, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if svc.Annotations[AnnotationOwner] != owner(cd) {
			return nil
		}
		delete(svc.Annotations, AnnotationOwner)
		svc.OwnerReferences = slices.DeleteFunc(svc.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == cd.UID })
		svc.Spec.Selector = map[string]string{o.key: o.value}
		_, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
		return err
	})
	if !goneOrNil(err) {
		return fmt.Errorf("release apex service %s/%s: %w", cd.Namespace, apex, err)
	}
	return nil
}

// goneOrNil reports whether err is nil or NotFound: what a deletion is content with.
func goneOrNil(err error) bool { return err == nil || apierrors.IsNotFound(err) }
