package canary

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
)

// The analysis remembers when the canary of its revision was first ready, keeps that
// time while it runs, and forgets it when the release ends or a revision starts over.
func TestCanaryReadySince(t *testing.T) {
	progressing := idleStatus(v1alpha1.CanaryPhaseProgressing, "r2", "r1")

	cd := seedCanary()
	cd.Status = progressing
	waiting := Decide(cd, notReadyObs(time.Second, "r2"))
	if waiting.Status.CanaryReadySince != nil {
		t.Fatalf("canary not ready: canaryReadySince %v, want none", waiting.Status.CanaryReadySince)
	}

	cd.Status = waiting.Status
	ready := Decide(cd, obsAt(5*time.Second, "r2"))
	if got := ready.Status.CanaryReadySince; got == nil || !got.Time.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("canary ready at t0+5s: canaryReadySince %v", got)
	}

	later := ready.Status.DeepCopy()
	later.ChecksRequestedTime, later.LastStepTime = nil, nil
	later.LastMetrics = []v1alpha1.CanaryMetricResult{{Name: "request-success-rate", Value: 40}}
	cd.Status = *later
	again := Decide(cd, obsAt(40*time.Second, "r2"))
	if got := again.Status.CanaryReadySince; got == nil || !got.Time.Equal(t0.Add(5*time.Second)) {
		t.Errorf("a later round moved canaryReadySince to %v", got)
	}

	cd.Status = *later
	restarted := Decide(cd, notReadyObs(41*time.Second, "r3"))
	if restarted.Status.CanaryReadySince != nil {
		t.Errorf("a new revision mid-analysis kept canaryReadySince %v", restarted.Status.CanaryReadySince)
	}
	if len(restarted.Status.LastMetrics) != 0 {
		t.Errorf("a new revision shows the last one's metrics: %+v", restarted.Status.LastMetrics)
	}

	cd.Status = *later
	back := Decide(cd, obsAt(41*time.Second, "r1"))
	wantPhase(t, back, v1alpha1.CanaryPhaseFailed)
	if back.Status.CanaryReadySince != nil {
		t.Errorf("rolled back with canaryReadySince %v", back.Status.CanaryReadySince)
	}
}

// Metric windows reach back to when the canary was ready and no further, for the
// proxies' windows and for `{{ interval }}` in Prometheus queries alike.
func TestMetricWindowStartsWhenTheCanaryWasReady(t *testing.T) {
	now := t0.Add(time.Hour)
	var asked []time.Duration
	m := &MeshMetrics{Store: newStore(t), Now: func() time.Time { return now },
		Windows: builtin.WindowFunc(func(_ string, d time.Duration) builtin.Stats {
			asked = append(asked, d)
			return builtin.Stats{Requests: 10, SuccessRate: 100}
		})}
	mc := &v1alpha1.CanaryMetric{Name: v1alpha1.MetricRequestSuccessRate, Interval: "1m"}
	for _, tc := range []struct {
		name  string
		since *time.Time
		want  time.Duration
	}{
		{name: "no ready time: the whole interval", want: time.Minute},
		{name: "ready 12.3s ago: 13s", since: ptr(now.Add(-12300 * time.Millisecond)), want: 13 * time.Second},
		{name: "ready longer ago than the interval", since: ptr(now.Add(-5 * time.Minute)), want: time.Minute},
		{name: "ready just now: one second", since: ptr(now), want: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cd := seedCanary()
			if tc.since != nil {
				cd.Status.CanaryReadySince = &metav1.Time{Time: *tc.since}
			}
			asked = nil
			if r := m.Check(context.Background(), cd, mc); r.Err != "" || len(asked) != 1 || asked[0] != tc.want {
				t.Errorf("window %v (result %+v), want %v", asked, r, tc.want)
			}
			prom := &MeshMetrics{Store: m.Store, Now: m.Now, MetricsServer: "http://127.0.0.1:1"}
			r := prom.Check(context.Background(), cd, mc)
			if want := "[" + promDuration(tc.want) + "]"; !strings.Contains(r.Query, want) {
				t.Errorf("query %q, want the range %s", r.Query, want)
			}
		})
	}
}

func promDuration(d time.Duration) string {
	if d == time.Minute {
		return "1m"
	}
	return d.String()
}
