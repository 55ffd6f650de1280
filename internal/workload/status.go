package workload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Condition types of a Workload besides v1alpha1.ConditionReady, named as a
// Deployment's.
const (
	// ConditionAvailable is true when at least spec.replicas instances are ready.
	ConditionAvailable = "Available"
	// ConditionProgressing is true while the current revision is being rolled out or
	// runs; false when its instances cannot start or keep crashing.
	ConditionProgressing = "Progressing"
)

// Condition reasons besides the instance failure reasons (ReasonCommandNotFound, ...).
const (
	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonRollingUpdate              = "RollingUpdate"
	ReasonRevisionAvailable          = "RevisionAvailable"
	ReasonInvalidSpec                = "InvalidSpec"
	ReasonInstancesReady             = "InstancesReady"
	ReasonInstancesNotReady          = "InstancesNotReady"
)

// maxStatusAttempts bounds the compare-and-swap retries of one status write.
const maxStatusAttempts = 8

// writeStatus stores the status the instances show, if it differs from the stored one:
// read, compute, compare, and update with the read resourceVersion, again on conflict.
func (r *runner) writeStatus(ctx context.Context) {
	now := r.s.opts.Now()
	if equality.Semantic.DeepEqual(r.computeStatus(r.stored, now), r.stored) {
		return
	}
	key := keyOf(r.obj)
	for range maxStatusAttempts {
		obj, err := r.s.store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			r.s.log.Debug("read workload for status failed", "workload", key.String(), "err", err)
			return
		}
		w, ok := obj.(*v1alpha1.Workload)
		if !ok || w.UID != r.obj.UID {
			return // deleted and made again: its new runner writes its status
		}
		st := r.computeStatus(w.Status, now)
		if equality.Semantic.DeepEqual(st, w.Status) {
			r.stored = w.Status
			return
		}
		w.Status = st
		out, err := r.s.store.Update(ctx, w)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			r.s.log.Debug("write workload status failed", "workload", key.String(), "err", err)
			return
		}
		r.stored = out.(*v1alpha1.Workload).Status
		return
	}
	r.s.log.Warn("workload status kept conflicting; retrying later", "workload", key.String())
}

// computeStatus derives the status from the live instances. Conditions keep their
// lastTransitionTime from base while their status holds.
func (r *runner) computeStatus(base v1alpha1.WorkloadStatus, now time.Time) v1alpha1.WorkloadStatus {
	want := int(r.obj.GetReplicas())
	live := slices.Clone(r.instances)
	slices.SortStableFunc(live, func(a, b *instance) int { return a.index - b.index })
	st := v1alpha1.WorkloadStatus{ObservedGeneration: r.obj.Generation, Revision: base.Revision}
	var current, currentReady, old int
	var failure, failureMsg string
	for _, in := range live {
		s := in.state()
		st.Instances = append(st.Instances, v1alpha1.WorkloadInstance{
			Index: int32(in.index), Port: int32(in.port), PID: int32(s.PID),
			Ready: s.Ready, Restarts: s.Restarts, Revision: in.revision,
		})
		if s.PID != 0 {
			st.Replicas++
		}
		if s.Ready {
			st.ReadyReplicas++
		}
		if in.revision != r.rev {
			old++
			continue
		}
		current++
		if s.Ready {
			currentReady++
		}
		if s.Reason != "" && failure == "" {
			failure, failureMsg = s.Reason, s.Message
		}
	}
	if old == 0 && current == want && r.invalid == "" {
		st.Revision = r.rev
	}
	conds := slices.Clone(base.Conditions)
	set := func(typ string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&conds, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: msg,
			ObservedGeneration: r.obj.Generation,
			LastTransitionTime: metav1.NewTime(now.Truncate(time.Second)),
		})
	}
	ready := int(st.ReadyReplicas)
	if ready >= want {
		set(ConditionAvailable, true, ReasonMinimumReplicasAvailable, fmt.Sprintf("%d of %d instances ready", ready, want))
	} else {
		set(ConditionAvailable, false, ReasonMinimumReplicasUnavailable, fmt.Sprintf("%d of %d instances ready", ready, want))
	}
	switch {
	case r.invalid != "":
		set(ConditionProgressing, false, ReasonInvalidSpec, r.invalid)
	case failure != "":
		set(ConditionProgressing, false, failure, failureMsg)
	case old > 0 || current < want:
		set(ConditionProgressing, true, ReasonRollingUpdate, fmt.Sprintf("%d of %d instances run revision %s", current, want, r.rev))
	default:
		set(ConditionProgressing, true, ReasonRevisionAvailable, fmt.Sprintf("revision %s runs on %d instances", r.rev, want))
	}
	switch {
	case r.invalid != "":
		set(v1alpha1.ConditionReady, false, ReasonInvalidSpec, r.invalid)
	case currentReady >= want && old == 0:
		set(v1alpha1.ConditionReady, true, ReasonInstancesReady, fmt.Sprintf("%d of %d instances of revision %s ready", currentReady, want, r.rev))
	case failure != "":
		set(v1alpha1.ConditionReady, false, failure, failureMsg)
	default:
		set(v1alpha1.ConditionReady, false, ReasonInstancesNotReady, fmt.Sprintf("%d of %d instances of revision %s ready", currentReady, want, r.rev))
	}
	st.Conditions = conds
	return st
}
