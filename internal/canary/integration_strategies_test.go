package canary_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/loadtest"
)

// These tests run the strategies of DESIGN.md on the real stack of integration_test.go:
// the demo app as real processes, the supervisor, the push stream, the in-process proxies
// and the controller with a real clock, all analysed every second.

func phaseIs(p v1alpha1.CanaryPhase) func(*v1alpha1.Canary) bool {
	return func(cd *v1alpha1.Canary) bool { return cd.Status.Phase == p }
}

func metricResult(cd *v1alpha1.Canary, name string) (v1alpha1.CanaryMetricResult, bool) {
	for _, m := range cd.Status.LastMetrics {
		if m.Name == name {
			return m, true
		}
	}
	return v1alpha1.CanaryMetricResult{}, false
}

// backOnPrimary waits until the apex route sends everything to the primary and the
// proxies have caught up with it (a run of answers from want: the route reaches them
// after the store), then checks that the primary keeps answering with want.
func (s *stack) backOnPrimary(want string) {
	s.t.Helper()
	s.watch("the route back on the primary", 10*time.Second, func(*v1alpha1.Canary) bool {
		p, c := s.h.weights()
		return p == 100 && c == 0
	})
	run := 0
	s.watch("a run of "+want+" answers", 20*time.Second, func(*v1alpha1.Canary) bool {
		if s.version() == want {
			run++
		} else {
			run = 0
		}
		return run >= 10
	})
	for range 5 {
		if v := s.version(); v != want {
			s.t.Errorf("podinfo.demo answers %q, want %s", v, want)
		}
	}
}

// Given podinfo 3.1.0 under load, when 3.1.1 answers every request 600ms late (demo-app
// --delay), then its P99 fails request-duration (max 500 ms) while its success rate
// passes, two failed checks roll it back, and 3.1.0 serves everything again.
func TestRollbackOnLatencyWithRealProcesses(t *testing.T) {
	s := newStack(t)
	s.initialized(fastCanary())
	stopLoad := s.load("podinfo.demo", nil, 50)

	s.release(app{version: "3.1.1", delay: 600 * time.Millisecond})
	weights := s.watch("Failed", 60*time.Second, phaseIs(v1alpha1.CanaryPhaseFailed))
	if !isSubsequence([]int{20}, weights) {
		t.Errorf("weights seen %v: the slow canary never had traffic", weights)
	}
	got := s.h.canary()
	if got.Status.FailedChecks < 2 || !strings.Contains(got.Status.Message, "metric request-duration") {
		t.Errorf("after the rollback: failedChecks %d, message %q", got.Status.FailedChecks, got.Status.Message)
	}
	if d, ok := metricResult(got, "request-duration"); !ok || d.Passed || d.Value < 500 {
		t.Errorf("request-duration of the slow canary: %+v", d)
	}
	if sr, ok := metricResult(got, "request-success-rate"); !ok || !sr.Passed {
		t.Errorf("request-success-rate of the slow canary: %+v (the delay alone should fail it)", sr)
	}
	s.backOnPrimary("3.1.0")
	if res := stopLoad(); res == nil || res.Requests == 0 {
		t.Error("the load generator sent nothing")
	}
}

var insider = http.Header{"X-Canary": {"insider"}}

// Given podinfo 3.1.0 and a Canary with analysis.iterations and a match on the header
// x-canary: insider, when 3.1.1 is released, then during the analysis the requests with
// the header reach 3.1.1 and the others 3.1.0, no weight moves, and after the iterations
// 3.1.1 is promoted for everyone.
func TestABTestingByHeaderWithRealProcesses(t *testing.T) {
	s := newStack(t)
	cd := fastCanary()
	an := cd.Spec.Analysis
	an.StepWeight, an.MaxWeight, an.Iterations = 0, 0, 5
	an.Match = []v1alpha1.HTTPMatchRequest{{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "insider"}}}}
	s.initialized(cd)
	stopInsiders := s.load("podinfo.demo", insider, 40)
	stopOthers := s.load("podinfo.demo", nil, 40)

	s.release(app{version: "3.1.1"})
	// A sample counts when the analysis ran before and after it: the primary still ran
	// 3.1.0, and from the second iteration on the match route had been in place a round.
	var insiders, others, strays []string
	maxWeight := 0
	s.watch("Succeeded", 60*time.Second, func(cd *v1alpha1.Canary) bool {
		maxWeight = max(maxWeight, cd.Status.CanaryWeight)
		if cd.Status.Phase != v1alpha1.CanaryPhaseProgressing || cd.Status.Iterations < 2 {
			return cd.Status.Phase == v1alpha1.CanaryPhaseSucceeded
		}
		in, out := s.ask("podinfo.demo", insider), s.version()
		if after := s.h.canary().Status; after.Phase == v1alpha1.CanaryPhaseProgressing && after.Iterations < an.Iterations {
			insiders, others = append(insiders, in), append(others, out)
			if in != "3.1.1" || out != "3.1.0" {
				strays = append(strays, "insider "+in+", other "+out)
			}
		}
		return false
	})
	if len(insiders) < 3 || len(strays) > 0 {
		t.Errorf("during the analysis, %d samples; routed wrong: %v", len(insiders), strays)
	}
	if maxWeight != 0 {
		t.Errorf("A/B testing moved the canary weight to %d; it routes by header only", maxWeight)
	}
	if n := len(s.h.events()["Promote"]); n == 0 {
		t.Error("no Promote event")
	}
	s.backOnPrimary("3.1.1")
	if v := s.ask("podinfo.demo", insider); v != "3.1.1" {
		t.Errorf("after the promotion an insider gets %q, want 3.1.1", v)
	}
	for _, stop := range []func() *loadtest.Result{stopInsiders, stopOthers} {
		if res := stop(); res == nil || res.Requests == 0 {
			t.Error("a load generator sent nothing")
		}
	}
}

// Given podinfo 3.1.0 and a Canary with analysis.iterations and no match (blue/green),
// when 3.1.1 is released, then the analysis counts its iterations on traffic sent to
// podinfo-canary.demo while the apex route keeps weight 0 on the canary and
// podinfo.demo answers 3.1.0; then 3.1.1 is promoted.
func TestBlueGreenByIterationsWithRealProcesses(t *testing.T) {
	s := newStack(t)
	cd := fastCanary()
	an := cd.Spec.Analysis
	an.StepWeight, an.MaxWeight, an.Iterations = 0, 0, 3
	s.initialized(cd)
	stopLoad := s.load("podinfo.demo", nil, 20)

	s.release(app{version: "3.1.1"})
	// As in Flagger's blue/green tutorial, load goes to the canary's own service once the
	// analysis runs (its first iteration needs no metrics): a request sent before the
	// proxies knew the canary's instances would be a 503 held against it.
	s.watch("the first iteration", 30*time.Second, func(cd *v1alpha1.Canary) bool { return cd.Status.Iterations >= 1 })
	stopCanaryLoad := s.load("podinfo-canary.demo", nil, 100)
	seen := map[int]bool{}
	var leaks []string
	s.watch("Succeeded", 60*time.Second, func(cd *v1alpha1.Canary) bool {
		st := cd.Status
		if st.Phase != v1alpha1.CanaryPhaseProgressing || st.Iterations >= an.Iterations {
			return st.Phase == v1alpha1.CanaryPhaseSucceeded
		}
		seen[st.Iterations] = true
		p, c := s.h.weights()
		v := s.version()
		if after := s.h.canary().Status; after.Phase == v1alpha1.CanaryPhaseProgressing && after.Iterations < an.Iterations &&
			(st.CanaryWeight != 0 || c != 0 || p != 100 || v != "3.1.0") {
			leaks = append(leaks, fmt.Sprintf("weight %d, route %d/%d, answer %s", st.CanaryWeight, p, c, v))
		}
		return false
	})
	for i := 1; i < an.Iterations; i++ {
		if !seen[i] {
			t.Errorf("iteration %d never seen during the analysis (seen %v)", i, seen)
		}
	}
	if len(leaks) > 0 {
		t.Errorf("traffic reached the canary through the apex during the iterations: %v", leaks)
	}
	if m, ok := metricResult(s.h.canary(), "request-success-rate"); !ok || !m.Passed {
		t.Errorf("the iterations ran without a passing success rate: %+v", m)
	}
	s.backOnPrimary("3.1.1")
	stopLoad()
	if res := stopCanaryLoad(); res == nil || res.Requests == 0 {
		t.Error("the canary's load generator sent nothing")
	}
}

// Given podinfo 3.1.0 and a Canary whose confirm-promotion webhook is the load tester's
// /gate/check, when 3.1.1 has passed its analysis up to maxWeight, then it waits in
// WaitingPromotion, its weight held, while the gate is closed; when the gate is opened
// with POST /gate/open, then 3.1.1 is promoted.
func TestConfirmPromotionGateWithRealProcesses(t *testing.T) {
	s := newStack(t)
	tester := loadtest.NewService(loadtest.ServiceOptions{})
	srv := httptest.NewServer(tester)
	t.Cleanup(func() { srv.Close(); tester.Close() })
	cd := fastCanary()
	cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = 25, 50
	cd.Spec.Analysis.Webhooks = []v1alpha1.CanaryWebhook{{Name: "ask-before-promotion",
		Type: v1alpha1.WebhookConfirmPromotion, URL: srv.URL + "/gate/check", Timeout: "2s"}}
	s.initialized(cd)
	stopLoad := s.load("podinfo.demo", nil, 50)

	s.release(app{version: "3.1.1"})
	s.watch("WaitingPromotion", 60*time.Second, phaseIs(v1alpha1.CanaryPhaseWaitingPromotion))
	// Closed, the gate holds the release for rounds on end.
	waitingSince := time.Now()
	for time.Since(waitingSince) < 3*time.Second {
		cd := s.h.canary()
		if st := cd.Status; st.Phase != v1alpha1.CanaryPhaseWaitingPromotion || st.CanaryWeight != 50 {
			t.Fatalf("with the gate closed: phase %s, weight %d, message %q", st.Phase, st.CanaryWeight, st.Message)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(s.h.events()["Promote"]) != 0 {
		t.Error("promoted with the gate closed")
	}
	var gate *v1alpha1.CanaryWebhookResult
	for i, r := range s.h.canary().Status.LastWebhooks {
		if r.Name == "ask-before-promotion" {
			gate = &s.h.canary().Status.LastWebhooks[i]
		}
	}
	if gate == nil || gate.Passed || gate.StatusCode != http.StatusForbidden {
		t.Errorf("the closed gate's last answer: %+v", gate)
	}

	resp, err := http.Post(srv.URL+"/gate/open", "application/json", bytes.NewBufferString(`{"name":"podinfo","namespace":"demo"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !tester.GateOpen("podinfo.demo") {
		t.Fatalf("POST /gate/open: status %d", resp.StatusCode)
	}
	s.watch("Succeeded", 30*time.Second, phaseIs(v1alpha1.CanaryPhaseSucceeded))
	if n := len(s.h.events()["Approved"]); n == 0 {
		t.Error("no Approved event after the gate opened")
	}
	s.backOnPrimary("3.1.1")
	stopLoad()
}

// Given podinfo 3.1.0, when the next revision's command does not exist, then the
// canary fails at once with that reason — not after progressDeadlineSeconds, which is
// set to ten minutes here — and 3.1.0 keeps serving.
func TestMissingCommandFailsAtOnceWithRealProcesses(t *testing.T) {
	s := newStack(t)
	cd := fastCanary()
	cd.Spec.ProgressDeadlineSeconds = ptr(int32(600))
	s.initialized(cd)

	ctx := context.Background()
	for range 10 {
		w := s.h.workload("podinfo")
		w.Spec.Command = []string{filepath.Join(t.TempDir(), "no-such-podinfo")}
		if _, err := s.h.st.Update(ctx, w); err == nil {
			break
		}
	}
	s.watch("Failed", 30*time.Second, phaseIs(v1alpha1.CanaryPhaseFailed))
	got := s.h.canary()
	if !strings.Contains(got.Status.Message, "CommandNotFound") || got.Status.CanaryWeight != 0 {
		t.Errorf("after the rollback: weight %d, message %q, want CommandNotFound", got.Status.CanaryWeight, got.Status.Message)
	}
	s.backOnPrimary("3.1.0")
}
