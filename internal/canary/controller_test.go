package canary_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/workload"
)

// Given a Workload and its Canary, when the controller starts, then it creates the
// primary workload and the mesh objects Flagger's App Mesh router makes, routes all
// traffic to the primary and parks the target.
func TestInitializeCreatesPrimaryAndMesh(t *testing.T) {
	h := newHarness(t)
	h.initialized(seedCanary())

	primary := h.workload("podinfo-primary")
	if primary.Spec.Labels["app"] != "podinfo-primary" || primary.Labels[workload.LabelRole] != "primary" || primary.GetReplicas() != 2 {
		t.Errorf("primary: labels %v / %v, replicas %d", primary.Spec.Labels, primary.Labels, primary.GetReplicas())
	}
	if got := h.workload("podinfo").GetReplicas(); got != 0 {
		t.Errorf("target replicas %d after initialization, want 0", got)
	}
	if p, c := h.weights(); p != 100 || c != 0 {
		t.Errorf("weights %d/%d, want 100/0", p, c)
	}
	for _, tc := range []struct{ name, selector, dns string }{
		{"podinfo-primary", "podinfo-primary", "podinfo-primary.demo"},
		{"podinfo-canary", "podinfo", "podinfo-canary.demo"},
	} {
		vn := h.get("VirtualNode", tc.name).(*v1alpha1.VirtualNode)
		if vn.Spec.PodSelector.MatchLabels["app"] != tc.selector || vn.Spec.ServiceDiscovery.DNS.Hostname != tc.dns ||
			vn.Spec.Listeners[0].PortMapping.Port != 9898 || vn.Spec.Listeners[0].PortMapping.Protocol != "http" ||
			vn.Spec.MeshRef.Name != meshName || vn.Annotations[canary.AnnotationOwner] != "Canary/demo/podinfo" {
			t.Errorf("virtual node %s: %+v, annotations %v", tc.name, vn.Spec, vn.Annotations)
		}
	}
	vr := h.get("VirtualRouter", "podinfo").(*v1alpha1.VirtualRouter)
	rp := vr.Spec.Routes[0].HTTPRoute.RetryPolicy
	if rp == nil || rp.MaxRetries != 3 || rp.PerRetryTimeout.Value != 1000 || len(rp.HTTPRetryEvents) != 3 {
		t.Errorf("retry policy %+v", rp)
	}
	for name, aws := range map[string]string{"podinfo": "podinfo.demo", "podinfo-canary": "podinfo-canary.demo", "podinfo-primary": "podinfo-primary.demo"} {
		vs := h.get("VirtualService", name).(*v1alpha1.VirtualService)
		if *vs.Spec.AWSName != aws {
			t.Errorf("virtual service %s: awsName %s, want %s", name, *vs.Spec.AWSName, aws)
		}
	}
	cd := h.canary()
	if cd.Status.LastAppliedSpec == "" || cd.Status.LastPromotedSpec != cd.Status.LastAppliedSpec {
		t.Errorf("status after initialization: %+v", cd.Status)
	}
	if h.target.promotions.Load() != 0 {
		t.Error("the first revision was promoted; it is initialised, never analysed")
	}
}

// Given an initialised Canary, when a new revision appears and the canary is healthy,
// then the weights move 20, 40, 60 one interval apart, the target's spec is copied to
// the primary exactly once, all traffic returns to the primary, and the controller's
// metrics show the release.
func TestNewRevisionProgressesAndPromotesOnce(t *testing.T) {
	h := newHarness(t)
	h.windows.set("demo/podinfo-canary", healthy)
	h.initialized(seedCanary())

	h.release("3.1.1")
	rev := h.workload("podinfo").Revision()
	var seen []int64
	h.until("Succeeded", 40, func() bool {
		if _, c := h.weights(); len(seen) == 0 || seen[len(seen)-1] != c {
			seen = append(seen, c)
		}
		return h.canary().Status.Phase == v1alpha1.CanaryPhaseSucceeded
	})
	if want := []int64{0, 20, 40, 60, 0}; !slices.Equal(seen, want) {
		t.Errorf("canary weights %v, want %v", seen, want)
	}
	if n := h.target.promotions.Load(); n != 1 {
		t.Errorf("%d promotions, want 1", n)
	}
	primary := h.workload("podinfo-primary")
	if primary.Annotations[workload.AnnotationPromotedRevision] != rev || primary.Spec.Env[0].Value != "3.1.1" {
		t.Errorf("primary after promotion: %v %v", primary.Annotations, primary.Spec.Env)
	}
	if got := h.workload("podinfo").GetReplicas(); got != 0 {
		t.Errorf("target replicas %d after promotion, want 0", got)
	}
	cd := h.canary()
	if len(cd.Status.LastMetrics) != 2 || cd.Status.LastMetrics[0].Value != 100 || !cd.Status.LastMetrics[0].Passed {
		t.Errorf("lastMetrics %+v", cd.Status.LastMetrics)
	}

	body := scrape(t, h)
	for _, want := range []string{
		`canarymesh_canary_status{name="podinfo",namespace="demo"} 1`,
		`canarymesh_canary_weight{namespace="demo",workload="podinfo"} 0`,
		`canarymesh_canary_weight{namespace="demo",workload="podinfo-primary"} 100`,
		`canarymesh_canary_total{namespace="demo"} 1`,
		`canarymesh_canary_metric_analysis{metric="request-success-rate",name="podinfo",namespace="demo"} 100`,
		`canarymesh_canary_successes_total{analysis_status="completed",deployment_strategy="canary",name="podinfo",namespace="demo"} 1`,
		`canarymesh_canary_duration_seconds_count{name="podinfo",namespace="demo"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func scrape(t *testing.T, h *harness) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.stats.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// Given a new revision whose canary answers half its requests with 500s, when two
// rounds fail (threshold 2), then the release rolls back: all traffic on the primary,
// the target parked, nothing promoted.
func TestFailingSuccessRateRollsBack(t *testing.T) {
	h := newHarness(t)
	h.windows.set("demo/podinfo-canary", failing)
	h.initialized(seedCanary())
	promoted := h.canary().Status.LastPromotedSpec

	h.release("3.1.2")
	h.until("Failed", 30, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseFailed })
	cd := h.canary()
	if cd.Status.FailedChecks != 2 || cd.Status.CanaryWeight != 0 || !strings.Contains(cd.Status.Message, "50 < 99") {
		t.Errorf("status after rollback: failedChecks %d, weight %d, message %q", cd.Status.FailedChecks, cd.Status.CanaryWeight, cd.Status.Message)
	}
	if p, c := h.weights(); p != 100 || c != 0 {
		t.Errorf("weights %d/%d after rollback, want 100/0", p, c)
	}
	if got := h.workload("podinfo").GetReplicas(); got != 0 {
		t.Errorf("target replicas %d after rollback, want 0", got)
	}
	if n := h.target.promotions.Load(); n != 0 || h.workload("podinfo-primary").Annotations[workload.AnnotationPromotedRevision] != promoted {
		t.Errorf("%d promotions; the primary must keep the promoted revision", n)
	}
	if evs := h.events()["RolledBack"]; len(evs) != 1 {
		t.Errorf("RolledBack events: %d", len(evs))
	}
	if body := scrape(t, h); !strings.Contains(body, `canarymesh_canary_failures_total{analysis_status="completed",deployment_strategy="canary",name="podinfo",namespace="demo"} 1`) ||
		!strings.Contains(body, `canarymesh_canary_status{name="podinfo",namespace="demo"} 2`) {
		t.Errorf("/metrics after a rollback:\n%s", body)
	}
}

// Given a Canary with revertOnDeletion, when it is deleted through the API, then it is
// held by its finalizer until the target has its replicas and all the traffic back, and
// then it is gone.
func TestRevertOnDeletionThroughTheAPI(t *testing.T) {
	h := newHarness(t)
	cd := seedCanary()
	cd.Spec.RevertOnDeletion = true
	h.initialized(cd)
	if got := h.canary().Finalizers; !slices.Contains(got, canary.FinalizerRevert) {
		t.Fatalf("finalizers %v, want %s", got, canary.FinalizerRevert)
	}
	k, _ := v1alpha1.LookupKind("Canary")
	if err := h.api.Delete(context.Background(), k, ns, "podinfo"); err != nil {
		t.Fatal(err)
	}
	h.until("gone", 10, func() bool {
		_, err := h.st.Get(context.Background(), store.Key{Kind: "Canary", Namespace: ns, Name: "podinfo"})
		return errors.Is(err, store.ErrNotFound)
	})
	if got := h.workload("podinfo").GetReplicas(); got != 2 {
		t.Errorf("target replicas %d after revert, want 2", got)
	}
	if p, c := h.weights(); p != 0 || c != 100 {
		t.Errorf("weights %d/%d after revert, want 0/100", p, c)
	}
}

// Given a Canary without revertOnDeletion, when it is deleted, then it goes at once and
// the primary and the mesh objects stay, as Flagger leaves them.
func TestDeletionWithoutRevertLeavesThePrimary(t *testing.T) {
	h := newHarness(t)
	h.initialized(seedCanary())
	if len(h.canary().Finalizers) != 0 {
		t.Fatalf("finalizers %v without revertOnDeletion", h.canary().Finalizers)
	}
	k, _ := v1alpha1.LookupKind("Canary")
	if err := h.api.Delete(context.Background(), k, ns, "podinfo"); err != nil {
		t.Fatal(err)
	}
	h.tick()
	h.workload("podinfo-primary")
	h.get("VirtualRouter", "podinfo")
}

// Given a controller with OnRun, when a release is analysed, then every run asked for
// is reported with the time it was due, never after it started and no later than the
// fake clock's step, and the runs that started the analysis' rounds are marked, an
// interval or more apart.
func TestOnRunReportsWhenRunsWereDue(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var timings []canary.RunTiming
	h.onRun = func(rt canary.RunTiming) {
		mu.Lock()
		defer mu.Unlock()
		timings = append(timings, rt)
	}
	h.windows.set("demo/podinfo-canary", healthy)
	h.initialized(seedCanary())
	h.release("3.1.1")
	h.until("Succeeded", 40, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseSucceeded })

	mu.Lock()
	defer mu.Unlock()
	paced, atOnce := 0, 0
	var steps []time.Time
	for _, rt := range timings {
		if rt.Round {
			steps = append(steps, rt.Start)
		}
		if rt.Due.IsZero() {
			continue
		}
		switch lag := rt.Start.Sub(rt.Due); {
		case lag < 0 || lag >= step:
			t.Errorf("run due at %v started at %v", rt.Due, rt.Start)
		case rt.Wait > 0:
			paced++
		default:
			atOnce++
		}
	}
	if paced < 3 || atOnce < 3 {
		t.Errorf("%d paced and %d immediate runs reported of %d", paced, atOnce, len(timings))
	}
	// The first step (weight 20, no checks yet), then the rounds at 20, 40 and 60.
	if len(steps) != 4 {
		t.Fatalf("%d steps marked: %v", len(steps), steps)
	}
	for i := 1; i < len(steps); i++ {
		if d := steps[i].Sub(steps[i-1]); d < 10*time.Second {
			t.Errorf("steps %d and %d only %v apart; the interval is 10s", i-1, i, d)
		}
	}
}
