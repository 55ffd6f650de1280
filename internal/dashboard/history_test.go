package dashboard

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func at(s int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(s) * time.Second)) }

func ptr[T any](v T) *T { return &v }

// status builds a canary at one moment of a release.
func status(rev string, phase v1alpha1.CanaryPhase, weight, step, transition int, sr, p99 float64) *v1alpha1.Canary {
	cd := &v1alpha1.Canary{}
	cd.Namespace, cd.Name = "demo", "podinfo"
	cd.Spec.Analysis = &v1alpha1.CanaryAnalysis{Metrics: []v1alpha1.CanaryMetric{
		{Name: v1alpha1.MetricRequestSuccessRate, ThresholdRange: &v1alpha1.CanaryThresholdRange{Min: ptr(99.0)}},
		{Name: v1alpha1.MetricRequestDuration, Threshold: 500},
	}}
	st := &cd.Status
	st.Phase, st.CanaryWeight, st.LastAppliedSpec, st.LastTransitionTime = phase, weight, rev, at(transition)
	if step >= 0 {
		st.LastStepTime = ptr(at(step))
		st.LastMetrics = []v1alpha1.CanaryMetricResult{
			{Name: v1alpha1.MetricRequestSuccessRate, Value: sr, Passed: sr >= 99},
			{Name: v1alpha1.MetricRequestDuration, Value: p99, Passed: p99 <= 500},
		}
	}
	return cd
}

func TestHistoryFromStatusChanges(t *testing.T) {
	b := newHistoryBook()
	seen := func(cd *v1alpha1.Canary) { b.observe(store.Event{Type: store.Modified, Object: cd}) }
	seen(status("old", v1alpha1.CanaryPhaseInitialized, 0, -1, 0, 0, 0))
	seen(status("r1", v1alpha1.CanaryPhaseProgressing, 0, -1, 10, 0, 0))
	seen(status("r1", v1alpha1.CanaryPhaseProgressing, 10, 12, 10, 100, 20))
	seen(status("r1", v1alpha1.CanaryPhaseProgressing, 10, 12, 10, 100, 20)) // the same status again: no new point
	seen(status("r1", v1alpha1.CanaryPhaseProgressing, 20, 14, 10, 98, 40))
	seen(status("r1", v1alpha1.CanaryPhaseProgressing, 20, 16, 10, 100, 30)) // a step that held the weight
	seen(status("r1", v1alpha1.CanaryPhasePromoting, 20, 18, 18, 100, 30))
	seen(status("r1", v1alpha1.CanaryPhaseSucceeded, 0, 18, 22, 100, 30))

	h, ok := b.get("demo/podinfo")
	if !ok {
		t.Fatal("no history kept")
	}
	var weights []int
	for _, p := range h.Points {
		weights = append(weights, p.Weight)
	}
	want := []int{0, 10, 20, 20, 20, 0}
	if len(weights) != len(want) {
		t.Fatalf("weights %v, want %v", weights, want)
	}
	for i := range want {
		if weights[i] != want[i] {
			t.Fatalf("weights %v, want %v", weights, want)
		}
	}
	if p := h.Points[2]; p.SuccessRate == nil || *p.SuccessRate != 98 || p.P99 == nil || *p.P99 != 40 || !p.Time.Equal(at(14).Time) {
		t.Errorf("step 3: %+v", p)
	}
	if len(h.Markers) != 1 || h.Markers[0].Kind != "promoted" || !h.Markers[0].Time.Equal(at(22).Time) {
		t.Errorf("markers %+v, want one promotion at +22s", h.Markers)
	}
	if h.Thresholds.SuccessRateMin == nil || *h.Thresholds.SuccessRateMin != 99 || h.Thresholds.P99Max == nil || *h.Thresholds.P99Max != 500 {
		t.Errorf("thresholds %+v", h.Thresholds)
	}

	// The next release starts a fresh timeline; a deletion forgets the canary.
	seen(status("r2", v1alpha1.CanaryPhaseProgressing, 0, -1, 40, 0, 0))
	if h, _ := b.get("demo/podinfo"); h.Revision != "r2" || len(h.Points) != 1 || len(h.Markers) != 0 {
		t.Errorf("after a new revision: %+v", h)
	}
	b.observe(store.Event{Type: store.Deleted, Object: status("r2", v1alpha1.CanaryPhaseProgressing, 0, -1, 40, 0, 0)})
	if _, ok := b.get("demo/podinfo"); ok {
		t.Error("a deleted canary's history is still kept")
	}
}

func event(msg string, s int, count int32) *v1alpha1.Event {
	return &v1alpha1.Event{Message: msg, LastTimestamp: at(s), Count: count}
}

func TestHistoryFromEvents(t *testing.T) {
	evs := []*v1alpha1.Event{
		event("Advance podinfo.demo canary weight 10", 1, 1), // of an earlier release: before the last new revision
		event("New revision detected! Scaling up podinfo.demo", 5, 2),
		event("Advance podinfo.demo canary weight 10", 7, 2),
		event("Halt podinfo.demo advancement: request-success-rate 80.00 < 99", 9, 1),
		event("Advance podinfo.demo canary weight 20", 11, 1),
		event("Canary failed! Scaling down podinfo.demo: failed checks threshold reached 1", 13, 1),
	}
	start, points, markers := fromEvents(evs)
	if !start.Equal(at(5).Time) {
		t.Errorf("start %v, want the last new revision", start)
	}
	if len(points) != 3 || points[0].Weight != 10 || points[1].Weight != 10 || points[1].FailedChecks != 1 || points[2].Weight != 20 {
		t.Errorf("points %+v", points)
	}
	if len(markers) != 1 || markers[0].Kind != "rolledBack" {
		t.Errorf("markers %+v", markers)
	}

	// Merged with a watch that began late: the older steps come from the events, the
	// rollback is not doubled.
	watched := History{Revision: "r", Start: at(5).Time, Points: []Point{{Time: at(11).Time, Weight: 20, Source: "status"}},
		Markers: []Marker{{Time: at(13).Time, Kind: "rolledBack"}}}
	m := merge(watched, start, points, markers)
	if len(m.Points) != 3 || m.Points[0].Source != "event" || m.Points[2].Source != "status" {
		t.Errorf("merged points %+v", m.Points)
	}
	if len(m.Markers) != 1 {
		t.Errorf("merged markers %+v", m.Markers)
	}

	// Nothing watched at all (the dashboard started after the store's history was
	// compacted): the events alone draw the release.
	m = merge(History{}, start, points, markers)
	if len(m.Points) != 3 || len(m.Markers) != 1 || !m.Start.Equal(start) {
		t.Errorf("from events alone: %+v", m)
	}
}
