package canary

import (
	"slices"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// The seed's demo, step 1: podinfo 3.1.0 runs, 3.1.1 is rolled out 5% at a time up to
// 50%, promoted once, and all traffic returns to the promoted primary.
func TestSimulateSeedPromotion(t *testing.T) {
	w := newWorld(t, seedCanary(), "3.1.0").initialized()
	if w.primary != "3.1.0" || w.canaryUp || w.route != (SetWeights{Primary: 100}) {
		t.Fatalf("after initialization: primary %q, canary up %v, route %v", w.primary, w.canaryUp, w.route)
	}
	start := w.now
	w.deploy("3.1.1")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseSucceeded))

	want := []int{5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 0}
	if !slices.Equal(w.weights, want) {
		t.Errorf("weights %v, want %v", w.weights, want)
	}
	if !slices.Equal(w.promotions, []string{"3.1.1"}) {
		t.Errorf("promotions %v, want one of 3.1.1", w.promotions)
	}
	wantPhases := []v1alpha1.CanaryPhase{v1alpha1.CanaryPhaseProgressing, v1alpha1.CanaryPhasePromoting,
		v1alpha1.CanaryPhaseFinalising, v1alpha1.CanaryPhaseSucceeded}
	if !slices.Equal(w.phases, wantPhases) {
		t.Errorf("phases %v, want %v", w.phases, wantPhases)
	}
	if w.calls[v1alpha1.WebhookPreRollout] != 1 {
		t.Errorf("pre-rollout called %d times, want once", w.calls[v1alpha1.WebhookPreRollout])
	}
	// One load test and one metric check per round with traffic: at 5, 10, …, 50.
	if w.calls[v1alpha1.WebhookRollout] != 10 || w.queries != 10 {
		t.Errorf("rollout hooks %d, metric checks %d; want 10 each", w.calls[v1alpha1.WebhookRollout], w.queries)
	}
	st := w.cd.Status
	if st.FailedChecks != 0 || st.LastPromotedSpec != "3.1.1" || st.LastAppliedSpec != "3.1.1" || st.CanaryWeight != 0 {
		t.Errorf("final status %+v", st)
	}
	if w.canaryUp || w.primary != "3.1.1" {
		t.Errorf("canary up %v, primary %q", w.canaryUp, w.primary)
	}
	// 11 rounds an interval apart, plus readiness and finalising: a few minutes, not more.
	if took := w.now.Sub(start); took < 110*time.Second || took > 150*time.Second {
		t.Errorf("release took %v", took)
	}
	if len(st.LastMetrics) != 2 || !st.LastMetrics[0].Passed || *st.LastMetrics[0].ThresholdMin != 99 {
		t.Errorf("lastMetrics %+v", st.LastMetrics)
	}

	// Nothing more happens once promoted.
	before := len(w.weights)
	for range 5 {
		w.step()
	}
	if len(w.weights) != before || len(w.promotions) != 1 {
		t.Errorf("changes after Succeeded: weights %v, promotions %v", w.weights, w.promotions)
	}
}

// The seed's demo, step 2: 3.1.2 answers 10% of requests with 500s; every round fails
// its success-rate check until failedChecks reaches the threshold of 10, then all
// traffic returns to the primary, which still runs 3.1.1.
func TestSimulateSeedRollback(t *testing.T) {
	w := newWorld(t, seedCanary(), "3.1.1").initialized()
	w.measure = failing
	w.deploy("3.1.2")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseFailed))

	if want := []int{5, 0}; !slices.Equal(w.weights, want) {
		t.Errorf("weights %v, want %v", w.weights, want)
	}
	if len(w.promotions) != 0 || w.primary != "3.1.1" || w.canaryUp {
		t.Errorf("promotions %v, primary %q, canary up %v", w.promotions, w.primary, w.canaryUp)
	}
	st := w.cd.Status
	if st.FailedChecks != 10 || st.Phase != v1alpha1.CanaryPhaseFailed {
		t.Errorf("status %+v", st)
	}
	if want := "failed checks threshold reached 10: metric request-success-rate: 90 < 99"; st.Message != want {
		t.Errorf("message %q, want %q", st.Message, want)
	}
	if c := promotedCondition(st); c == nil || c.Reason != "Failed" || c.Status != "False" {
		t.Errorf("Promoted condition %+v", c)
	}
	if len(w.alerts) == 0 || w.alerts[len(w.alerts)-1].Severity != v1alpha1.AlertSeverityError {
		t.Errorf("alerts %v", w.alerts)
	}

	// The failed revision stays failed; the next one is analysed.
	w.measure = healthy
	for range 3 {
		w.step()
	}
	if w.cd.Status.Phase != v1alpha1.CanaryPhaseFailed {
		t.Fatalf("phase %s after a failure without a change", w.cd.Status.Phase)
	}
	w.deploy("3.1.3")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseSucceeded))
	if !slices.Equal(w.promotions, []string{"3.1.3"}) {
		t.Errorf("promotions %v", w.promotions)
	}
}

func promotedCondition(st v1alpha1.CanaryStatus) *struct{ Reason, Status string } {
	for _, c := range st.Conditions {
		if c.Type == v1alpha1.ConditionPromoted {
			return &struct{ Reason, Status string }{c.Reason, string(c.Status)}
		}
	}
	return nil
}

// Gates held closed for a while, then opened (as /gate/open on the load tester would):
// the release waits at each gate without failing a check, then finishes.
func TestSimulateGates(t *testing.T) {
	cd := seedCanary()
	addHook(cd, "approve-rollout", v1alpha1.WebhookConfirmRollout)
	addHook(cd, "approve-step", v1alpha1.WebhookConfirmTrafficIncrease)
	addHook(cd, "approve-promotion", v1alpha1.WebhookConfirmPromotion)
	w := newWorld(t, cd, "r1").initialized()
	open := map[string]bool{}
	asked := map[string]int{}
	w.answer = func(h v1alpha1.CanaryWebhook) WebhookResult {
		asked[h.Name]++
		if asked[h.Name] > 3 { // every gate opens on its fourth question
			open[h.Name] = true
		}
		ok := open[h.Name] || h.GetType() == v1alpha1.WebhookPreRollout || h.GetType() == v1alpha1.WebhookRollout
		return WebhookResult{Name: h.Name, Type: h.GetType(), OK: ok, StatusCode: map[bool]int{true: 200, false: 403}[ok]}
	}
	w.deploy("r2")
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseSucceeded))
	want := []v1alpha1.CanaryPhase{v1alpha1.CanaryPhaseWaiting, v1alpha1.CanaryPhaseProgressing,
		v1alpha1.CanaryPhaseWaitingPromotion, v1alpha1.CanaryPhasePromoting, v1alpha1.CanaryPhaseFinalising,
		v1alpha1.CanaryPhaseSucceeded}
	if !slices.Equal(w.phases, want) {
		t.Errorf("phases %v, want %v", w.phases, want)
	}
	wantWeights(t, w, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 0)
	wantPromotedOnce(t, w)
	if w.cd.Status.FailedChecks != 0 || asked["approve-rollout"] != 4 || asked["approve-promotion"] != 4 {
		t.Errorf("failedChecks %d, gates asked %v", w.cd.Status.FailedChecks, asked)
	}
}
