package workload

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Role is the part a workload plays in a release (canary.Role).
type Role = canary.Role

// Roles, the values of LabelRole.
const (
	RolePrimary = canary.RolePrimary
	RoleCanary  = canary.RoleCanary
)

// The label scheme, as Flagger's, so virtual nodes tell the two apart:
//
//   - The canary is the target Workload itself. Its labels are never touched, since
//     they are part of its spec and so of its revision; the <target>-canary virtual
//     node selects it by the target's own labels, app: <target> in the seed manifests.
//   - The primary, <target>-primary, runs a copy of the target's spec whose selector
//     labels (app, name, app.kubernetes.io/name: every one the target has, else app)
//     read <target>-primary, and which carries canarymesh.dev/role: primary; the
//     <target>-primary virtual node selects app: <target>-primary. The primary's
//     metadata labels get canarymesh.dev/role: primary as well.
const (
	// LabelRole marks a primary's instances and object.
	LabelRole = "canarymesh.dev/role"
	// AnnotationPromotedRevision on the primary is the target revision it runs.
	AnnotationPromotedRevision = "canarymesh.dev/promoted-revision"
	// AnnotationCanaryReplicas on the target is its replica count before it was parked.
	AnnotationCanaryReplicas = v1alpha1.AnnotationCanaryReplicas
)

// selectorLabels are the labels a primary's copy renames, Flagger's defaults.
var selectorLabels = []string{"app", "name", "app.kubernetes.io/name"}

// RestoreReplicas asks ScaleCanary for the count the target had before it was parked.
const RestoreReplicas = canary.RestoreReplicas

// ErrTargetNotFound: the Canary's targetRef names no Workload (canary.ErrTargetNotFound).
var ErrTargetNotFound = canary.ErrTargetNotFound

// WorkloadTarget is the canary.Target of standalone mode: Workload objects in a store, which
// the Supervisor runs.
type WorkloadTarget struct {
	Store store.Store
}

var _ canary.Target = (*WorkloadTarget)(nil)

// PrimaryName returns the name of the target's primary.
func PrimaryName(target string) string { return target + "-primary" }

func (t *WorkloadTarget) get(ctx context.Context, ns, name string) (*v1alpha1.Workload, error) {
	obj, err := t.Store.Get(ctx, store.Key{Kind: "Workload", Namespace: ns, Name: name})
	if err != nil {
		return nil, err
	}
	w, ok := obj.(*v1alpha1.Workload)
	if !ok {
		return nil, fmt.Errorf("workload %s/%s: store returned a %T", ns, name, obj)
	}
	return w, nil
}

func (t *WorkloadTarget) target(ctx context.Context, cd *v1alpha1.Canary) (*v1alpha1.Workload, error) {
	ref := cd.Spec.TargetRef
	if ref.Kind != "" && ref.Kind != "Workload" {
		return nil, fmt.Errorf("canary %s/%s: targetRef kind %q is not Workload, the only kind standalone mode runs: %w", cd.Namespace, cd.Name, ref.Kind, ErrTargetNotFound)
	}
	w, err := t.get(ctx, cd.Namespace, ref.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("canary %s/%s: workload %s/%s: %w", cd.Namespace, cd.Name, cd.Namespace, ref.Name, ErrTargetNotFound)
	}
	return w, err
}

// primarySpec is the target's spec as the primary runs it: selector labels renamed, the
// role label added, and a fixed port dropped, since the target keeps it (two processes
// cannot share a port on one machine; the mesh finds the primary's ports in its status).
func primarySpec(target *v1alpha1.Workload) v1alpha1.WorkloadSpec {
	spec := *target.Spec.DeepCopy()
	primary := PrimaryName(target.Name)
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	renamed := false
	for _, k := range selectorLabels {
		if _, ok := labels[k]; ok {
			labels[k], renamed = primary, true
		}
	}
	if !renamed {
		labels["app"] = primary
	}
	labels[LabelRole] = string(RolePrimary)
	spec.Labels = labels
	if spec.Port != 0 {
		if p := spec.ReadinessProbe; p != nil && p.HTTPGet != nil && p.HTTPGet.Port >= spec.Port &&
			p.HTTPGet.Port < spec.Port+target.GetReplicas() {
			p.HTTPGet.Port = 0 // it probed the instance's own port; keep doing so
		}
		spec.Port = 0
	}
	return spec
}

// Initialize creates <target>-primary as a copy of the target, with the target's
// replicas. An existing primary is left as it is; one not made by a Canary is an error,
// as overwriting a user's own workload would be.
func (t *WorkloadTarget) Initialize(ctx context.Context, cd *v1alpha1.Canary) error {
	target, err := t.target(ctx, cd)
	if err != nil {
		return err
	}
	name := PrimaryName(target.Name)
	existing, err := t.get(ctx, cd.Namespace, name)
	switch {
	case err == nil:
		if existing.Labels[LabelRole] != string(RolePrimary) {
			return fmt.Errorf("workload %s/%s exists and is not a primary (no %s: %s label)", cd.Namespace, name, LabelRole, RolePrimary)
		}
		return nil
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	primary := &v1alpha1.Workload{Spec: primarySpec(target)}
	primary.Name, primary.Namespace = name, target.Namespace
	primary.Labels = maps.Clone(target.Labels)
	if primary.Labels == nil {
		primary.Labels = map[string]string{}
	}
	primary.Labels[LabelRole] = string(RolePrimary)
	primary.Annotations = map[string]string{AnnotationPromotedRevision: target.Revision()}
	replicas := target.GetReplicas()
	primary.Spec.Replicas = &replicas
	_, err = t.Store.Create(ctx, primary)
	if errors.Is(err, store.ErrExists) {
		return nil // made meanwhile by an earlier attempt
	}
	return err
}

// Revision returns the target's revision.
func (t *WorkloadTarget) Revision(ctx context.Context, cd *v1alpha1.Canary) (string, error) {
	target, err := t.target(ctx, cd)
	if err != nil {
		return "", err
	}
	return target.Revision(), nil
}

// PrimaryRevision returns the target revision recorded on the primary.
func (t *WorkloadTarget) PrimaryRevision(ctx context.Context, cd *v1alpha1.Canary) (string, error) {
	p, err := t.get(ctx, cd.Namespace, PrimaryName(cd.Spec.TargetRef.Name))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return p.Annotations[AnnotationPromotedRevision], nil
}

// ScaleCanary sets the target's replicas; see Target.
func (t *WorkloadTarget) ScaleCanary(ctx context.Context, cd *v1alpha1.Canary, replicas int32) error {
	if _, err := t.target(ctx, cd); err != nil {
		return err
	}
	return t.modify(ctx, cd.Namespace, cd.Spec.TargetRef.Name, func(w *v1alpha1.Workload) error {
		cur := w.GetReplicas()
		switch {
		case replicas == RestoreReplicas:
			if cur > 0 {
				return nil
			}
			replicas = 1
			if n, err := strconv.ParseInt(w.Annotations[AnnotationCanaryReplicas], 10, 32); err == nil && n > 0 {
				replicas = int32(n)
			}
			delete(w.Annotations, AnnotationCanaryReplicas)
		case replicas == 0 && cur > 0:
			if w.Annotations == nil {
				w.Annotations = map[string]string{}
			}
			w.Annotations[AnnotationCanaryReplicas] = strconv.Itoa(int(cur))
		case replicas < 0:
			return fmt.Errorf("replicas %d is negative", replicas)
		}
		w.Spec.Replicas = &replicas
		return nil
	})
}

// Promote copies the target's spec into the primary, keeping the primary's replicas.
func (t *WorkloadTarget) Promote(ctx context.Context, cd *v1alpha1.Canary) error {
	target, err := t.target(ctx, cd)
	if err != nil {
		return err
	}
	spec, rev := primarySpec(target), target.Revision()
	return t.modify(ctx, cd.Namespace, PrimaryName(target.Name), func(w *v1alpha1.Workload) error {
		replicas := w.GetReplicas()
		w.Spec = spec
		w.Spec.Replicas = &replicas
		if w.Annotations == nil {
			w.Annotations = map[string]string{}
		}
		w.Annotations[AnnotationPromotedRevision] = rev
		return nil
	})
}

// Rollback parks the target; the router has sent traffic back to the primary.
func (t *WorkloadTarget) Rollback(ctx context.Context, cd *v1alpha1.Canary) error {
	return t.ScaleCanary(ctx, cd, 0)
}

// Ready compares the instances of the current revision that are ready with the
// threshold the Canary sets for role.
func (t *WorkloadTarget) Ready(ctx context.Context, cd *v1alpha1.Canary, role Role) (bool, string, error) {
	name, threshold := cd.Spec.TargetRef.Name, cd.GetAnalysisCanaryReadyThreshold()
	if role == RolePrimary {
		name, threshold = PrimaryName(name), cd.GetAnalysisPrimaryReadyThreshold()
	}
	w, err := t.get(ctx, cd.Namespace, name)
	if errors.Is(err, store.ErrNotFound) {
		return false, fmt.Sprintf("workload %s/%s does not exist", cd.Namespace, name), nil
	}
	if err != nil {
		return false, "", err
	}
	return workloadReady(w, threshold)
}

func workloadReady(w *v1alpha1.Workload, threshold int) (bool, string, error) {
	want := w.GetReplicas()
	if w.Status.ObservedGeneration < w.Generation {
		return false, fmt.Sprintf("waiting for workload %s to be observed (generation %d)", w.Name, w.Generation), nil
	}
	if want == 0 {
		return false, fmt.Sprintf("workload %s is scaled to zero", w.Name), nil
	}
	rev := w.Revision()
	var ready int32
	for _, in := range w.Status.Instances {
		if in.Revision == rev && in.Ready {
			ready++
		}
	}
	if int(ready)*100 >= threshold*int(want) {
		return true, "", nil
	}
	msg := fmt.Sprintf("%d of %d instances of %s at revision %s ready, %d%% needed", ready, want, w.Name, rev, threshold)
	stuck := false
	for _, c := range w.Status.Conditions {
		if c.Type == ConditionProgressing && c.Status == "False" {
			msg += fmt.Sprintf(": %s: %s", c.Reason, c.Message)
			// A command or directory that does not exist stays missing until the spec
			// changes; a crash loop may still recover, and is left to the deadline.
			stuck = c.Reason == ReasonCommandNotFound || c.Reason == ReasonWorkingDirNotFound
		}
	}
	if stuck {
		return false, "", fmt.Errorf("%s: %w", msg, canary.ErrStuck)
	}
	return false, msg, nil
}

// modify applies f to the stored workload and writes it back with compare-and-swap,
// reading it again on conflict.
func (t *WorkloadTarget) modify(ctx context.Context, ns, name string, f func(w *v1alpha1.Workload) error) error {
	for range maxStatusAttempts {
		w, err := t.get(ctx, ns, name)
		if err != nil {
			return err
		}
		before := w.DeepCopy()
		if err := f(w); err != nil {
			return err
		}
		if equality.Semantic.DeepEqual(before, w) {
			return nil
		}
		_, err = t.Store.Update(ctx, w)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("workload %s/%s: %w (gave up after %d attempts)", ns, name, store.ErrConflict, maxStatusAttempts)
}
