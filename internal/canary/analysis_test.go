package canary

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// analysing is the seed's release of r2 at weight w, the last round judged at t0.
func analysing(w int) v1alpha1.CanaryStatus {
	s := idleStatus(v1alpha1.CanaryPhaseProgressing, "r2", "r1")
	s.CanaryWeight, s.PreRolloutPassed, s.LastStepTime = w, true, at(0)
	return s
}

// asked is a round of checks asked for at t0+10s.
func asked(s v1alpha1.CanaryStatus) v1alpha1.CanaryStatus {
	s.ChecksRequestedTime = at(10 * time.Second)
	return s
}

// results observes the round's results at t0+11s: the seed's load test and metrics.
func results(successRate, p99 float64, hooks ...WebhookResult) Observations {
	o := obsAt(11*time.Second, "r2")
	o.Metrics = []MetricResult{
		{Name: v1alpha1.MetricRequestSuccessRate, Value: successRate},
		{Name: v1alpha1.MetricRequestDuration, Value: p99},
	}
	o.Webhooks = append([]WebhookResult{{Name: "load-test", Type: v1alpha1.WebhookRollout, OK: true, StatusCode: 202}}, hooks...)
	return o
}

func hook(name string, t v1alpha1.WebhookType, ok bool) WebhookResult {
	code := 200
	if !ok {
		code = 403
	}
	return WebhookResult{Name: name, Type: t, OK: ok, StatusCode: code}
}

func wantWeight(t *testing.T, dec Decision, w int) {
	t.Helper()
	if dec.Status.CanaryWeight != w {
		t.Errorf("canary weight %d, want %d", dec.Status.CanaryWeight, w)
	}
}

func wantFailedChecks(t *testing.T, dec Decision, n int) {
	t.Helper()
	if dec.Status.FailedChecks != n {
		t.Errorf("failedChecks %d, want %d (message %q)", dec.Status.FailedChecks, n, dec.Status.Message)
	}
}

// wantRolledBack checks a rollback: all traffic to the primary, canary scaled to zero.
func wantRolledBack(t *testing.T, dec Decision, why string) {
	t.Helper()
	wantPhase(t, dec, v1alpha1.CanaryPhaseFailed)
	wantWeight(t, dec, 0)
	wantMessage(t, dec, why)
	if !hasAction(dec.Actions, SetWeights{Primary: 100}) || !hasAction(dec.Actions, ScaleCanary{ToZero: true}) {
		t.Errorf("actions %v", dec.Actions)
	}
	wantCondition(t, dec, "Failed", "False")
}

func TestRounds(t *testing.T) { runCases(t, roundCases) }

var roundCases = []decideCase{{
	name: "not due: sleep until the round",
	st:   analysing(10),
	obs:  obsAt(4*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRequeue)
		wantRequeue(t, dec, 6*time.Second)
	},
}, {
	name: "due: ask for the load test and the metrics",
	st:   analysing(10),
	obs:  obsAt(10*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRunWebhooks, KindCheckMetrics, KindRequeue)
		if dec.Actions[0] != (RunWebhooks{Type: v1alpha1.WebhookRollout, Phase: v1alpha1.CanaryPhaseProgressing}) {
			t.Errorf("actions %v", dec.Actions)
		}
		wantRequeue(t, dec, 0)
		if !dec.Status.ChecksRequestedTime.Equal(at(10 * time.Second)) {
			t.Errorf("checksRequestedTime %v", dec.Status.ChecksRequestedTime)
		}
	},
}, {
	name: "the first round runs the pre-rollout hooks, no metrics",
	st: func() v1alpha1.CanaryStatus {
		s := analysing(0)
		s.PreRolloutPassed, s.LastStepTime = false, nil
		return s
	}(),
	obs: obsAt(3*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRunWebhooks, KindRequeue)
		if dec.Actions[0] != (RunWebhooks{Type: v1alpha1.WebhookPreRollout, Phase: v1alpha1.CanaryPhaseProgressing}) {
			t.Errorf("actions %v", dec.Actions)
		}
		wantMessage(t, dec, "starting the analysis of revision r2")
	},
}, {
	name: "pre-rollout passes: the first step",
	st:   func() v1alpha1.CanaryStatus { s := asked(analysing(0)); s.PreRolloutPassed = false; return s }(),
	obs: func() Observations {
		o := obsAt(11*time.Second, "r2")
		o.Webhooks = []WebhookResult{hook("acceptance-test", v1alpha1.WebhookPreRollout, true)}
		return o
	}(),
	check: func(t *testing.T, dec Decision) {
		wantWeight(t, dec, 5)
		if !dec.Status.PreRolloutPassed || !hasAction(dec.Actions, SetWeights{Primary: 95, Canary: 5}) {
			t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
		}
		// Paced from when the round was asked for, not from when it was judged.
		if !dec.Status.LastStepTime.Equal(at(10*time.Second)) || dec.Status.ChecksRequestedTime != nil {
			t.Errorf("lastStepTime %v, checksRequestedTime %v", dec.Status.LastStepTime, dec.Status.ChecksRequestedTime)
		}
		wantRequeue(t, dec, 10*time.Second)
	},
}, {
	name: "pre-rollout fails: a failed check, no step",
	st:   func() v1alpha1.CanaryStatus { s := asked(analysing(0)); s.PreRolloutPassed = false; return s }(),
	obs: func() Observations {
		o := obsAt(11*time.Second, "r2")
		o.Webhooks = []WebhookResult{{Name: "acceptance-test", Type: v1alpha1.WebhookPreRollout, StatusCode: 500, Message: "token missing"}}
		return o
	}(),
	check: func(t *testing.T, dec Decision) {
		wantWeight(t, dec, 0)
		wantFailedChecks(t, dec, 1)
		wantMessage(t, dec, "pre-rollout webhook acceptance-test: status 500: token missing")
		if dec.Status.PreRolloutPassed || hasKind(dec.Actions, KindSetWeights) {
			t.Errorf("status %+v, actions %v", dec.Status, dec.Actions)
		}
	},
}, {
	name: "checks pass: the next step, results recorded",
	st:   asked(analysing(10)),
	obs:  results(99.5, 120),
	check: func(t *testing.T, dec Decision) {
		wantWeight(t, dec, 15)
		wantKinds(t, dec, KindSetWeights, KindEvent, KindRequeue)
		m := dec.Status.LastMetrics
		if len(m) != 2 || !m[0].Passed || m[0].Value != 99.5 || *m[0].ThresholdMin != 99 || *m[1].ThresholdMax != 500 {
			t.Errorf("lastMetrics %+v", m)
		}
		if h := dec.Status.LastWebhooks; len(h) != 1 || h[0].Name != "load-test" || !h[0].Passed {
			t.Errorf("lastWebhooks %+v", h)
		}
		if !dec.Status.LastTransitionTime.Equal(at(11 * time.Second)) {
			t.Errorf("lastTransitionTime %v", dec.Status.LastTransitionTime)
		}
	},
}, {
	name: "a success rate below the minimum fails the round",
	st:   asked(analysing(10)),
	obs:  results(90, 120),
	check: func(t *testing.T, dec Decision) {
		wantWeight(t, dec, 10)
		wantFailedChecks(t, dec, 1)
		wantKinds(t, dec, KindEvent, KindAlert, KindRequeue)
		wantMessage(t, dec, "failed check 1 of 10: metric request-success-rate: 90 < 99")
		if m := dec.Status.LastMetrics[0]; m.Passed || m.Message != "90 < 99" {
			t.Errorf("lastMetrics[0] %+v", m)
		}
	},
}, {
	name: "a latency above the maximum fails the round",
	st:   asked(analysing(10)),
	obs:  results(100, 812.345),
	check: func(t *testing.T, dec Decision) {
		wantFailedChecks(t, dec, 1)
		wantMessage(t, dec, "metric request-duration: 812.35 > 500")
	},
}, {
	name: "a query error fails the round and says why",
	st:   asked(analysing(10)),
	obs: func() Observations {
		o := results(100, 120)
		o.Metrics[0] = MetricResult{Name: v1alpha1.MetricRequestSuccessRate, Err: "connection refused"}
		return o
	}(),
	check: func(t *testing.T, dec Decision) {
		wantFailedChecks(t, dec, 1)
		wantMessage(t, dec, "metric request-success-rate: query failed: connection refused")
		if m := dec.Status.LastMetrics[0]; m.Passed || m.Message != "query failed: connection refused" {
			t.Errorf("lastMetrics[0] %+v", m)
		}
	},
}, {
	name: "a failing load test fails the round",
	st:   asked(analysing(10)),
	obs: func() Observations {
		o := results(100, 120)
		o.Webhooks[0] = WebhookResult{Name: "load-test", Type: v1alpha1.WebhookRollout, Message: "dial tcp: connection refused"}
		return o
	}(),
	check: func(t *testing.T, dec Decision) {
		wantFailedChecks(t, dec, 1)
		wantMessage(t, dec, "rollout webhook load-test: dial tcp: connection refused")
	},
}}

func TestFailedRounds(t *testing.T) { runCases(t, failedRoundCases) }

var failedRoundCases = []decideCase{{
	name: "a muted webhook's failure raises no alert",
	spec: func(cd *v1alpha1.Canary) { cd.Spec.Analysis.Webhooks[1].MuteAlert = true },
	st:   asked(analysing(10)),
	obs: func() Observations {
		o := results(100, 120)
		o.Webhooks[0].OK = false
		return o
	}(),
	check: func(t *testing.T, dec Decision) {
		wantFailedChecks(t, dec, 1)
		wantKinds(t, dec, KindEvent, KindRequeue)
	},
}, {
	name: "failed checks reach the threshold: roll back",
	st:   func() v1alpha1.CanaryStatus { s := asked(analysing(10)); s.FailedChecks = 9; return s }(),
	obs:  results(90, 120),
	check: func(t *testing.T, dec Decision) {
		wantRolledBack(t, dec, "failed checks threshold reached 10: metric request-success-rate: 90 < 99")
		wantFailedChecks(t, dec, 10)
		alerts := actionsOf[Alert](dec.Actions)
		if len(alerts) == 0 || alerts[len(alerts)-1].Severity != v1alpha1.AlertSeverityError {
			t.Errorf("alerts %v", alerts)
		}
	},
}, {
	name: "canary not ready: wait, and ask again to scale it",
	st:   analysing(10),
	obs: func() Observations {
		o := obsAt(10*time.Second, "r2")
		o.CanaryReady = ReadyState{Message: "1/2 instances ready"}
		return o
	}(),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindScaleCanary, KindRequeue)
		wantRequeue(t, dec, 5*time.Second)
		wantMessage(t, dec, "waiting: canary not ready: 1/2 instances ready")
		if !dec.Status.StalledSince.Equal(at(10 * time.Second)) {
			t.Errorf("stalledSince %v", dec.Status.StalledSince)
		}
	},
}, {
	name: "primary not ready: wait",
	st:   analysing(10),
	obs:  func() Observations { o := obsAt(10*time.Second, "r2"); o.PrimaryReady.Ready = false; return o }(),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRequeue)
		wantMessage(t, dec, "waiting: primary not ready")
	},
}, {
	name: "not ready past progressDeadlineSeconds: roll back",
	st:   func() v1alpha1.CanaryStatus { s := analysing(10); s.StalledSince = at(-55 * time.Second); return s }(),
	obs:  func() Observations { o := obsAt(10*time.Second, "r2"); o.CanaryReady.Ready = false; return o }(),
	check: func(t *testing.T, dec Decision) {
		wantRolledBack(t, dec, "progress deadline exceeded: canary not ready")
	},
}, {
	name: "results lost in a restart are asked for again",
	st:   asked(analysing(10)),
	obs:  obsAt(12*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRunWebhooks, KindCheckMetrics, KindRequeue)
		wantFailedChecks(t, dec, 0)
		if !dec.Status.ChecksRequestedTime.Equal(at(10 * time.Second)) {
			t.Errorf("checksRequestedTime %v", dec.Status.ChecksRequestedTime)
		}
	},
}, {
	name: "results that never come count as failures after the deadline",
	st:   asked(analysing(10)),
	obs:  obsAt(75*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantFailedChecks(t, dec, 1)
		wantMessage(t, dec, "rollout webhook load-test: no answer; metric request-success-rate: no result")
	},
}, {
	name: "a round without checks is judged at once",
	spec: func(cd *v1alpha1.Canary) { cd.Spec.Analysis.Metrics, cd.Spec.Analysis.Webhooks = nil, nil },
	st:   analysing(10),
	obs:  obsAt(10*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindSetWeights, KindEvent, KindRequeue)
		wantWeight(t, dec, 15)
	},
}}

func TestReadiness(t *testing.T) { runCases(t, readinessCases) }

var readinessCases = []decideCase{{
	name: "a passing round ends a stall",
	st:   func() v1alpha1.CanaryStatus { s := asked(analysing(10)); s.StalledSince = at(0); return s }(),
	obs:  results(100, 120),
	check: func(t *testing.T, dec Decision) {
		if dec.Status.StalledSince != nil {
			t.Errorf("stalledSince %v", dec.Status.StalledSince)
		}
	},
}}

// noData observes no success-rate data.
func noData(o Observations) Observations {
	o.Metrics[0] = MetricResult{Name: v1alpha1.MetricRequestSuccessRate, NoData: true}
	return o
}

func policy(p v1alpha1.NoDataPolicy) func(*v1alpha1.Canary) {
	return func(cd *v1alpha1.Canary) { cd.Spec.Analysis.NoData = p }
}

func TestNoData(t *testing.T) { runCases(t, noDataCases) }

var noDataCases = []decideCase{{
	name: "fail (the default, as Flagger): a failed check",
	st:   asked(analysing(10)),
	obs:  noData(results(0, 120)),
	check: func(t *testing.T, dec Decision) {
		wantFailedChecks(t, dec, 1)
		wantWeight(t, dec, 10)
		wantMessage(t, dec, "metric request-success-rate: no data")
	},
}, {
	name: "skip: the metric is left out of this round",
	spec: policy(v1alpha1.NoDataSkip),
	st:   asked(analysing(10)),
	obs:  noData(results(0, 120)),
	check: func(t *testing.T, dec Decision) {
		wantFailedChecks(t, dec, 0)
		wantWeight(t, dec, 15)
		if m := dec.Status.LastMetrics[0]; m.Passed || m.Message != "no data; skipped" {
			t.Errorf("lastMetrics[0] %+v", m)
		}
	},
}, {
	name: "wait: no step and no failure",
	spec: policy(v1alpha1.NoDataWait),
	st:   asked(analysing(10)),
	obs:  noData(results(0, 120)),
	check: func(t *testing.T, dec Decision) {
		wantFailedChecks(t, dec, 0)
		wantWeight(t, dec, 10)
		wantMessage(t, dec, "waiting: no data for request-success-rate")
		wantRequeue(t, dec, 10*time.Second)
		if dec.Status.StalledSince == nil {
			t.Error("stalledSince not set")
		}
	},
}, {
	name: "wait: the progress deadline still applies",
	spec: policy(v1alpha1.NoDataWait),
	st: func() v1alpha1.CanaryStatus {
		s := asked(analysing(10))
		s.StalledSince = at(-50 * time.Second)
		return s
	}(),
	obs: noData(results(0, 120)),
	check: func(t *testing.T, dec Decision) {
		wantRolledBack(t, dec, "progress deadline exceeded: no data for request-success-rate")
	},
}, {
	name: "wait: another metric's failure still counts",
	spec: policy(v1alpha1.NoDataWait),
	st:   asked(analysing(10)),
	obs:  noData(results(0, 900)),
	check: func(t *testing.T, dec Decision) {
		wantFailedChecks(t, dec, 1)
		wantMessage(t, dec, "request-duration: 900 > 500")
	},
}, {
	name: "NaN is no data",
	st:   asked(analysing(10)),
	obs:  results(math.NaN(), 120),
	check: func(t *testing.T, dec Decision) {
		wantFailedChecks(t, dec, 1)
		wantMessage(t, dec, "request-success-rate: no data")
	},
}}

func withRollbackHook(cd *v1alpha1.Canary) { addHook(cd, "rollback-check", v1alpha1.WebhookRollback) }

func TestRollbackHook(t *testing.T) { runCases(t, rollbackHookCases) }

var rollbackHookCases = []decideCase{{
	name: "asked first, every round",
	spec: withRollbackHook,
	st:   analysing(10),
	obs:  obsAt(10*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		hooks := actionsOf[RunWebhooks](dec.Actions)
		if len(hooks) != 2 || hooks[0].Type != v1alpha1.WebhookRollback || hooks[1].Type != v1alpha1.WebhookRollout {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}, {
	name: "a 2xx answer rolls back at once, whatever the checks say",
	spec: withRollbackHook,
	st:   asked(analysing(10)),
	obs:  results(100, 120, hook("rollback-check", v1alpha1.WebhookRollback, true)),
	check: func(t *testing.T, dec Decision) {
		wantRolledBack(t, dec, "rollback webhook rollback-check asked for a rollback")
		wantFailedChecks(t, dec, 0)
	},
}, {
	name: "any other answer changes nothing",
	spec: withRollbackHook,
	st:   asked(analysing(10)),
	obs:  results(100, 120, hook("rollback-check", v1alpha1.WebhookRollback, false)),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseProgressing)
		wantWeight(t, dec, 15)
	},
}, {
	name: "WaitingPromotion too",
	spec: withRollbackHook,
	st: func() v1alpha1.CanaryStatus {
		s := asked(analysing(50))
		s.Phase = v1alpha1.CanaryPhaseWaitingPromotion
		return s
	}(),
	obs: results(100, 120, hook("rollback-check", v1alpha1.WebhookRollback, true)),
	check: func(t *testing.T, dec Decision) {
		wantRolledBack(t, dec, "rollback webhook")
	},
}}

func trafficGate(cd *v1alpha1.Canary) {
	addHook(cd, "traffic-gate", v1alpha1.WebhookConfirmTrafficIncrease)
}

func promotionGate(cd *v1alpha1.Canary) {
	addHook(cd, "promotion-gate", v1alpha1.WebhookConfirmPromotion)
}

func waitingPromotion() v1alpha1.CanaryStatus {
	s := asked(analysing(50))
	s.Phase = v1alpha1.CanaryPhaseWaitingPromotion
	s.Message = "waiting for promotion approval (promotion-gate)"
	return s
}

func TestGates(t *testing.T) { runCases(t, gateCases) }

var gateCases = []decideCase{{
	name: "held before the first step: only the gate is asked again, no metrics without traffic",
	spec: trafficGate,
	st:   analysing(0),
	obs:  obsAt(10*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		wantKinds(t, dec, KindRunWebhooks, KindRequeue)
		if dec.Actions[0] != (RunWebhooks{Type: v1alpha1.WebhookConfirmTrafficIncrease, Phase: v1alpha1.CanaryPhaseProgressing}) {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}, {
	name: "confirm-traffic-increase is asked with the round",
	spec: trafficGate,
	st:   analysing(10),
	obs:  obsAt(10*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		hooks := actionsOf[RunWebhooks](dec.Actions)
		if len(hooks) != 2 || hooks[1].Type != v1alpha1.WebhookConfirmTrafficIncrease {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}, {
	name: "confirm-traffic-increase closed: no step, no failure",
	spec: trafficGate,
	st:   asked(analysing(10)),
	obs:  results(100, 120, hook("traffic-gate", v1alpha1.WebhookConfirmTrafficIncrease, false)),
	check: func(t *testing.T, dec Decision) {
		wantWeight(t, dec, 10)
		wantFailedChecks(t, dec, 0)
		wantMessage(t, dec, "waiting for approval of the traffic increase (traffic-gate)")
		wantRequeue(t, dec, 10*time.Second)
	},
}, {
	name:  "confirm-traffic-increase open: the step",
	spec:  trafficGate,
	st:    asked(analysing(10)),
	obs:   results(100, 120, hook("traffic-gate", v1alpha1.WebhookConfirmTrafficIncrease, true)),
	check: func(t *testing.T, dec Decision) { wantWeight(t, dec, 15) },
}, {
	name: "confirm-promotion is not asked before maxWeight",
	spec: promotionGate,
	st:   analysing(45),
	obs:  obsAt(10*time.Second, "r2"),
	check: func(t *testing.T, dec Decision) {
		if hooks := actionsOf[RunWebhooks](dec.Actions); len(hooks) != 1 {
			t.Errorf("actions %v", dec.Actions)
		}
	},
}, {
	name: "confirm-promotion closed at maxWeight: WaitingPromotion",
	spec: promotionGate,
	st:   asked(analysing(50)),
	obs:  results(100, 120, hook("promotion-gate", v1alpha1.WebhookConfirmPromotion, false)),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseWaitingPromotion)
		wantWeight(t, dec, 50)
		wantCondition(t, dec, "WaitingPromotion", "Unknown")
		wantKinds(t, dec, KindEvent, KindAlert, KindRequeue)
	},
}, {
	name: "still closed: the checks go on, no new alert",
	spec: promotionGate,
	st:   waitingPromotion(),
	obs:  results(100, 120, hook("promotion-gate", v1alpha1.WebhookConfirmPromotion, false)),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseWaitingPromotion)
		wantKinds(t, dec, KindRequeue)
	},
}, {
	name: "failing checks while waiting for promotion count",
	spec: promotionGate,
	st:   waitingPromotion(),
	obs:  results(50, 120, hook("promotion-gate", v1alpha1.WebhookConfirmPromotion, true)),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseWaitingPromotion)
		wantFailedChecks(t, dec, 1)
	},
}, {
	name: "confirm-promotion open: promote",
	spec: promotionGate,
	st:   waitingPromotion(),
	obs:  results(100, 120, hook("promotion-gate", v1alpha1.WebhookConfirmPromotion, true)),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhasePromoting)
		if !hasAction(dec.Actions, PromotePrimary{Revision: "r2"}) {
			t.Errorf("actions %v", dec.Actions)
		}
		wantCondition(t, dec, "Promoting", "Unknown")
	},
}, {
	name: "an unanswered gate stays closed",
	spec: promotionGate,
	st:   asked(analysing(50)),
	obs:  results(100, 120),
	check: func(t *testing.T, dec Decision) {
		wantPhase(t, dec, v1alpha1.CanaryPhaseWaitingPromotion)
		if !strings.Contains(dec.Status.Message, "promotion-gate") {
			t.Errorf("message %q", dec.Status.Message)
		}
	},
}}
