package canary

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// stepCanary adds stepWeight (or moves to the next of stepWeights) up to maxWeight,
// mirroring first when asked to, then promotes.
func (d *decider) stepCanary(v verdict) {
	if d.st.CanaryWeight >= d.cd.GetMaxWeight() {
		if d.promotionApproved(v) {
			d.promote()
		}
		return
	}
	if gate := v.closed[v1alpha1.WebhookConfirmTrafficIncrease]; gate != "" && !d.st.Mirrored {
		d.st.Message = "waiting for approval of the traffic increase (" + gate + ")"
		d.warn("Halt", fmt.Sprintf("Halt %s advancement waiting for traffic increase approval %s", d.ref(), gate))
		d.after(d.interval())
		return
	}
	if d.an.Mirror && d.st.CanaryWeight == 0 && !d.st.Mirrored {
		mw := d.cd.GetMirrorWeight()
		d.st.Mirrored = true
		d.weights(100, 0, true)
		d.st.Message = fmt.Sprintf("mirroring %d%% of the traffic to the canary", mw)
		d.info("Advance", fmt.Sprintf("Advance %s mirroring %d%% of the traffic to the canary", d.ref(), mw))
		d.after(d.interval())
		return
	}
	w := d.nextWeight()
	d.st.Mirrored = false
	d.setWeight(w)
	d.weights(100-w, w, false)
	d.st.Message = fmt.Sprintf("canary weight %d", w)
	d.info("Advance", fmt.Sprintf("Advance %s canary weight %d", d.ref(), w))
	d.after(d.interval())
}

// nextWeight is the canary weight after the current one: the next of stepWeights, or
// stepWeight more, never above the maximum.
func (d *decider) nextWeight() int {
	w, maxWeight := d.st.CanaryWeight, d.cd.GetMaxWeight()
	if len(d.an.StepWeights) > 0 {
		for _, s := range d.an.StepWeights {
			if s > w {
				return min(s, maxWeight)
			}
		}
		return maxWeight
	}
	return min(w+d.an.StepWeight, maxWeight)
}

// stepBlueGreen counts iterations with the traffic on the primary (mirrored to the
// canary with mirror), then switches all traffic to the canary for one more round, as
// Flagger does, then promotes.
func (d *decider) stepBlueGreen(v verdict) {
	n := d.an.Iterations
	switch it := d.st.Iterations; {
	case it < n:
		if d.an.Mirror && !d.st.Mirrored {
			d.st.Mirrored = true
			d.weights(100, 0, true)
		}
		d.advanceIteration()
	case it == n:
		if !d.promotionApproved(v) {
			return
		}
		d.st.Mirrored = false
		d.setWeight(100)
		d.weights(0, 100, false)
		d.st.Iterations++
		d.st.Message = "all traffic on the canary for a last round"
		d.info("Advance", "Routing all traffic to canary "+d.ref())
		d.after(d.interval())
	default:
		d.promote()
	}
}

// stepAB routes the requests that match spec.analysis.match to the canary and counts
// iterations, then promotes.
func (d *decider) stepAB(v verdict) {
	if d.st.Iterations < d.an.Iterations {
		// Set at every iteration: it is idempotent, and a restart may have lost it.
		d.add(SetMatch{Match: d.an.Match})
		d.advanceIteration()
		return
	}
	if d.promotionApproved(v) {
		d.promote()
	}
}

func (d *decider) advanceIteration() {
	d.st.Iterations++
	it, n := d.st.Iterations, d.an.Iterations
	d.st.Message = fmt.Sprintf("iteration %d of %d", it, n)
	d.info("Advance", fmt.Sprintf("Advance %s canary iteration %d/%d", d.ref(), it, n))
	d.after(d.interval())
}

// promotionApproved reports whether every confirm-promotion webhook approved; if not,
// the release waits in WaitingPromotion, its checks still running every interval.
func (d *decider) promotionApproved(v verdict) bool {
	gate := v.closed[v1alpha1.WebhookConfirmPromotion]
	if gate == "" {
		if d.hasHooks(v1alpha1.WebhookConfirmPromotion) {
			d.info("Approved", "Confirm-promotion check passed for "+d.ref())
		}
		return true
	}
	if d.st.Phase != v1alpha1.CanaryPhaseWaitingPromotion {
		d.setPhase(v1alpha1.CanaryPhaseWaitingPromotion)
		d.warn("Halt", fmt.Sprintf("Halt %s advancement waiting for promotion approval %s", d.ref(), gate))
		d.alert(v1alpha1.AlertSeverityWarn, "Canary promotion is waiting for approval.")
	}
	d.st.Message = "waiting for promotion approval (" + gate + ")"
	d.after(d.interval())
	return false
}

// promote copies the analysed revision into the primary, once per revision: the status
// that records it (lastPromotedSpec) is persisted before the action runs, so a replay
// never asks twice.
func (d *decider) promote() {
	rev := d.st.LastAppliedSpec
	d.st.ChecksRequestedTime, d.st.StalledSince = nil, nil
	d.st.Paused = false
	d.setPhase(v1alpha1.CanaryPhasePromoting)
	d.st.Message = "promoting revision " + short(rev)
	if d.st.LastPromotedSpec != rev {
		d.st.LastPromotedSpec = rev
		d.add(PromotePrimary{Revision: rev})
		name := d.cd.Spec.TargetRef.Name
		d.info("Promote", fmt.Sprintf("Copying %s.%s template spec to %s-primary.%s",
			name, d.cd.Namespace, name, d.cd.Namespace))
	}
	d.after(d.readyPoll())
}

// promoting waits for the promoted primary, then moves the traffic back to it: all at
// once, or stepWeightPromotion per interval.
func (d *decider) promoting() {
	rev := d.st.LastPromotedSpec
	if p := d.obs.PrimaryRevision; p != "" && p != rev {
		// The promotion did not take (a restart lost it, or it failed): ask again.
		if d.waitForPrimary(fmt.Sprintf("primary runs revision %s, not %s", short(p), short(rev))) {
			d.add(PromotePrimary{Revision: rev})
		}
		return
	}
	if !d.obs.PrimaryReady.Ready {
		d.waitForPrimary(notReady("primary", d.obs.PrimaryReady))
		return
	}
	d.st.StalledSince = nil
	if step := d.cd.GetStepWeightPromotion(); step < 100 && d.st.CanaryWeight > 0 {
		if w := d.untilDue(); w > 0 {
			d.after(w)
			return
		}
		if next := d.st.CanaryWeight - step; next > 0 {
			d.setWeight(next)
			d.weights(100-next, next, false)
			d.stepTaken()
			d.st.Message = fmt.Sprintf("promoting: primary weight %d", 100-next)
			d.info("Advance", fmt.Sprintf("Advance %s primary weight %d", d.ref(), 100-next))
			d.after(d.interval())
			return
		}
	}
	d.routeToPrimary()
	d.setPhase(v1alpha1.CanaryPhaseFinalising)
	d.stepTaken()
	d.st.Message = "all traffic on the promoted primary; scaling down the canary"
	d.info("Promote", "Routing all traffic to primary "+d.ref())
	d.after(d.interval())
}

// waitForPrimary waits for the promoted primary and reports true; past the progress
// deadline the release fails instead, and it reports false.
func (d *decider) waitForPrimary(why string) bool {
	if d.stall() {
		d.rollback("progress deadline exceeded: " + why)
		return false
	}
	d.st.Message = "waiting for the promoted primary: " + why
	d.after(d.readyPoll())
	return true
}

// finalising scales the canary to zero an interval after the traffic left it.
func (d *decider) finalising() {
	if w := d.untilDue(); w > 0 {
		d.after(w)
		return
	}
	d.routeToPrimary() // asked again in case a restart lost it: never scale down a canary with traffic
	d.add(ScaleCanary{ToZero: true})
	d.setPhase(v1alpha1.CanaryPhaseSucceeded)
	d.st.Iterations = 0
	d.st.LastStepTime = nil
	d.st.CanaryReadySince = nil
	d.st.Message = "revision " + short(d.st.LastPromotedSpec) + " promoted"
	d.runHooks(v1alpha1.WebhookPostRollout, v1alpha1.CanaryPhaseSucceeded)
	d.info("Succeeded", fmt.Sprintf("Promotion completed! Scaling down %s.%s",
		d.cd.Spec.TargetRef.Name, d.cd.Namespace))
	d.alert(v1alpha1.AlertSeverityInfo, "Canary analysis completed successfully, promotion finished.")
	d.after(d.interval())
}

// rollback routes all traffic to the primary, scales the canary to zero and marks the
// release Failed, saying why.
func (d *decider) rollback(why string) {
	d.routeToPrimary()
	d.add(ScaleCanary{ToZero: true})
	d.st.Iterations = 0
	d.st.PreRolloutPassed = false
	d.st.Paused = false
	d.st.LastStepTime, d.st.ChecksRequestedTime, d.st.StalledSince = nil, nil, nil
	d.st.CanaryReadySince = nil
	d.setPhase(v1alpha1.CanaryPhaseFailed)
	d.st.Message = why
	d.runHooks(v1alpha1.WebhookPostRollout, v1alpha1.CanaryPhaseFailed)
	d.warn("RolledBack", fmt.Sprintf("Canary failed! Scaling down %s.%s: %s",
		d.cd.Spec.TargetRef.Name, d.cd.Namespace, why))
	d.alert(v1alpha1.AlertSeverityError, "Canary failed, rolled back: "+why)
	d.after(d.interval())
}

// routeToPrimary gives all traffic to the primary: no weight, no mirror, no match.
func (d *decider) routeToPrimary() {
	d.setWeight(0)
	d.st.Mirrored = false
	d.weights(100, 0, false)
	if d.an.Strategy() == v1alpha1.StrategyABTesting {
		d.add(SetMatch{})
	}
}

// weights asks for the apex route's weights, with mirroring, and with the session
// affinity cookies the canary's weight calls for.
func (d *decider) weights(primary, canary int, mirror bool) {
	a := SetWeights{Primary: primary, Canary: canary, Affinity: d.affinity(canary)}
	if mirror {
		a.Mirror, a.MirrorWeight = true, d.cd.GetMirrorWeight()
	}
	d.add(a)
}

// affinity keeps the session-affinity cookies in the status as Flagger does: while the
// canary has weight, a canary cookie (and a primary one with primaryCookieName) is made
// once per release; when the canary's weight drops to zero the canary cookie becomes the
// previous one, to be expired, and the current ones are forgotten. nil without
// sessionAffinity.
func (d *decider) affinity(canary int) *Affinity {
	sa := d.an.SessionAffinity
	if sa == nil || d.an.Strategy() != v1alpha1.StrategyCanary {
		return nil
	}
	if canary > 0 {
		if d.st.SessionAffinityCookie == "" {
			d.st.SessionAffinityCookie = sa.CookieName + "=" + d.token("canary")
		}
		if sa.PrimaryCookieName != "" && d.st.PrimarySessionAffinityCookie == "" {
			d.st.PrimarySessionAffinityCookie = sa.PrimaryCookieName + "=" + d.token("primary")
		}
	} else {
		if d.st.SessionAffinityCookie != "" {
			d.st.PreviousSessionAffinityCookie = d.st.SessionAffinityCookie
		}
		d.st.SessionAffinityCookie, d.st.PrimarySessionAffinityCookie = "", ""
	}
	return &Affinity{Canary: d.st.SessionAffinityCookie, Primary: d.st.PrimarySessionAffinityCookie,
		Previous: d.st.PreviousSessionAffinityCookie}
}

// token is a cookie value: a digest of the observations' random token and what the
// cookie is for, so that the canary and primary cookies of one decision differ.
func (d *decider) token(kind string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{d.obs.Token, kind, d.cd.Namespace, d.cd.Name,
		d.st.LastAppliedSpec, d.obs.Now.UTC().Format(time.RFC3339Nano)}, "\x00")))
	return hex.EncodeToString(h[:10])
}
