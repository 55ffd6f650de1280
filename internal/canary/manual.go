package canary

import (
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// manual carries out a command given by hand and reports whether it made this
// decision; a command that does not apply is ignored with a warning event.
func (d *decider) manual() (done bool) {
	cmd := d.obs.Manual
	switch {
	case cmd == ManualNone:
		return false
	case d.cd.Spec.Suspend:
		d.ignored(cmd, "the canary is suspended (spec.suspend)")
		return false
	}
	switch cmd {
	case ManualPause:
		return d.pause()
	case ManualResume:
		d.resume()
		return false
	case ManualAbort:
		return d.abort()
	case ManualPromote:
		return d.promoteByHand()
	case ManualRetry:
		return d.retry()
	}
	d.ignored(cmd, "unknown command")
	return false
}

func (d *decider) ignored(cmd ManualCommand, why string) {
	d.warn("Ignored", fmt.Sprintf("%s of %s ignored: %s", cmd, d.ref(), why))
}

// pause holds the release where it is, weights unchanged.
func (d *decider) pause() bool {
	if !d.st.Paused {
		d.st.Paused = true
		d.info("Paused", "Paused by user: "+d.ref())
	}
	d.hold(msgPaused)
	return true
}

// resume lets a paused release go on, within the same decision. The progress deadline
// counts afresh.
func (d *decider) resume() {
	if !d.st.Paused {
		d.ignored(ManualResume, "not paused")
		return
	}
	d.st.Paused = false
	d.st.StalledSince = nil
	d.st.Message = ""
	d.info("Resumed", "Resumed by user: "+d.ref())
}

// inAnalysis reports whether a release is being analysed (and may still be rolled back).
func inAnalysis(p v1alpha1.CanaryPhase) bool {
	return p == v1alpha1.CanaryPhaseWaiting || p == v1alpha1.CanaryPhaseProgressing ||
		p == v1alpha1.CanaryPhaseWaitingPromotion
}

func (d *decider) abort() bool {
	if !inAnalysis(d.st.Phase) {
		d.ignored(ManualAbort, fmt.Sprintf("no analysis under way (phase %s)", d.st.Phase))
		return false
	}
	d.warn("Aborted", "Aborted by user: "+d.ref())
	d.rollback("aborted by user")
	return true
}

// promoteByHand skips the rest of the analysis and promotes what the target runs now;
// a failed revision may be promoted this way too.
func (d *decider) promoteByHand() bool {
	rev := d.obs.TargetRevision
	switch {
	case !inAnalysis(d.st.Phase) && d.st.Phase != v1alpha1.CanaryPhaseFailed:
		d.ignored(ManualPromote, fmt.Sprintf("nothing to promote (phase %s)", d.st.Phase))
		return false
	case !d.obs.TargetExists:
		d.ignored(ManualPromote, "target not found")
		return false
	case rev == d.st.LastPromotedSpec:
		d.ignored(ManualPromote, "revision "+short(rev)+" is already promoted")
		return false
	}
	d.st.LastAppliedSpec = rev
	d.info("Promote", "Promotion asked by user: skipping the rest of the analysis of "+d.ref())
	d.promote()
	return true
}

// retry analyses a failed revision again from the start.
func (d *decider) retry() bool {
	rev := d.obs.TargetRevision
	switch {
	case d.st.Phase != v1alpha1.CanaryPhaseFailed:
		d.ignored(ManualRetry, fmt.Sprintf("only a failed release can be retried (phase %s)", d.st.Phase))
		return false
	case !d.obs.TargetExists:
		d.ignored(ManualRetry, "target not found")
		return false
	case rev == d.st.LastPromotedSpec:
		d.ignored(ManualRetry, "the target runs the promoted revision "+short(rev))
		return false
	}
	d.st.Paused = false
	d.info("Retry", "Retrying the analysis of "+d.ref()+" revision "+short(rev))
	d.startRelease(rev)
	return true
}
