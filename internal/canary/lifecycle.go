package canary

import (
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// initialize creates the primary from the target and waits for it to be ready. The
// first revision is initialised, never analysed.
func (d *decider) initialize() {
	if d.st.Phase == "" {
		d.st.LastAppliedSpec = d.obs.TargetRevision
		d.setPhase(v1alpha1.CanaryPhaseInitializing)
		d.st.Message = "creating the primary"
		d.add(InitializePrimary{Revision: d.obs.TargetRevision})
		d.info("Initializing", fmt.Sprintf("New %s detected, starting initialization of %s",
			d.cd.Spec.TargetRef.Kind, d.ref()))
		d.after(d.readyPoll())
		return
	}
	if !d.obs.PrimaryReady.Ready {
		// Asked again in case a restart lost it; creating a primary that exists is a no-op.
		d.add(InitializePrimary{Revision: d.st.LastAppliedSpec})
		msg := "waiting for the primary: " + notReady("primary", d.obs.PrimaryReady)
		if d.stall() {
			msg = "progress deadline exceeded: " + notReady("primary", d.obs.PrimaryReady)
			if d.st.Message != msg {
				d.warn("ProgressDeadline", "Initialization of "+d.ref()+" stuck: "+msg)
				d.alert(v1alpha1.AlertSeverityError, msg)
			}
		}
		d.st.Message = msg
		d.after(d.readyPoll())
		return
	}
	d.initialized()
}

func (d *decider) initialized() {
	rev := d.st.LastAppliedSpec
	if d.obs.PrimaryRevision != "" {
		rev = d.obs.PrimaryRevision
	}
	d.st.LastAppliedSpec, d.st.LastPromotedSpec = rev, rev
	d.st.StalledSince = nil
	d.setPhase(v1alpha1.CanaryPhaseInitialized)
	d.setWeight(0)
	d.st.Message = "the primary runs revision " + short(rev)
	// Traffic moves to the primary before the target is scaled down.
	d.weights(100, 0, false)
	d.add(ScaleCanary{ToZero: true})
	d.info("Initialized", "Initialization done! "+d.ref())
	d.alert(v1alpha1.AlertSeverityInfo, fmt.Sprintf("New %s detected, initialization completed.",
		d.cd.Spec.TargetRef.Kind))
	d.after(d.interval())
}

// idle watches for a new revision (Initialized, Succeeded, Failed).
func (d *decider) idle() {
	rev := d.obs.TargetRevision
	switch rev {
	case d.st.LastAppliedSpec:
		d.after(d.interval())
	case d.st.LastPromotedSpec:
		d.st.LastAppliedSpec = rev
		d.st.Message = fmt.Sprintf("target returned to the promoted revision %s; nothing to analyse", short(rev))
		d.info("Reverted", fmt.Sprintf("%s returned to the promoted revision %s", d.ref(), short(rev)))
		d.after(d.interval())
	default:
		d.startRelease(rev)
	}
}

// startRelease begins the release of a new revision: straight to promotion when the
// analysis is skipped, through the confirm-rollout gate when there is one.
func (d *decider) startRelease(rev string) {
	if !d.cd.SkipAnalysis() && d.an.Strategy() == "" {
		msg := "spec.analysis selects no strategy: set stepWeight, stepWeights or iterations"
		if d.st.Message != msg {
			d.warn("InvalidAnalysis", msg)
		}
		d.st.Message = msg
		d.after(d.interval())
		return
	}
	d.st.LastAppliedSpec = rev
	d.resetAnalysis()
	switch {
	case d.cd.SkipAnalysis():
		d.info("NewRevision", fmt.Sprintf("New revision detected! Promoting %s without analysis", d.ref()))
		d.promote()
	case d.hasHooks(v1alpha1.WebhookConfirmRollout):
		d.setPhase(v1alpha1.CanaryPhaseWaiting)
		d.st.Message = "new revision " + short(rev) + ": asking for rollout approval"
		d.info("NewRevision", "New revision detected! Asking for approval of "+d.ref())
		d.askRound()
	default:
		d.beginProgressing()
	}
}

func (d *decider) beginProgressing() {
	d.setPhase(v1alpha1.CanaryPhaseProgressing)
	d.st.LastStepTime = nil // the first round runs as soon as the canary is ready
	d.st.Message = "new revision " + short(d.st.LastAppliedSpec) + ": waiting for the canary"
	d.add(ScaleCanary{})
	d.info("NewRevision", fmt.Sprintf("New revision detected! Scaling up %s.%s",
		d.cd.Spec.TargetRef.Name, d.cd.Namespace))
	d.alert(v1alpha1.AlertSeverityInfo, "New revision detected, progressing canary analysis.")
	d.after(d.readyPoll())
}

// resetAnalysis starts the analysis of a revision from nothing.
func (d *decider) resetAnalysis() {
	d.setWeight(0)
	d.st.Iterations = 0
	d.st.FailedChecks = 0
	d.st.PreRolloutPassed = false
	d.st.Mirrored = false
	d.st.LastStepTime = nil
	d.st.ChecksRequestedTime = nil
	d.st.StalledSince = nil
	d.st.CanaryReadySince = nil
	// The last results shown belong to the revision under analysis, not the one before.
	d.st.LastMetrics, d.st.LastWebhooks = nil, nil
}

// waiting holds a new revision until every confirm-rollout webhook approves it.
func (d *decider) waiting() {
	if rev := d.obs.TargetRevision; rev != d.st.LastAppliedSpec {
		if rev == d.st.LastPromotedSpec {
			d.st.LastAppliedSpec = rev
			d.rollback(fmt.Sprintf("target returned to the promoted revision %s", short(rev)))
			return
		}
		d.st.LastAppliedSpec = rev
		d.resetAnalysis()
		d.info("NewRevision", "New revision detected! Asking again for approval of "+d.ref())
	}
	d.round()
}

func (d *decider) judgeWaiting(v verdict) {
	gate := v.closed[v1alpha1.WebhookConfirmRollout]
	switch {
	case v.rollbackBy != "":
		d.rollbackByHook(v.rollbackBy)
	case gate != "":
		msg := "waiting for rollout approval (" + gate + ")"
		if d.st.Message != msg {
			d.warn("Halt", fmt.Sprintf("Halt %s advancement waiting for approval %s", d.ref(), gate))
			d.alert(v1alpha1.AlertSeverityWarn, "Canary is waiting for approval.")
		}
		d.st.Message = msg
		d.after(d.interval())
	default:
		d.info("Approved", "Confirm-rollout check passed for "+d.ref())
		d.beginProgressing()
	}
}

// deletion reverts what the Canary changed when it is deleted with revertOnDeletion:
// the target gets its replicas back, then its traffic, before the Canary goes.
func (d *decider) deletion() {
	switch {
	case d.st.Phase == v1alpha1.CanaryPhaseTerminated:
		return
	case !d.cd.Spec.RevertOnDeletion:
		d.setPhase(v1alpha1.CanaryPhaseTerminated)
		d.st.Message = "deleted; the primary is left in place (revertOnDeletion is off)"
		d.info("Terminated", "Deleted "+d.ref()+" without reverting the target")
	case d.st.Phase != v1alpha1.CanaryPhaseTerminating:
		d.st.Paused, d.st.ChecksRequestedTime = false, nil
		d.setPhase(v1alpha1.CanaryPhaseTerminating)
		d.st.Message = "reverting the target"
		d.add(RevertTarget{})
		d.info("Terminating", "Terminating canary "+d.ref())
		d.after(d.readyPoll())
	case !d.obs.TargetExists:
		d.setPhase(v1alpha1.CanaryPhaseTerminated)
		d.st.Message = "target not found; nothing to revert"
		d.info("Terminated", "Finalization complete for "+d.ref())
	case !d.obs.CanaryReady.Ready:
		d.add(RevertTarget{}) // asked again in case a restart lost it
		d.st.Message = "waiting for the reverted target: " + notReady("target", d.obs.CanaryReady)
		d.after(d.readyPoll())
	default:
		d.routeToTarget()
		d.add(FinalizeTarget{})
		d.setPhase(v1alpha1.CanaryPhaseTerminated)
		d.st.Message = "target reverted; all traffic routed to it"
		d.info("Terminated", "Finalization complete for "+d.ref())
	}
}

// routeToTarget gives all traffic to the target, which outlives the Canary.
func (d *decider) routeToTarget() {
	d.setWeight(100)
	d.st.Mirrored = false
	d.add(SetWeights{Canary: 100})
	if d.an.Strategy() == v1alpha1.StrategyABTesting {
		d.add(SetMatch{})
	}
}

// notReady says why the primary, the canary or the target is not ready.
func notReady(who string, r ReadyState) string {
	if r.Message == "" {
		return who + " not ready"
	}
	return who + " not ready: " + r.Message
}
