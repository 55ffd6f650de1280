package canary

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// release runs a release of r2 over an initialised r1 and returns the world.
func release(t *testing.T, cd *v1alpha1.Canary, until v1alpha1.CanaryPhase) *world {
	t.Helper()
	w := newWorld(t, cd, "r1").initialized()
	w.deploy("r2")
	w.runUntil(w.phaseIs(until))
	return w
}

func wantWeights(t *testing.T, w *world, want ...int) {
	t.Helper()
	if !slices.Equal(w.weights, want) {
		t.Errorf("weights %v, want %v", w.weights, want)
	}
}

func wantPromotedOnce(t *testing.T, w *world) {
	t.Helper()
	if !slices.Equal(w.promotions, []string{"r2"}) || w.primary != "r2" || w.canaryUp {
		t.Errorf("promotions %v, primary %q, canary up %v", w.promotions, w.primary, w.canaryUp)
	}
}

func TestStepWeights(t *testing.T) {
	cd := seedCanary()
	a := cd.Spec.Analysis
	a.StepWeight, a.MaxWeight, a.StepWeights = 0, 0, []int{1, 5, 20, 50}
	w := release(t, cd, v1alpha1.CanaryPhaseSucceeded)
	wantWeights(t, w, 1, 5, 20, 50, 0)
	wantPromotedOnce(t, w)
}

func TestStepWeightStopsAtMaxWeight(t *testing.T) {
	cd := seedCanary()
	cd.Spec.Analysis.StepWeight = 30
	w := release(t, cd, v1alpha1.CanaryPhaseSucceeded)
	wantWeights(t, w, 30, 50, 0)
}

func TestStepWeightPromotion(t *testing.T) {
	cd := seedCanary()
	cd.Spec.Analysis.StepWeightPromotion = 20
	w := release(t, cd, v1alpha1.CanaryPhaseSucceeded)
	// After promotion the traffic moves back to the primary 20 points per interval.
	wantWeights(t, w, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 30, 10, 0)
	wantPromotedOnce(t, w)
	if !w.sawPhase(v1alpha1.CanaryPhaseFinalising) {
		t.Errorf("phases %v", w.phases)
	}
}

func TestBlueGreen(t *testing.T) {
	cd := seedCanary()
	a := cd.Spec.Analysis
	a.StepWeight, a.MaxWeight, a.Iterations = 0, 0, 3
	w := newWorld(t, cd, "r1").initialized()
	w.deploy("r2")
	maxIterations := 0
	w.runUntil(func() bool {
		maxIterations = max(maxIterations, w.cd.Status.Iterations)
		if w.cd.Status.Iterations <= 3 && w.route != (SetWeights{Primary: 100}) {
			t.Fatalf("iteration %d routes %v to the canary", w.cd.Status.Iterations, w.route)
		}
		return w.cd.Status.Phase == v1alpha1.CanaryPhaseSucceeded
	})
	// Traffic stays on the primary while iterations are counted, switches to the canary
	// for a last round, then goes back to the promoted primary.
	wantWeights(t, w, 100, 0)
	wantPromotedOnce(t, w)
	if maxIterations != 4 || w.queries != 4 || w.match {
		t.Errorf("iterations up to %d, metric checks %d, match %v", maxIterations, w.queries, w.match)
	}
}

func TestBlueGreenMirror(t *testing.T) {
	cd := seedCanary()
	a := cd.Spec.Analysis
	a.StepWeight, a.MaxWeight, a.Iterations, a.Mirror = 0, 0, 2, true
	w := release(t, cd, v1alpha1.CanaryPhaseSucceeded)
	wantWeights(t, w, 0, 100, 0)
	if w.mirrors != 1 {
		t.Errorf("mirrored %d times", w.mirrors)
	}
	wantPromotedOnce(t, w)
}

func TestABTesting(t *testing.T) {
	cd := seedCanary()
	a := cd.Spec.Analysis
	a.StepWeight, a.MaxWeight, a.Iterations = 0, 0, 3
	a.Match = []v1alpha1.HTTPMatchRequest{{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "insider"}}}}
	w := newWorld(t, cd, "r1").initialized()
	w.deploy("r2")
	matched := false
	w.runUntil(func() bool {
		matched = matched || w.match
		return w.cd.Status.Phase == v1alpha1.CanaryPhaseSucceeded
	})
	// Only matching requests reach the canary; the weights never move.
	wantWeights(t, w)
	if !matched || w.match {
		t.Errorf("match routed during the analysis %v, after it %v", matched, w.match)
	}
	wantPromotedOnce(t, w)

	// The match set is the spec's.
	cd.Status = asked(analysing(0))
	cd.Status.Iterations = 1
	dec := Decide(cd, results(100, 120))
	sets := actionsOf[SetMatch](dec.Actions)
	if len(sets) != 1 || !reflect.DeepEqual(sets[0].Match, a.Match) || dec.Status.Iterations != 2 {
		t.Errorf("actions %v, iterations %d", dec.Actions, dec.Status.Iterations)
	}
}

func TestABTestingRollbackRemovesTheMatch(t *testing.T) {
	cd := seedCanary()
	a := cd.Spec.Analysis
	a.StepWeight, a.MaxWeight, a.Iterations, a.Threshold = 0, 0, 5, 2
	a.Match = []v1alpha1.HTTPMatchRequest{{Headers: map[string]v1alpha1.StringMatch{"cookie": {Regex: "^(.*?;)?(canary=always)(;.*)?$"}}}}
	w := newWorld(t, cd, "r1").initialized()
	w.measure = failing
	w.deploy("r2")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseFailed))
	if w.match || len(w.promotions) != 0 || w.cd.Status.FailedChecks != 2 {
		t.Errorf("match %v, promotions %v, status %+v", w.match, w.promotions, w.cd.Status)
	}
}

func TestMirrorFirstStep(t *testing.T) {
	cd := seedCanary()
	cd.Spec.Analysis.Mirror, cd.Spec.Analysis.MirrorWeight = true, 50
	w := release(t, cd, v1alpha1.CanaryPhaseSucceeded)
	// The first step mirrors, then traffic shifts as usual.
	wantWeights(t, w, 0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 0)
	if w.mirrors != 1 {
		t.Errorf("mirrored %d times", w.mirrors)
	}

	runCases(t, []decideCase{{
		name: "the first step mirrors mirrorWeight percent",
		spec: func(cd *v1alpha1.Canary) { cd.Spec.Analysis.Mirror, cd.Spec.Analysis.MirrorWeight = true, 50 },
		st:   func() v1alpha1.CanaryStatus { s := asked(analysing(0)); s.PreRolloutPassed = false; return s }(),
		obs: func() Observations {
			o := obsAt(11*time.Second, "r2")
			o.Webhooks = []WebhookResult{hook("acceptance-test", v1alpha1.WebhookPreRollout, true)}
			return o
		}(),
		check: func(t *testing.T, dec Decision) {
			wantWeight(t, dec, 0)
			if !dec.Status.Mirrored || !hasAction(dec.Actions, SetWeights{Primary: 100, Mirror: true, MirrorWeight: 50}) {
				t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
			}
		},
	}, {
		name: "the mirrored step needs no traffic-increase approval",
		spec: func(cd *v1alpha1.Canary) {
			cd.Spec.Analysis.Mirror = true
			addHook(cd, "traffic-gate", v1alpha1.WebhookConfirmTrafficIncrease)
		},
		st:  func() v1alpha1.CanaryStatus { s := analysing(0); s.Mirrored = true; return s }(),
		obs: obsAt(10*time.Second, "r2"),
		check: func(t *testing.T, dec Decision) {
			for _, h := range actionsOf[RunWebhooks](dec.Actions) {
				if h.Type == v1alpha1.WebhookConfirmTrafficIncrease {
					t.Errorf("actions %v", dec.Actions)
				}
			}
		},
	}, {
		name: "after the mirror, the first weight",
		spec: func(cd *v1alpha1.Canary) { cd.Spec.Analysis.Mirror = true },
		st:   func() v1alpha1.CanaryStatus { s := asked(analysing(0)); s.Mirrored = true; return s }(),
		obs:  results(100, 120),
		check: func(t *testing.T, dec Decision) {
			wantWeight(t, dec, 5)
			if dec.Status.Mirrored || !hasAction(dec.Actions, SetWeights{Primary: 95, Canary: 5}) {
				t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
			}
		},
	}})
}

// promoting is the promotion of r2 from canary weight w, its last step at t0.
func promoting(w int) v1alpha1.CanaryStatus {
	s := idleStatus(v1alpha1.CanaryPhasePromoting, "r2", "r2")
	s.CanaryWeight, s.LastStepTime = w, at(0)
	return s
}

func primaryAt(d time.Duration, rev string, ready bool) Observations {
	o := obsAt(d, "r2")
	o.PrimaryRevision, o.PrimaryReady.Ready = rev, ready
	return o
}

func TestPromotion(t *testing.T) { runCases(t, promotionCases) }

var promotionCases = []decideCase{{
	name: "waits for the promoted primary",
	st:   promoting(50),
	obs:  primaryAt(time.Second, "r2", false),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhasePromoting)
		wantKinds(t, dec, KindRequeue)
		wantMessage(t, dec, "waiting for the promoted primary")
	},
}, {
	name: "primary ready: all traffic to it at once",
	st:   promoting(50),
	obs:  primaryAt(time.Second, "r2", true),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseFinalising)
		wantWeight(t, dec, 0)
		wantKinds(t, dec, KindSetWeights, KindEvent, KindRequeue)
		wantCondition(t, dec, "Finalising", "Unknown")
	},
}, {
	name: "stepWeightPromotion: one step per interval",
	spec: func(cd *v1alpha1.Canary) { cd.Spec.Analysis.StepWeightPromotion = 20 },
	st:   promoting(50),
	obs:  primaryAt(10*time.Second, "r2", true),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhasePromoting)
		wantWeight(t, dec, 30)
		if !hasAction(dec.Actions, SetWeights{Primary: 70, Canary: 30}) {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}, {
	name: "stepWeightPromotion: not before the interval",
	spec: func(cd *v1alpha1.Canary) { cd.Spec.Analysis.StepWeightPromotion = 20 },
	st:   promoting(50),
	obs:  primaryAt(3*time.Second, "r2", true),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRequeue)
		wantRequeue(t, dec, 7*time.Second)
	},
}, {
	name: "a primary stuck past the deadline fails the release",
	st:   func() v1alpha1.CanaryStatus { s := promoting(50); s.StalledSince = at(-70 * time.Second); return s }(),
	obs:  primaryAt(time.Second, "r2", false),
	check: func(t *testing.T, dec Decision) {
		wantRolledBack(t, dec, "progress deadline exceeded: primary not ready")
	},
}}

func TestFinalising(t *testing.T) { runCases(t, finalisingCases) }

var finalisingCases = []decideCase{{
	name: "Finalising: the canary scaled to zero an interval later",
	st: func() v1alpha1.CanaryStatus {
		s := promoting(0)
		s.Phase, s.LastStepTime, s.Iterations = v1alpha1.CanaryPhaseFinalising, at(0), 3
		return s
	}(),
	spec: func(cd *v1alpha1.Canary) { addHook(cd, "notify", v1alpha1.WebhookPostRollout) },
	obs:  obsAt(10*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseSucceeded)
		wantKinds(t, dec, KindSetWeights, KindScaleCanary, KindRunWebhooks, KindEvent, KindAlert, KindRequeue)
		if !hasAction(dec.Actions, RunWebhooks{Type: v1alpha1.WebhookPostRollout, Phase: v1alpha1.CanaryPhaseSucceeded}) {
			t.Errorf("actions %v", dec.Actions)
		}
		if dec.Status.Iterations != 0 {
			t.Errorf("iterations %d", dec.Status.Iterations)
		}
		wantCondition(t, dec, "Succeeded", "True")
	},
}, {
	name: "Finalising: not before",
	st: func() v1alpha1.CanaryStatus {
		s := promoting(0)
		s.Phase = v1alpha1.CanaryPhaseFinalising
		return s
	}(),
	obs:   obsAt(2*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) { wantKinds(t, dec, KindRequeue) },
}, {
	name: "a rollback runs the post-rollout hooks with phase Failed",
	spec: func(cd *v1alpha1.Canary) { addHook(cd, "notify", v1alpha1.WebhookPostRollout) },
	st:   func() v1alpha1.CanaryStatus { s := asked(analysing(10)); s.FailedChecks = 9; return s }(),
	obs:  results(10, 120),
	check: func(t *testing.T, dec Decision) {
		if !hasAction(dec.Actions, RunWebhooks{Type: v1alpha1.WebhookPostRollout, Phase: v1alpha1.CanaryPhaseFailed}) {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}}

func TestSkipAnalysisRelease(t *testing.T) {
	cd := seedCanary()
	cd.Spec.SkipAnalysis = true
	w := release(t, cd, v1alpha1.CanaryPhaseSucceeded)
	wantPromotedOnce(t, w)
	if len(w.calls) != 0 || w.queries != 0 || len(w.weights) != 0 {
		t.Errorf("webhooks %v, metric checks %d, weights %v", w.calls, w.queries, w.weights)
	}
}

func TestSuspendedRelease(t *testing.T) {
	cd := seedCanary()
	w := newWorld(t, cd, "r1").initialized()
	w.deploy("r2")
	w.runUntil(func() bool { return w.cd.Status.CanaryWeight == 15 })
	w.cd.Spec.Suspend = true
	for range 30 {
		w.step()
	}
	if w.cd.Status.CanaryWeight != 15 || w.cd.Status.Phase != v1alpha1.CanaryPhaseProgressing {
		t.Fatalf("suspended release moved: %+v", w.cd.Status)
	}
	w.cd.Spec.Suspend = false
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseSucceeded))
	wantWeights(t, w, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 0)
	wantPromotedOnce(t, w)
}
