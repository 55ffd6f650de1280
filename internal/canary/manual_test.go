package canary

import (
	"slices"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

func command(o Observations, c ManualCommand) Observations {
	o.Manual = c
	return o
}

var (
	failed = func() v1alpha1.CanaryStatus {
		s := idleStatus(v1alpha1.CanaryPhaseFailed, "r2", "r1")
		s.FailedChecks = 10
		return s
	}()
	paused = func() v1alpha1.CanaryStatus {
		s := analysing(15)
		s.Paused, s.Message = true, "paused by user"
		return s
	}()
)

func TestManualPromoteAbortRetry(t *testing.T) { runCases(t, promoteAbortRetryCases) }

var promoteAbortRetryCases = []decideCase{{
	name: "promote: skip the rest of the analysis",
	st:   asked(analysing(15)),
	obs:  command(obsAt(11*time.Second, "r2"), ManualPromote),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhasePromoting)
		if !hasAction(dec.Actions, PromotePrimary{Revision: "r2"}) || dec.Status.ChecksRequestedTime != nil {
			t.Errorf("actions %v, status %+v", dec.Actions, dec.Status)
		}
	},
}, {
	name: "promote a failed revision",
	st:   failed,
	obs:  command(obsAt(0, "r2"), ManualPromote),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhasePromoting)
		if dec.Status.LastPromotedSpec != "r2" || !hasAction(dec.Actions, PromotePrimary{Revision: "r2"}) {
			t.Errorf("actions %v, status %+v", dec.Actions, dec.Status)
		}
	},
}, {
	name: "promote with nothing to promote is ignored",
	st:   idleStatus(v1alpha1.CanaryPhaseSucceeded, "r2", "r2"),
	obs:  command(obsAt(0, "r2"), ManualPromote),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseSucceeded)
		wantKinds(t, dec, KindEvent, KindRequeue)
		if e := actionsOf[Event](dec.Actions)[0]; e.Type != v1alpha1.EventTypeWarning || e.Reason != "Ignored" {
			t.Errorf("event %v", e)
		}
	},
}, {
	name: "abort: roll back now",
	st:   analysing(30),
	obs:  command(obsAt(time.Second, "r2"), ManualAbort),
	check: func(t *testing.T, dec Decision) {
		wantRolledBack(t, dec, "aborted by user")
	},
}, {
	name: "abort while Promoting is too late",
	st:   func() v1alpha1.CanaryStatus { s := analysing(50); s.Phase = v1alpha1.CanaryPhasePromoting; return s }(),
	obs:  command(obsAt(time.Second, "r2"), ManualAbort),
	check: func(t *testing.T, dec Decision) {
		if dec.Status.Phase == v1alpha1.CanaryPhaseFailed || eventReasons(dec.Actions)[0] != "Ignored" {
			t.Errorf("phase %s, actions %v", dec.Status.Phase, dec.Actions)
		}
	},
}, {
	name: "retry: a failed revision is analysed again from the start",
	st:   failed,
	obs:  command(obsAt(0, "r2"), ManualRetry),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseProgressing)
		wantFailedChecks(t, dec, 0)
		wantWeight(t, dec, 0)
		if !hasAction(dec.Actions, ScaleCanary{}) || dec.Status.LastAppliedSpec != "r2" {
			t.Errorf("actions %v, status %+v", dec.Actions, dec.Status)
		}
	},
}, {
	name: "retry of a release under way is ignored",
	st:   analysing(15),
	obs:  command(obsAt(time.Second, "r2"), ManualRetry),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseProgressing)
		if eventReasons(dec.Actions)[0] != "Ignored" {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}, {
	name: "retry of the promoted revision is ignored",
	st:   idleStatus(v1alpha1.CanaryPhaseFailed, "r1", "r1"),
	obs:  command(obsAt(0, "r1"), ManualRetry),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseFailed)
	},
}}

func TestManualPauseResume(t *testing.T) { runCases(t, pauseResumeCases) }

var pauseResumeCases = []decideCase{{
	name: "pause: weights stay, the round is dropped",
	st:   asked(analysing(15)),
	obs:  command(obsAt(11*time.Second, "r2"), ManualPause),
	check: func(t *testing.T, dec Decision) {
		wantWeight(t, dec, 15)
		wantKinds(t, dec, KindEvent, KindRequeue)
		wantMessage(t, dec, "paused")
		if !dec.Status.Paused || dec.Status.ChecksRequestedTime != nil {
			t.Errorf("status %+v", dec.Status)
		}
	},
}, {
	name: "paused: nothing happens when a round is due",
	st:   paused,
	obs:  obsAt(time.Minute, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRequeue)
		wantWeight(t, dec, 15)
	},
}, {
	name: "paused: not even a new revision",
	st:   paused,
	obs:  obsAt(time.Minute, "r3"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRequeue)
		if dec.Status.LastAppliedSpec != "r2" {
			t.Errorf("lastAppliedSpec %q", dec.Status.LastAppliedSpec)
		}
	},
}, {
	name: "resume: the analysis goes on at once",
	st:   paused,
	obs:  command(obsAt(time.Minute, "r2"), ManualResume),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindEvent, KindRunWebhooks, KindCheckMetrics, KindRequeue)
		if dec.Status.Paused {
			t.Error("still paused")
		}
	},
}, {
	name: "abort while paused",
	st:   paused,
	obs:  command(obsAt(time.Minute, "r2"), ManualAbort),
	check: func(t *testing.T, dec Decision) {
		wantRolledBack(t, dec, "aborted by user")
		if dec.Status.Paused {
			t.Error("still paused")
		}
	},
}, {
	name: "commands are ignored while suspended",
	spec: func(cd *v1alpha1.Canary) { cd.Spec.Suspend = true },
	st:   analysing(15),
	obs:  command(obsAt(time.Second, "r2"), ManualPromote),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseProgressing)
		wantKinds(t, dec, KindEvent, KindRequeue)
	},
}, {
	name: "an unknown command is ignored",
	st:   analysing(15),
	obs:  command(obsAt(time.Second, "r2"), "rewind"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseProgressing)
		if eventReasons(dec.Actions)[0] != "Ignored" {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}}

func TestPauseResumeRetrySimulated(t *testing.T) {
	w := newWorld(t, seedCanary(), "r1").initialized()
	w.deploy("r2")
	w.runUntil(func() bool { return w.cd.Status.CanaryWeight == 15 })
	w.manual = ManualPause
	for range 20 {
		w.step()
	}
	if w.cd.Status.CanaryWeight != 15 || !w.cd.Status.Paused || w.route != (SetWeights{Primary: 85, Canary: 15}) {
		t.Fatalf("paused release moved: %+v, route %v", w.cd.Status, w.route)
	}
	w.manual = ManualResume
	w.measure = failing
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseFailed))
	wantWeights(t, w, 5, 10, 15, 0)

	// Fixed outside (say, a dependency), the same revision is retried and promoted.
	w.measure = healthy
	w.manual = ManualRetry
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseSucceeded))
	wantWeights(t, w, 5, 10, 15, 0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 0)
	wantPromotedOnce(t, w)
}

var midAnalysis = func() v1alpha1.CanaryStatus {
	s := analysing(25)
	s.FailedChecks, s.Iterations = 2, 1
	return s
}()

func TestNewRevisionDuringAnalysis(t *testing.T) { runCases(t, newRevisionDuringAnalysisCases) }

var newRevisionDuringAnalysisCases = []decideCase{{
	name: "restarts from weight 0",
	st:   midAnalysis,
	obs:  obsAt(time.Second, "r3"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseProgressing)
		wantWeight(t, dec, 0)
		wantFailedChecks(t, dec, 0)
		s := dec.Status
		if s.Iterations != 0 || s.LastAppliedSpec != "r3" || s.PreRolloutPassed || s.LastStepTime != nil {
			t.Errorf("status %+v", s)
		}
		wantKinds(t, dec, KindSetWeights, KindEvent, KindRequeue)
		if dec.Actions[0] != (SetWeights{Primary: 100}) {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}, {
	name: "… from WaitingPromotion too",
	st: func() v1alpha1.CanaryStatus {
		s := analysing(50)
		s.Phase = v1alpha1.CanaryPhaseWaitingPromotion
		return s
	}(),
	obs: obsAt(time.Second, "r3"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseProgressing)
		wantWeight(t, dec, 0)
	},
}, {
	name: "a return to the promoted revision ends the release",
	st:   midAnalysis,
	obs:  obsAt(time.Second, "r1"),
	check: func(t *testing.T, dec Decision) {
		wantRolledBack(t, dec, "target returned to the promoted revision r1")
		if dec.Status.LastAppliedSpec != "r1" {
			t.Errorf("lastAppliedSpec %q", dec.Status.LastAppliedSpec)
		}
	},
}, {
	name: "a promotion under way finishes first",
	st: func() v1alpha1.CanaryStatus {
		s := idleStatus(v1alpha1.CanaryPhasePromoting, "r2", "r2")
		s.CanaryWeight = 50
		return s
	}(),
	obs: obsAt(time.Second, "r3"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseFinalising)
		if dec.Status.LastAppliedSpec != "r2" {
			t.Errorf("lastAppliedSpec %q", dec.Status.LastAppliedSpec)
		}
	},
}}

func TestNewRevisionDuringAnalysisSimulated(t *testing.T) {
	w := newWorld(t, seedCanary(), "r1").initialized()
	w.deploy("r2")
	w.runUntil(func() bool { return w.cd.Status.CanaryWeight == 20 })
	w.deploy("r3")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseSucceeded))
	wantWeights(t, w, 5, 10, 15, 20, 0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 0)
	if !slices.Equal(w.promotions, []string{"r3"}) || w.calls[v1alpha1.WebhookPreRollout] != 2 {
		t.Errorf("promotions %v, pre-rollout calls %d", w.promotions, w.calls[v1alpha1.WebhookPreRollout])
	}

	// A revision arriving while Promoting is analysed after the promotion.
	w.deploy("r4")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhasePromoting))
	w.deploy("r5")
	w.runUntil(func() bool { return slices.Contains(w.promotions, "r5") })
	if !slices.Equal(w.promotions, []string{"r3", "r4", "r5"}) {
		t.Errorf("promotions %v", w.promotions)
	}
}

func revert(cd *v1alpha1.Canary) { cd.Spec.RevertOnDeletion = true }

func deleted(o Observations) Observations { o.Deleted = true; return o }

var terminating = idleStatus(v1alpha1.CanaryPhaseTerminating, "r2", "r2")

func TestRevertOnDeletion(t *testing.T) { runCases(t, revertOnDeletionCases) }

var revertOnDeletionCases = []decideCase{{
	name: "deleted: Terminating, the target gets its replicas back",
	spec: revert,
	st:   analysing(20),
	obs:  deleted(obsAt(time.Second, "r2")),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseTerminating)
		wantKinds(t, dec, KindRevertTarget, KindEvent, KindRequeue)
	},
}, {
	name: "the target ready: all traffic to it, Terminated",
	spec: revert,
	st:   terminating,
	obs:  deleted(obsAt(time.Second, "r2")),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseTerminated)
		wantKinds(t, dec, KindSetWeights, KindFinalizeTarget, KindEvent)
		if dec.Actions[0] != (SetWeights{Canary: 100}) {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}, {
	name: "waits for the reverted target",
	spec: revert,
	st:   terminating,
	obs:  func() Observations { o := deleted(obsAt(time.Second, "r2")); o.CanaryReady.Ready = false; return o }(),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseTerminating)
		wantKinds(t, dec, KindRevertTarget, KindRequeue)
	},
}, {
	name: "Terminated: nothing more, not even a requeue",
	spec: revert,
	st:   idleStatus(v1alpha1.CanaryPhaseTerminated, "r2", "r2"),
	obs:  deleted(obsAt(time.Second, "r2")),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec)
		if _, ok := dec.RequeueAfter(); ok {
			t.Error("requeue after Terminated")
		}
	},
}, {
	name: "without revertOnDeletion the primary stays",
	st:   idleStatus(v1alpha1.CanaryPhaseSucceeded, "r2", "r2"),
	obs:  deleted(obsAt(time.Second, "r2")),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseTerminated)
		wantKinds(t, dec, KindEvent)
	},
}}

func TestRevertOnDeletionSimulated(t *testing.T) {
	cd := seedCanary()
	cd.Spec.RevertOnDeletion = true
	w := newWorld(t, cd, "r1").initialized()
	w.deleted = true
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseTerminated))
	if !w.reverted || !w.canaryUp || w.route != (SetWeights{Canary: 100}) || !w.finalized {
		t.Errorf("reverted %v, target up %v, route %v, finalized %v", w.reverted, w.canaryUp, w.route, w.finalized)
	}
}

// The status is persisted before the actions run; a controller killed right after
// persisting Promoting resumes it without a second promotion.
var promotingAt50 = func() v1alpha1.CanaryStatus {
	s := idleStatus(v1alpha1.CanaryPhasePromoting, "r2", "r2")
	s.CanaryWeight = 50
	return s
}()

// withPrimary observes a primary that runs rev.
func withPrimary(rev string) Observations {
	o := obsAt(time.Second, "r2")
	o.PrimaryRevision = rev
	return o
}

func TestReplayInPromoting(t *testing.T) { runCases(t, replayCases) }

var replayCases = []decideCase{{
	name: "replayed in Promoting: no second promotion",
	st:   promotingAt50,
	obs:  withPrimary("r2"),
	check: func(t *testing.T, dec Decision) {
		if hasKind(dec.Actions, KindPromotePrimary) {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}, {
	name: "replayed in Promoting with the primary's revision unknown: no second promotion",
	st:   promotingAt50,
	obs:  withPrimary(""),
	check: func(t *testing.T, dec Decision) {
		if hasKind(dec.Actions, KindPromotePrimary) {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}, {
	name: "the promotion was lost: asked again, and nothing else",
	st:   promotingAt50,
	obs:  withPrimary("r1"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhasePromoting)
		wantKinds(t, dec, KindPromotePrimary, KindRequeue)
	},
}}

func TestCrashBeforePromotion(t *testing.T) {
	// Killed right after persisting Promoting: the promotion is asked for once more
	// (the first never ran), and happens once.
	w := newWorld(t, seedCanary(), "r1").initialized()
	w.crashIf = func(dec Decision) bool { return hasKind(dec.Actions, KindPromotePrimary) && w.crashes == 0 }
	w.deploy("r2")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseSucceeded))
	if w.crashes != 1 {
		t.Fatalf("crashed %d times", w.crashes)
	}
	wantPromotedOnce(t, w)
}

func TestCrashAfterPromotion(t *testing.T) {
	// Killed after the promotion ran: replaying the persisted status, again and again,
	// never promotes twice.
	w := newWorld(t, seedCanary(), "r1").initialized()
	w.deploy("r2")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhasePromoting))
	for i := range 5 {
		dec := Decide(w.cd, w.observe())
		if hasKind(dec.Actions, KindPromotePrimary) {
			t.Fatalf("replay %d promotes again: %v", i, dec.Actions)
		}
	}
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseSucceeded))
	wantPromotedOnce(t, w)
}

func TestCrashDuringRounds(t *testing.T) {
	// Killed after every round was asked for: the rounds are asked again and the
	// release ends as it would have.
	w := newWorld(t, seedCanary(), "r1").initialized()
	w.crashIf = func(dec Decision) bool { return hasKind(dec.Actions, KindCheckMetrics) && w.crashes < 3 }
	w.deploy("r2")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseSucceeded))
	wantWeights(t, w, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 0)
	if w.cd.Status.FailedChecks != 0 || w.crashes != 3 {
		t.Errorf("failedChecks %d after %d crashes", w.cd.Status.FailedChecks, w.crashes)
	}
	wantPromotedOnce(t, w)
}

func TestCrashInFinalising(t *testing.T) {
	// Killed as Finalising began: the routing is asked again before the canary goes.
	w := newWorld(t, seedCanary(), "r1").initialized()
	w.crashIf = func(dec Decision) bool {
		return dec.Status.Phase == v1alpha1.CanaryPhaseFinalising && w.crashes == 0
	}
	w.deploy("r2")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseSucceeded))
	if w.route != (SetWeights{Primary: 100}) || w.canaryUp {
		t.Errorf("route %v, canary up %v", w.route, w.canaryUp)
	}
}
