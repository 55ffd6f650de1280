package deploytarget

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// reasonDeadlineExceeded is the Progressing condition's reason once a Deployment has
// made no progress for its spec.progressDeadlineSeconds.
const reasonDeadlineExceeded = "ProgressDeadlineExceeded"

// deploymentReady judges a Deployment's rollout as Flagger does: the controller has seen
// the current generation, every replica runs the current template, no old replica is
// left, and at least threshold percent of them are available. A Deployment past its
// progress deadline is not ready, and the message says so.
func deploymentReady(d *appsv1.Deployment, threshold int) (bool, string) {
	st := &d.Status
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if want == 0 {
		return false, fmt.Sprintf("deployment %s is scaled to zero", d.Name)
	}
	if d.Generation > st.ObservedGeneration {
		return false, fmt.Sprintf("waiting for deployment %s to be observed (generation %d, observed %d)",
			d.Name, d.Generation, st.ObservedGeneration)
	}
	var stuck string
	if c := deadlineCondition(d); c != nil {
		stuck = fmt.Sprintf(": %s: %s", c.Reason, c.Message)
	}
	switch {
	case st.UpdatedReplicas < want:
		return false, fmt.Sprintf("waiting for deployment %s to roll out: %d of %d replicas updated%s",
			d.Name, st.UpdatedReplicas, want, stuck)
	case st.Replicas > st.UpdatedReplicas:
		return false, fmt.Sprintf("waiting for deployment %s to roll out: %d old replicas pending termination%s",
			d.Name, st.Replicas-st.UpdatedReplicas, stuck)
	case int(st.AvailableReplicas)*100 < threshold*int(st.UpdatedReplicas):
		return false, fmt.Sprintf("waiting for deployment %s to roll out: %d of %d updated replicas available, %d%% needed%s",
			d.Name, st.AvailableReplicas, st.UpdatedReplicas, threshold, stuck)
	}
	return true, ""
}

// deadlineCondition is the Deployment's Progressing condition when it says the rollout
// exceeded its progressDeadlineSeconds, else nil.
func deadlineCondition(d *appsv1.Deployment) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		c := &d.Status.Conditions[i]
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == reasonDeadlineExceeded {
			return c
		}
	}
	return nil
}

// deadlineExceeded reports whether Kubernetes gave up rolling out d's template.
func deadlineExceeded(d *appsv1.Deployment) bool { return deadlineCondition(d) != nil }
