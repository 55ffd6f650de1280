package deploytarget

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
)

// Annotations and labels this target sets.
const (
	// AnnotationPromotedRevision on the primary Deployment is the target revision it runs.
	AnnotationPromotedRevision = "canarymesh.dev/promoted-revision"
	// AnnotationRevision on the primary's pod template is the same revision: a change of
	// a ConfigMap alone changes it, so the primary's pods roll and read the new copy.
	AnnotationRevision = "canarymesh.dev/revision"
	// AnnotationCanaryReplicas on the target is its replica count before it was parked.
	AnnotationCanaryReplicas = "canarymesh.dev/canary-replicas"
	// AnnotationConfigTracking set to "disabled" on a ConfigMap or Secret leaves it out
	// of revisions and promotions; AnnotationFlaggerConfigTracking is Flagger's name.
	AnnotationConfigTracking        = "canarymesh.dev/config-tracking"
	AnnotationFlaggerConfigTracking = "flagger.app/config-tracking"
	// AnnotationOwner is the mesh router's owner mark, "Canary/NAMESPACE/NAME".
	AnnotationOwner = canary.AnnotationOwner
)

// DefaultSelectorLabels are the labels looked for in the target's selector, Flagger's
// defaults in Flagger's order.
var DefaultSelectorLabels = []string{"app", "name", "app.kubernetes.io/name"}

// PrimaryName is the name of the primary copy of a Deployment, HPA, ConfigMap or Secret.
func PrimaryName(name string) string { return name + "-primary" }

// owner is the value of AnnotationOwner for cd.
func owner(cd *v1alpha1.Canary) string { return "Canary/" + cd.Namespace + "/" + cd.Name }

// selectorLabel returns the label of the target's selector the primary renames and the
// canary virtual node selects on, and its value.
func selectorLabel(dep *appsv1.Deployment, candidates []string) (string, string, error) {
	if dep.Spec.Selector != nil {
		for _, k := range candidates {
			if v, ok := dep.Spec.Selector.MatchLabels[k]; ok {
				return k, v, nil
			}
		}
	}
	return "", "", fmt.Errorf("deployment %s/%s: spec.selector.matchLabels must contain one of %s",
		dep.Namespace, dep.Name, strings.Join(candidates, ", "))
}

// primaryLabels is labels with the selector label set to the primary's value.
func primaryLabels(labels map[string]string, key, value string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[key] = value
	return out
}

// primaryAnnotations are the target's annotations a primary keeps: the Deployment
// controller's own and kubectl's last-applied copy describe the target, not the primary.
func primaryAnnotations(ann map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range ann {
		switch {
		case strings.HasPrefix(k, "deployment.kubernetes.io/"),
			k == corev1.LastAppliedConfigAnnotation,
			k == AnnotationCanaryReplicas, k == AnnotationOwner, k == AnnotationPromotedRevision:
			continue
		}
		out[k] = v
	}
	return out
}

// primaryTemplate is the target's pod template as the primary runs it: the selector
// label renamed, tracked ConfigMaps and Secrets read from their primary copies, and the
// revision in an annotation.
func primaryTemplate(target *appsv1.Deployment, key, value, rev string, tracked configSet) corev1.PodTemplateSpec {
	t := *target.Spec.Template.DeepCopy()
	t.Labels = primaryLabels(t.Labels, key, value)
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	t.Annotations[AnnotationRevision] = rev
	rewriteConfigRefs(&t.Spec, tracked)
	return t
}

// primaryDeployment is the primary made from the target at revision rev.
func primaryDeployment(cd *v1alpha1.Canary, target *appsv1.Deployment, key, value, rev string, tracked configSet) *appsv1.Deployment {
	replicas := int32(1)
	if r := target.Spec.Replicas; r != nil && *r > 0 {
		replicas = *r
	}
	p := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:        PrimaryName(target.Name),
			Namespace:   target.Namespace,
			Labels:      primaryLabels(target.Labels, key, value),
			Annotations: primaryAnnotations(target.Annotations),
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}},
		},
	}
	p.Annotations[AnnotationOwner] = owner(cd)
	copyToPrimary(p, target, rev, primaryTemplate(target, key, value, rev, tracked))
	return p
}

// copyToPrimary sets what a promotion copies: the rollout settings, the pod template
// and the promoted revision. The replicas and the selector stay the primary's.
func copyToPrimary(p, target *appsv1.Deployment, rev string, tmpl corev1.PodTemplateSpec) {
	p.Spec.ProgressDeadlineSeconds = target.Spec.ProgressDeadlineSeconds
	p.Spec.MinReadySeconds = target.Spec.MinReadySeconds
	p.Spec.RevisionHistoryLimit = target.Spec.RevisionHistoryLimit
	p.Spec.Strategy = target.Spec.Strategy
	p.Spec.Template = tmpl
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[AnnotationPromotedRevision] = rev
}

// promotedMeta merges the target's labels and annotations into the primary's, as a
// promotion copies them, keeping the primary's selector label and own marks.
func promotedMeta(p, target *appsv1.Deployment, key, value string) {
	keep := map[string]string{}
	for k, v := range p.Annotations {
		// The primary's own marks, and those its Deployment controller keeps on it.
		if k == AnnotationOwner || k == AnnotationPromotedRevision || strings.HasPrefix(k, "deployment.kubernetes.io/") {
			keep[k] = v
		}
	}
	p.Labels = primaryLabels(target.Labels, key, value)
	p.Annotations = primaryAnnotations(target.Annotations)
	maps.Copy(p.Annotations, keep)
}

// ownerReference makes cd the controller of an object, so that Kubernetes' garbage
// collector deletes the object with it.
func ownerReference(cd *v1alpha1.Canary) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "Canary",
		Name: cd.Name, UID: cd.UID, Controller: &yes, BlockOwnerDeletion: &yes,
	}
}

// setOwner adds cd's owner reference to refs unless it is there.
func setOwner(refs []metav1.OwnerReference, cd *v1alpha1.Canary) []metav1.OwnerReference {
	if cd.UID == "" || slices.ContainsFunc(refs, func(r metav1.OwnerReference) bool { return r.UID == cd.UID }) {
		return refs
	}
	for _, r := range refs {
		if r.Controller != nil && *r.Controller {
			// An object has one controller; a Flagger-made one keeps Flagger's.
			return refs
		}
	}
	return append(refs, ownerReference(cd))
}

// checkOwner refuses to take over an object another Canary made.
func checkOwner(cd *v1alpha1.Canary, kind string, m metav1.Object) error {
	if got := m.GetAnnotations()[AnnotationOwner]; got != "" && got != owner(cd) {
		return fmt.Errorf("%s %s/%s belongs to %s, not to %s", kind, m.GetNamespace(), m.GetName(), got, owner(cd))
	}
	return nil
}
