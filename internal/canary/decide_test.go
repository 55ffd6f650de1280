package canary

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// decideCase is one decision: a Canary (the seed, changed by spec) with a persisted
// status, what was observed, and what must come out.
type decideCase struct {
	name  string
	spec  func(*v1alpha1.Canary)
	st    v1alpha1.CanaryStatus
	obs   Observations
	check func(t *testing.T, dec Decision)
}

func runCases(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cd := seedCanary()
			if tc.spec != nil {
				tc.spec(cd)
			}
			cd.Status = tc.st
			before := cd.DeepCopy()
			dec := Decide(cd, tc.obs)
			if !reflect.DeepEqual(cd, before) {
				t.Fatal("Decide changed the Canary it was given")
			}
			tc.check(t, dec)
		})
	}
}

// obsAt observes target revision rev at t0+d with everything ready.
func obsAt(d time.Duration, rev string) Observations {
	return Observations{Now: t0.Add(d), TargetRevision: rev, TargetExists: true,
		PrimaryReady: ReadyState{Ready: true}, CanaryReady: ReadyState{Ready: true}}
}

func idleStatus(p v1alpha1.CanaryPhase, applied, promoted string) v1alpha1.CanaryStatus {
	return v1alpha1.CanaryStatus{ObservedGeneration: 1, Phase: p, LastAppliedSpec: applied, LastPromotedSpec: promoted,
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReferencesResolved, Status: metav1.ConditionTrue,
			ObservedGeneration: 1, Reason: "TargetFound", Message: "target Workload podinfo found"}}}
}

func wantPhase(t *testing.T, dec Decision, p v1alpha1.CanaryPhase) {
	t.Helper()
	if dec.Status.Phase != p {
		t.Errorf("phase %q, want %q (message %q)", dec.Status.Phase, p, dec.Status.Message)
	}
}

func wantKinds(t *testing.T, dec Decision, want ...ActionKind) {
	t.Helper()
	if got := kinds(dec.Actions); !slices.Equal(got, want) {
		t.Errorf("actions %v, want kinds %v", dec.Actions, want)
	}
}

func wantMessage(t *testing.T, dec Decision, part string) {
	t.Helper()
	if !strings.Contains(dec.Status.Message, part) {
		t.Errorf("message %q, want it to contain %q", dec.Status.Message, part)
	}
}

func wantRequeue(t *testing.T, dec Decision, after time.Duration) {
	t.Helper()
	if got := requeue(t, dec); got != after {
		t.Errorf("requeue after %v, want %v", got, after)
	}
}

func wantCondition(t *testing.T, dec Decision, reason, status string) {
	t.Helper()
	c := promotedCondition(dec.Status)
	if c == nil || c.Reason != reason || c.Status != status {
		t.Errorf("Promoted condition %+v, want reason %s status %s", c, reason, status)
	}
}

func notReadyObs(d time.Duration, rev string) Observations {
	o := obsAt(d, rev)
	o.PrimaryReady = ReadyState{Message: "0/2 instances ready"}
	o.CanaryReady = ReadyState{}
	return o
}

var initializing = v1alpha1.CanaryStatus{Phase: v1alpha1.CanaryPhaseInitializing, LastAppliedSpec: "r1"}

func TestInitialization(t *testing.T) { runCases(t, initializationCases) }

var initializationCases = []decideCase{{
	name: "a new Canary creates the primary from the target",
	obs:  notReadyObs(0, "r1"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseInitializing)
		wantKinds(t, dec, KindInitializePrimary, KindEvent, KindRequeue)
		if !hasAction(dec.Actions, InitializePrimary{Revision: "r1"}) || dec.Status.LastAppliedSpec != "r1" {
			t.Errorf("actions %v, status %+v", dec.Actions, dec.Status)
		}
		wantRequeue(t, dec, 5*time.Second)
		wantCondition(t, dec, "Initializing", "Unknown")
	},
}, {
	name: "waits for the primary, asking again for it",
	st:   initializing,
	obs:  notReadyObs(3*time.Second, "r1"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseInitializing)
		wantKinds(t, dec, KindInitializePrimary, KindRequeue)
		wantMessage(t, dec, "primary not ready: 0/2 instances ready")
		if dec.Status.StalledSince == nil || !dec.Status.StalledSince.Equal(at(3*time.Second)) {
			t.Errorf("stalledSince %v", dec.Status.StalledSince)
		}
	},
}, {
	name: "primary ready: all traffic to it, then the target scaled to zero",
	st:   initializing,
	obs:  obsAt(5*time.Second, "r1"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseInitialized)
		wantKinds(t, dec, KindSetWeights, KindScaleCanary, KindEvent, KindAlert, KindRequeue)
		if dec.Actions[0] != (SetWeights{Primary: 100}) || dec.Actions[1] != (ScaleCanary{ToZero: true}) {
			t.Errorf("actions %v", dec.Actions)
		}
		st := dec.Status
		if st.LastAppliedSpec != "r1" || st.LastPromotedSpec != "r1" || st.CanaryWeight != 0 {
			t.Errorf("status %+v", st)
		}
		wantCondition(t, dec, "Initialized", "True")
		wantRequeue(t, dec, 10*time.Second)
	},
}, {
	name: "the revision the primary was made from is the one recorded",
	st:   initializing,
	obs:  func() Observations { o := obsAt(5*time.Second, "r2"); o.PrimaryRevision = "r1"; return o }(),
	check: func(t *testing.T, dec Decision) {
		if dec.Status.LastPromotedSpec != "r1" || dec.Status.LastAppliedSpec != "r1" {
			t.Errorf("status %+v; r2 must still be seen as new", dec.Status)
		}
	},
}, {
	name: "a primary stuck past the deadline is reported",
	st:   func() v1alpha1.CanaryStatus { s := initializing; s.StalledSince = at(0); return s }(),
	obs:  notReadyObs(61*time.Second, "r1"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseInitializing)
		wantMessage(t, dec, "progress deadline exceeded: primary not ready")
		wantKinds(t, dec, KindInitializePrimary, KindEvent, KindAlert, KindRequeue)
	},
}, {
	name: "… once",
	st: func() v1alpha1.CanaryStatus {
		s := initializing
		s.StalledSince = at(0)
		s.Message = "progress deadline exceeded: primary not ready: 0/2 instances ready"
		return s
	}(),
	obs:   notReadyObs(70*time.Second, "r1"),
	check: func(t *testing.T, dec Decision) { wantKinds(t, dec, KindInitializePrimary, KindRequeue) },
}, {
	name: "a missing target creates nothing",
	obs:  func() Observations { o := obsAt(0, ""); o.TargetExists = false; return o }(),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, "")
		wantKinds(t, dec, KindEvent, KindRequeue)
		wantMessage(t, dec, "target Workload podinfo not found")
		c := meta.FindStatusCondition(dec.Status.Conditions, v1alpha1.ConditionReferencesResolved)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "TargetNotFound" {
			t.Errorf("ReferencesResolved = %+v, want False/TargetNotFound", c)
		}
	},
}, {
	name: "a target that appears resolves the condition",
	st: v1alpha1.CanaryStatus{Message: "target Workload podinfo not found", Conditions: []metav1.Condition{{
		Type: v1alpha1.ConditionReferencesResolved, Status: metav1.ConditionFalse, Reason: "TargetNotFound"}}},
	obs: obsAt(0, "r1"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseInitializing)
		c := meta.FindStatusCondition(dec.Status.Conditions, v1alpha1.ConditionReferencesResolved)
		if c == nil || c.Status != metav1.ConditionTrue || c.Reason != "TargetFound" {
			t.Errorf("ReferencesResolved = %+v, want True/TargetFound", c)
		}
	},
}}

func TestFirstDeployIsNotAnalysed(t *testing.T) {
	w := newWorld(t, seedCanary(), "r1")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseInitialized))
	for range 10 {
		w.step()
	}
	want := []v1alpha1.CanaryPhase{v1alpha1.CanaryPhaseInitializing, v1alpha1.CanaryPhaseInitialized}
	if !slices.Equal(w.phases, want) || len(w.calls) != 0 || w.queries != 0 || len(w.promotions) != 0 {
		t.Errorf("phases %v, webhooks %v, metric checks %d, promotions %v", w.phases, w.calls, w.queries, w.promotions)
	}
}

var succeeded = idleStatus(v1alpha1.CanaryPhaseSucceeded, "r1", "r1")

func TestNewRevision(t *testing.T) { runCases(t, newRevisionCases) }

var newRevisionCases = []decideCase{{
	name: "a message about a hold that ended is dropped",
	st:   func() v1alpha1.CanaryStatus { s := succeeded; s.Message = msgSuspended; return s }(),
	obs:  obsAt(0, "r1"),
	check: func(t *testing.T, dec Decision) {
		if dec.Status.Message != "" {
			t.Errorf("message %q", dec.Status.Message)
		}
	},
}, {
	name: "no change: the status stays as it is",
	st:   succeeded,
	obs:  obsAt(0, "r1"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRequeue)
		if !reflect.DeepEqual(dec.Status, succeeded) {
			t.Errorf("status changed: %+v", dec.Status)
		}
	},
}, {
	name: "a return to the promoted revision is recorded, not analysed",
	st:   idleStatus(v1alpha1.CanaryPhaseSucceeded, "r2", "r1"),
	obs:  obsAt(0, "r1"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseSucceeded)
		wantKinds(t, dec, KindEvent, KindRequeue)
		if dec.Status.LastAppliedSpec != "r1" {
			t.Errorf("lastAppliedSpec %q", dec.Status.LastAppliedSpec)
		}
	},
}, {
	name: "… from Failed too",
	st:   idleStatus(v1alpha1.CanaryPhaseFailed, "r2", "r1"),
	obs:  obsAt(0, "r1"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseFailed)
		wantKinds(t, dec, KindEvent, KindRequeue)
	},
}, {
	name: "a new revision starts the analysis from nothing",
	st:   func() v1alpha1.CanaryStatus { s := succeeded; s.FailedChecks, s.Iterations = 3, 2; return s }(),
	obs:  obsAt(0, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseProgressing)
		wantKinds(t, dec, KindScaleCanary, KindEvent, KindAlert, KindRequeue)
		st := dec.Status
		if st.LastAppliedSpec != "r2" || st.LastPromotedSpec != "r1" || st.FailedChecks != 0 || st.Iterations != 0 {
			t.Errorf("status %+v", st)
		}
		if dec.Actions[0] != (ScaleCanary{}) || !dec.Status.LastTransitionTime.Equal(at(0)) {
			t.Errorf("actions %v, lastTransitionTime %v", dec.Actions, dec.Status.LastTransitionTime)
		}
		wantCondition(t, dec, "Progressing", "Unknown")
		wantRequeue(t, dec, 5*time.Second)
	},
}, {
	name: "skipAnalysis promotes straight away",
	spec: func(cd *v1alpha1.Canary) { cd.Spec.SkipAnalysis = true },
	st:   succeeded,
	obs:  obsAt(0, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhasePromoting)
		if !hasAction(dec.Actions, PromotePrimary{Revision: "r2"}) || hasKind(dec.Actions, KindScaleCanary) {
			t.Errorf("actions %v", dec.Actions)
		}
		if dec.Status.LastPromotedSpec != "r2" {
			t.Errorf("lastPromotedSpec %q", dec.Status.LastPromotedSpec)
		}
	},
}, {
	name: "no analysis at all is skipped analysis",
	spec: func(cd *v1alpha1.Canary) { cd.Spec.Analysis = nil },
	st:   succeeded,
	obs:  obsAt(0, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhasePromoting)
	},
}, {
	name: "confirm-rollout hooks: Waiting, asking them at once",
	spec: func(cd *v1alpha1.Canary) { addHook(cd, "gate", v1alpha1.WebhookConfirmRollout) },
	st:   succeeded,
	obs:  obsAt(0, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseWaiting)
		wantKinds(t, dec, KindEvent, KindRunWebhooks, KindRequeue)
		if !hasAction(dec.Actions, RunWebhooks{Type: v1alpha1.WebhookConfirmRollout, Phase: v1alpha1.CanaryPhaseWaiting}) {
			t.Errorf("actions %v", dec.Actions)
		}
		if dec.Status.ChecksRequestedTime == nil {
			t.Error("checksRequestedTime not set")
		}
		wantRequeue(t, dec, 0)
		wantCondition(t, dec, "Waiting", "Unknown")
	},
}, {
	name: "suspended: nothing at all",
	spec: func(cd *v1alpha1.Canary) { cd.Spec.Suspend = true },
	st:   succeeded,
	obs:  obsAt(0, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseSucceeded)
		wantKinds(t, dec, KindRequeue)
		if dec.Status.LastAppliedSpec != "r1" {
			t.Errorf("lastAppliedSpec %q", dec.Status.LastAppliedSpec)
		}
		wantMessage(t, dec, "suspended")
	},
}, {
	name: "an analysis that selects no strategy starts nothing",
	spec: func(cd *v1alpha1.Canary) { cd.Spec.Analysis.StepWeight = 0 },
	st:   succeeded,
	obs:  obsAt(0, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseSucceeded)
		wantKinds(t, dec, KindEvent, KindRequeue)
		wantMessage(t, dec, "selects no strategy")
	},
}}

func gate(cd *v1alpha1.Canary) { addHook(cd, "gate", v1alpha1.WebhookConfirmRollout) }

var (
	waiting = idleStatus(v1alpha1.CanaryPhaseWaiting, "r2", "r1")
	pending = func() v1alpha1.CanaryStatus { s := waiting; s.ChecksRequestedTime = at(0); return s }()
)

// answer observes the confirm-rollout gate's answer.
func answer(ok bool) Observations {
	o := obsAt(time.Second, "r2")
	o.Webhooks = []WebhookResult{{Name: "gate", Type: v1alpha1.WebhookConfirmRollout, OK: ok, StatusCode: 403}}
	return o
}

func TestWaiting(t *testing.T) { runCases(t, waitingCases) }

var waitingCases = []decideCase{{
	name: "a closed gate keeps the release waiting, and says so",
	spec: gate, st: pending, obs: answer(false),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseWaiting)
		wantKinds(t, dec, KindEvent, KindAlert, KindRequeue)
		wantMessage(t, dec, "waiting for rollout approval (gate)")
		wantRequeue(t, dec, 10*time.Second)
		if dec.Status.ChecksRequestedTime != nil || !dec.Status.LastStepTime.Equal(at(0)) {
			t.Errorf("status %+v", dec.Status)
		}
		if r := dec.Status.LastWebhooks; len(r) != 1 || r[0].Passed || r[0].StatusCode != 403 {
			t.Errorf("lastWebhooks %+v", r)
		}
	},
}, {
	name: "… once",
	spec: gate,
	st: func() v1alpha1.CanaryStatus {
		s := pending
		s.Message = "waiting for rollout approval (gate)"
		return s
	}(),
	obs: answer(false),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRequeue)
	},
}, {
	name: "an open gate starts the analysis",
	spec: gate, st: pending, obs: answer(true),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseProgressing)
		if !hasAction(dec.Actions, ScaleCanary{}) || dec.Status.LastStepTime != nil {
			t.Errorf("actions %v, status %+v", dec.Actions, dec.Status)
		}
	},
}, {
	name: "the gate is asked again every interval",
	spec: gate,
	st:   func() v1alpha1.CanaryStatus { s := waiting; s.LastStepTime = at(0); return s }(),
	obs:  obsAt(10*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRunWebhooks, KindRequeue)
		wantRequeue(t, dec, 0)
	},
}, {
	name: "… not before",
	spec: gate,
	st:   func() v1alpha1.CanaryStatus { s := waiting; s.LastStepTime = at(0); return s }(),
	obs:  obsAt(4*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRequeue)
		wantRequeue(t, dec, 6*time.Second)
	},
}, {
	name: "a newer revision is put to the gate at once",
	spec: gate,
	st:   func() v1alpha1.CanaryStatus { s := waiting; s.LastStepTime = at(0); return s }(),
	obs:  obsAt(4*time.Second, "r3"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseWaiting)
		wantKinds(t, dec, KindEvent, KindRunWebhooks, KindRequeue)
		if dec.Status.LastAppliedSpec != "r3" {
			t.Errorf("lastAppliedSpec %q", dec.Status.LastAppliedSpec)
		}
	},
}, {
	name: "a rollback hook answering 2xx rolls back a waiting release",
	spec: func(cd *v1alpha1.Canary) { gate(cd); addHook(cd, "stop", v1alpha1.WebhookRollback) },
	st:   pending,
	obs: func() Observations {
		o := answer(false)
		o.Webhooks = append(o.Webhooks, WebhookResult{Name: "stop", Type: v1alpha1.WebhookRollback, OK: true})
		return o
	}(),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseFailed)
		wantMessage(t, dec, "rollback webhook stop")
	},
}}

// Deciding again with the status a decision returned changes nothing while nothing
// changes outside.
func TestSteadyStatesAreStable(t *testing.T) {
	for _, p := range []v1alpha1.CanaryPhase{v1alpha1.CanaryPhaseInitialized, v1alpha1.CanaryPhaseSucceeded, v1alpha1.CanaryPhaseFailed} {
		cd := seedCanary()
		cd.Status = idleStatus(p, "r1", "r1")
		first := Decide(cd, obsAt(0, "r1"))
		cd.Status = first.Status
		second := Decide(cd, obsAt(time.Minute, "r1"))
		if !reflect.DeepEqual(first.Status, second.Status) || !slices.Equal(kinds(second.Actions), []ActionKind{KindRequeue}) {
			t.Errorf("%s: %+v then %+v, %v", p, first.Status, second.Status, second.Actions)
		}
	}
}
