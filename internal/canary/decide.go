package canary

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// maxReadyPoll bounds how long a decision waits before looking again at a primary or a
// canary that is not ready yet.
const maxReadyPoll = 5 * time.Second

// Decide is one step of the analysis: from the Canary (spec and last persisted status)
// and the observations, the new status and the actions that carry it out. It is pure and
// idempotent: replaying it with the status it returned never repeats a promotion.
func Decide(spec *v1alpha1.Canary, obs Observations) Decision {
	d := newDecider(spec, obs)
	d.run()
	return d.decision()
}

// decider holds one decision while it is being made.
type decider struct {
	cd  *v1alpha1.Canary         // a defaulted copy; cd.Status is the old status
	an  *v1alpha1.CanaryAnalysis // never nil
	obs Observations
	now metav1.Time
	st  v1alpha1.CanaryStatus // the new status

	acts    []Action
	requeue *time.Duration
}

func newDecider(spec *v1alpha1.Canary, obs Observations) *decider {
	cd := spec.DeepCopy()
	cd.Default()
	an := cd.GetAnalysis()
	if an == nil {
		an = &v1alpha1.CanaryAnalysis{}
	}
	d := &decider{cd: cd, an: an, obs: obs, now: metav1.NewTime(obs.Now)}
	cd.Status.DeepCopyInto(&d.st)
	d.st.ObservedGeneration = cd.Generation
	return d
}

func (d *decider) run() {
	d.recordResults()
	if d.obs.Deleted || d.st.Phase == v1alpha1.CanaryPhaseTerminating ||
		d.st.Phase == v1alpha1.CanaryPhaseTerminated {
		d.deletion()
		return
	}
	if d.manual() {
		return
	}
	switch {
	case d.cd.Spec.Suspend:
		d.hold(msgSuspended)
	case d.st.Paused:
		d.hold(msgPaused)
	case !d.obs.TargetExists:
		d.targetMissing()
	default:
		d.targetFound()
		d.forgetStaleMessage()
		d.byPhase()
	}
}

const (
	msgSuspended = "analysis suspended (spec.suspend)"
	msgPaused    = "paused by user"
)

// forgetStaleMessage drops a message about a hold that has ended, which an idle phase
// would otherwise keep showing.
func (d *decider) forgetStaleMessage() {
	if d.st.Message == msgSuspended || d.st.Message == msgPaused || d.st.Message == d.targetMissingMessage() {
		d.st.Message = ""
	}
}

func (d *decider) byPhase() {
	switch d.st.Phase {
	case "", v1alpha1.CanaryPhaseInitializing:
		d.initialize()
	case v1alpha1.CanaryPhaseInitialized, v1alpha1.CanaryPhaseSucceeded, v1alpha1.CanaryPhaseFailed:
		d.idle()
	case v1alpha1.CanaryPhaseWaiting:
		d.waiting()
	case v1alpha1.CanaryPhaseProgressing, v1alpha1.CanaryPhaseWaitingPromotion:
		d.progressing()
	case v1alpha1.CanaryPhasePromoting:
		d.promoting()
	case v1alpha1.CanaryPhaseFinalising:
		d.finalising()
	default:
		d.warn("UnknownPhase", fmt.Sprintf("unknown phase %q; starting over", d.st.Phase))
		d.st.Phase = ""
		d.initialize()
	}
}

func (d *decider) decision() Decision {
	acts := d.acts
	if d.requeue != nil {
		acts = append(acts, Requeue{After: *d.requeue})
	}
	return Decision{Status: d.st, Actions: acts}
}

// hold keeps everything where it is (suspend, pause): no round is left awaiting
// results, so a fresh one is asked for when the release goes on.
func (d *decider) hold(msg string) {
	d.st.Message = msg
	d.st.ChecksRequestedTime = nil
	d.after(d.interval())
}

func (d *decider) targetMissingMessage() string {
	return fmt.Sprintf("target %s %s not found", d.cd.Spec.TargetRef.Kind, d.cd.Spec.TargetRef.Name)
}

func (d *decider) targetMissing() {
	msg := d.targetMissingMessage()
	if d.st.Message != msg {
		d.warn("TargetNotFound", msg)
	}
	d.st.Message = msg
	d.setTargetCondition(metav1.ConditionFalse, "TargetNotFound", msg)
	d.after(d.readyPoll())
}

// targetFound marks the target as resolved once it exists (again).
func (d *decider) targetFound() {
	ref := d.cd.Spec.TargetRef
	d.setTargetCondition(metav1.ConditionTrue, "TargetFound", fmt.Sprintf("target %s %s found", ref.Kind, ref.Name))
}

// setTargetCondition keeps the ReferencesResolved condition, which says whether the
// Canary's targetRef names something that exists, as the mesh objects' conditions say
// it of their references.
func (d *decider) setTargetCondition(status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&d.st.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReferencesResolved, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: d.cd.Generation, LastTransitionTime: d.now,
	})
}

// Timing.

func (d *decider) interval() time.Duration { return d.cd.GetAnalysisInterval() }

func (d *decider) readyPoll() time.Duration { return min(d.interval(), maxReadyPoll) }

// after asks for the next decision within wait (the shortest ask wins).
func (d *decider) after(wait time.Duration) {
	wait = max(wait, 0)
	if d.requeue == nil || wait < *d.requeue {
		d.requeue = &wait
	}
}

// untilDue is how long until the next paced step; zero or less means it is due.
func (d *decider) untilDue() time.Duration {
	if d.st.LastStepTime == nil {
		return 0
	}
	return d.st.LastStepTime.Add(d.interval()).Sub(d.obs.Now)
}

func (d *decider) stepTaken() {
	t := d.now
	d.st.LastStepTime = &t
}

// stall records that the release is held without progress and reports whether it has
// been held longer than progressDeadlineSeconds.
func (d *decider) stall() (exceeded bool) {
	if d.st.StalledSince == nil {
		t := d.now
		d.st.StalledSince = &t
	}
	return d.obs.Now.Sub(d.st.StalledSince.Time) > d.cd.GetProgressDeadline()
}

// Status.

func (d *decider) add(acts ...Action) { d.acts = append(d.acts, acts...) }

func (d *decider) setPhase(p v1alpha1.CanaryPhase) {
	if d.st.Phase != p {
		d.st.Phase = p
		d.st.LastTransitionTime = d.now
	}
	d.setPromotedCondition(p)
}

func (d *decider) setWeight(w int) {
	if d.st.CanaryWeight != w {
		d.st.CanaryWeight = w
		d.st.LastTransitionTime = d.now
	}
}

// setPromotedCondition sets the Promoted condition as Flagger does: its reason is the
// phase, its status True once a revision is in place, False after a failure.
func (d *decider) setPromotedCondition(p v1alpha1.CanaryPhase) {
	status, msg := metav1.ConditionUnknown, ""
	kind := d.cd.Spec.TargetRef.Kind
	switch p {
	case v1alpha1.CanaryPhaseInitializing:
		msg = "New " + kind + " detected, starting initialization."
	case v1alpha1.CanaryPhaseInitialized:
		status, msg = metav1.ConditionTrue, kind+" initialization completed."
	case v1alpha1.CanaryPhaseWaiting, v1alpha1.CanaryPhaseWaitingPromotion:
		msg = "Waiting for approval."
	case v1alpha1.CanaryPhaseProgressing:
		msg = "New revision detected, progressing canary analysis."
	case v1alpha1.CanaryPhasePromoting:
		msg = "Canary analysis completed, starting primary rolling update."
	case v1alpha1.CanaryPhaseFinalising:
		msg = "Canary analysis completed, routing all traffic to primary."
	case v1alpha1.CanaryPhaseSucceeded:
		status, msg = metav1.ConditionTrue, "Canary analysis completed successfully, promotion finished."
	case v1alpha1.CanaryPhaseFailed:
		status, msg = metav1.ConditionFalse, "Canary analysis failed, "+kind+" scaled to zero."
	default:
		return
	}
	meta.SetStatusCondition(&d.st.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionPromoted, Status: status, Reason: string(p), Message: msg,
		ObservedGeneration: d.cd.Generation, LastTransitionTime: d.now,
	})
}

// Events and alerts.

// ref names the Canary as Flagger's messages do: name.namespace.
func (d *decider) ref() string { return d.cd.Name + "." + d.cd.Namespace }

func (d *decider) info(reason, msg string) {
	d.add(Event{Type: v1alpha1.EventTypeNormal, Reason: reason, Message: msg})
}

func (d *decider) warn(reason, msg string) {
	d.add(Event{Type: v1alpha1.EventTypeWarning, Reason: reason, Message: msg})
}

func (d *decider) alert(sev v1alpha1.AlertSeverity, msg string) {
	d.add(Alert{Severity: sev, Message: msg})
}

// hasHooks reports whether the spec has webhooks of type t.
func (d *decider) hasHooks(t v1alpha1.WebhookType) bool {
	for i := range d.an.Webhooks {
		if d.an.Webhooks[i].GetType() == t {
			return true
		}
	}
	return false
}

// runHooks asks for the webhooks of type t, if there are any.
func (d *decider) runHooks(t v1alpha1.WebhookType, phase v1alpha1.CanaryPhase) {
	if d.hasHooks(t) {
		d.add(RunWebhooks{Type: t, Phase: phase})
	}
}

// short shortens a revision hash for messages.
func short(rev string) string {
	if len(rev) > 10 {
		return rev[:10]
	}
	return rev
}
