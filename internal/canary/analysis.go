package canary

import (
	"fmt"
	"strings"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// progressing runs the analysis (Progressing, WaitingPromotion).
func (d *decider) progressing() {
	if d.newRevisionDuringAnalysis() {
		return
	}
	if d.cd.SkipAnalysis() {
		d.info("Promote", "Analysis skipped; promoting "+d.ref())
		d.promote()
		return
	}
	d.round()
}

// newRevisionDuringAnalysis restarts the analysis from weight 0 for a new revision, or
// rolls back when the target returned to the promoted revision.
func (d *decider) newRevisionDuringAnalysis() bool {
	rev := d.obs.TargetRevision
	if rev == d.st.LastAppliedSpec {
		return false
	}
	d.st.LastAppliedSpec = rev
	if rev == d.st.LastPromotedSpec {
		d.rollback(fmt.Sprintf("target returned to the promoted revision %s", short(rev)))
		return true
	}
	d.routeToPrimary()
	d.resetAnalysis()
	d.setPhase(v1alpha1.CanaryPhaseProgressing)
	d.st.Message = "new revision " + short(rev) + ": analysis restarted"
	d.info("NewRevision", fmt.Sprintf("New revision detected! Restarting analysis for %s.%s",
		d.cd.Spec.TargetRef.Name, d.cd.Namespace))
	d.after(d.readyPoll())
	return true
}

// round is the paced round of checks of Waiting, Progressing and WaitingPromotion: when
// due, ask for the checks; on the next call, judge their results.
func (d *decider) round() {
	if d.st.ChecksRequestedTime != nil {
		d.judgeOrAskAgain()
		return
	}
	if w := d.untilDue(); w > 0 {
		d.after(w)
		return
	}
	if d.st.Phase != v1alpha1.CanaryPhaseWaiting && !d.readyForRound() {
		return
	}
	d.askRound()
}

// readyForRound reports whether the primary and the canary are ready for a round; if
// not, the release waits, and rolls back once the progress deadline has passed.
func (d *decider) readyForRound() bool {
	var why string
	switch {
	case !d.obs.PrimaryReady.Ready:
		why = notReady("primary", d.obs.PrimaryReady)
	case !d.obs.CanaryReady.Ready && d.obs.CanaryReady.Stuck:
		d.rollback(notReady("canary", d.obs.CanaryReady))
		return false
	case !d.obs.CanaryReady.Ready:
		why = notReady("canary", d.obs.CanaryReady)
		d.add(ScaleCanary{}) // asked again in case a restart lost it; a no-op once scaled
	default:
		if d.st.CanaryReadySince == nil {
			t := d.now
			d.st.CanaryReadySince = &t
		}
		return true
	}
	if d.stall() {
		d.rollback("progress deadline exceeded: " + why)
		return false
	}
	d.st.Message = "waiting: " + why
	d.after(d.readyPoll())
	return false
}

// plan is what a round of checks needs: webhook types in the order they are called,
// and whether metrics are checked.
type plan struct {
	hooks   []v1alpha1.WebhookType
	metrics bool
}

func (p plan) empty() bool { return len(p.hooks) == 0 && !p.metrics }

// planRound says what the round of the current phase needs: rollback hooks always; the
// confirm-rollout gate while Waiting; before any traffic reaches the canary, the
// pre-rollout hooks until they pass; after, rollout hooks and metrics; and the gate of
// the strategy's next step.
func (d *decider) planRound() plan {
	var p plan
	add := func(t v1alpha1.WebhookType) {
		if t != "" && d.hasHooks(t) {
			p.hooks = append(p.hooks, t)
		}
	}
	add(v1alpha1.WebhookRollback)
	switch {
	case d.st.Phase == v1alpha1.CanaryPhaseWaiting:
		add(v1alpha1.WebhookConfirmRollout)
		return p
	case !d.trafficStarted():
		// Nothing to measure yet (as Flagger: weight 0, no iteration, no mirror).
		if !d.st.PreRolloutPassed {
			add(v1alpha1.WebhookPreRollout)
		}
	default:
		add(v1alpha1.WebhookRollout)
		p.metrics = len(d.an.Metrics) > 0
	}
	add(d.nextGate())
	return p
}

// trafficStarted reports whether the analysis has sent the canary traffic yet.
func (d *decider) trafficStarted() bool {
	return d.st.CanaryWeight > 0 || d.st.Mirrored || d.st.Iterations > 0
}

// nextGate is the webhook type that gates the strategy's next step, if any.
func (d *decider) nextGate() v1alpha1.WebhookType {
	switch d.an.Strategy() {
	case v1alpha1.StrategyCanary:
		if d.st.CanaryWeight >= d.cd.GetMaxWeight() {
			return v1alpha1.WebhookConfirmPromotion
		}
		if !d.st.Mirrored {
			return v1alpha1.WebhookConfirmTrafficIncrease
		}
	case v1alpha1.StrategyBlueGreen:
		if d.st.Iterations == d.an.Iterations {
			return v1alpha1.WebhookConfirmPromotion
		}
	case v1alpha1.StrategyABTesting:
		if d.st.Iterations >= d.an.Iterations {
			return v1alpha1.WebhookConfirmPromotion
		}
	}
	return ""
}

// askRound asks for the round's checks, or judges at once when it needs none.
func (d *decider) askRound() {
	p := d.planRound()
	if p.empty() {
		d.judge(p)
		return
	}
	t := d.now
	d.st.ChecksRequestedTime = &t
	if !d.trafficStarted() && d.st.Phase != v1alpha1.CanaryPhaseWaiting {
		d.st.Message = "starting the analysis of revision " + short(d.st.LastAppliedSpec)
	}
	d.ask(p)
}

func (d *decider) ask(p plan) {
	for _, t := range p.hooks {
		d.add(RunWebhooks{Type: t, Phase: d.st.Phase})
	}
	if p.metrics {
		d.add(CheckMetrics{})
	}
	d.after(0)
}

// judgeOrAskAgain judges the results of the checks asked for. When none came back (a
// restart lost them) it asks again, until the progress deadline; after that, missing
// results count as failures.
func (d *decider) judgeOrAskAgain() {
	p := d.planRound()
	lost := !p.empty() && !d.hasResults(p)
	if lost && d.obs.Now.Sub(d.st.ChecksRequestedTime.Time) <= d.cd.GetProgressDeadline() {
		d.ask(p)
		return
	}
	d.judge(p)
}

func (d *decider) judge(p plan) {
	v := d.collect(p)
	// Rounds are paced from when they started, so the time the checks took does not
	// stretch the interval.
	start := d.now
	if d.st.ChecksRequestedTime != nil {
		start = *d.st.ChecksRequestedTime
	}
	d.st.ChecksRequestedTime = nil
	d.st.LastStepTime = &start
	if d.st.Phase == v1alpha1.CanaryPhaseWaiting {
		d.judgeWaiting(v)
		return
	}
	d.judgeAnalysis(v)
}

func (d *decider) judgeAnalysis(v verdict) {
	switch {
	case v.rollbackBy != "":
		d.rollbackByHook(v.rollbackBy)
	case len(v.failures) > 0:
		d.failedCheck(v)
	case len(v.noData) > 0:
		d.waitForData(v)
	default:
		d.st.StalledSince = nil
		d.passed(v)
	}
}

func (d *decider) rollbackByHook(name string) {
	d.warn("Rollback", fmt.Sprintf("Rolling back %s manual webhook invoked", d.ref()))
	d.rollback(fmt.Sprintf("rollback webhook %s asked for a rollback", name))
}

// failedCheck counts a failed round and rolls back at the threshold.
func (d *decider) failedCheck(v verdict) {
	d.st.FailedChecks++
	n, threshold := d.st.FailedChecks, d.cd.GetAnalysisThreshold()
	why := strings.Join(v.failures, "; ")
	d.st.Message = fmt.Sprintf("failed check %d of %d: %s", n, threshold, why)
	d.warn("Halt", fmt.Sprintf("Halt %s advancement: %s", d.ref(), why))
	if v.alerting {
		d.alert(v1alpha1.AlertSeverityWarn, "Halt advancement: "+why)
	}
	if n >= threshold {
		d.warn("Rollback", fmt.Sprintf("Rolling back %s failed checks threshold reached %d", d.ref(), n))
		d.rollback(fmt.Sprintf("failed checks threshold reached %d: %s", n, why))
		return
	}
	d.after(d.interval())
}

// waitForData holds the analysis while metrics under noData: wait have no data; the
// progress deadline still applies.
func (d *decider) waitForData(v verdict) {
	why := "no data for " + strings.Join(v.noData, ", ")
	if d.stall() {
		d.rollback("progress deadline exceeded: " + why)
		return
	}
	d.st.Message = "waiting: " + why
	d.info("Wait", fmt.Sprintf("Halt %s advancement: %s", d.ref(), why))
	d.after(d.interval())
}

// passed moves the strategy one step after a round without failures.
func (d *decider) passed(v verdict) {
	if !d.st.PreRolloutPassed {
		d.st.PreRolloutPassed = true
		d.info("Starting", "Starting canary analysis for "+d.ref())
	}
	switch d.an.Strategy() {
	case v1alpha1.StrategyBlueGreen:
		d.stepBlueGreen(v)
	case v1alpha1.StrategyABTesting:
		d.stepAB(v)
	default:
		d.stepCanary(v)
	}
}
