package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/store"
)

const meshName = "bench"

// name is the i-th target (and Canary) and its namespace: a hundred per namespace, as
// teams would share a machine.
func name(i int) (ns, target string) {
	return fmt.Sprintf("team-%02d", i/100), fmt.Sprintf("app-%04d", i)
}

func ptr[T any](v T) *T { return &v }

// target is the i-th Workload: two instances of an app at a version. Nothing runs it;
// the supervisor stand-in reports it ready.
func target(i int, version string) *v1alpha1.Workload {
	ns, n := name(i)
	return &v1alpha1.Workload{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: ns}, Spec: v1alpha1.WorkloadSpec{
		Command:  []string{"canarymesh", "demo-app"},
		Args:     []string{"--version", version},
		Replicas: ptr(int32(2)),
		Labels:   map[string]string{"app": n},
	}}
}

// canaryFor is the seed's canary for the i-th target: success rate and P99 checks and a
// load-test webhook every interval, small steps so that no release ends within the run.
func canaryFor(i int, interval time.Duration, hook string) *v1alpha1.Canary {
	ns, n := name(i)
	return &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: ns}, Spec: v1alpha1.CanarySpec{
		Provider:                "appmesh",
		ProgressDeadlineSeconds: ptr(int32(600)),
		TargetRef:               v1alpha1.LocalObjectReference{Kind: v1alpha1.TargetKindWorkload, Name: n},
		Service:                 v1alpha1.CanaryService{Port: 9898, PortName: "http", MeshName: meshName, Hosts: []string{"*"}},
		Analysis: &v1alpha1.CanaryAnalysis{
			Interval: interval.String(), Threshold: 5, MaxWeight: 50, StepWeight: 1,
			Metrics: []v1alpha1.CanaryMetric{
				{Name: v1alpha1.MetricRequestSuccessRate, Interval: "1m", ThresholdRange: &v1alpha1.CanaryThresholdRange{Min: ptr(99.0)}},
				{Name: v1alpha1.MetricRequestDuration, Interval: "30s", ThresholdRange: &v1alpha1.CanaryThresholdRange{Max: ptr(500.0)}},
			},
			Webhooks: []v1alpha1.CanaryWebhook{{Name: "load-test", URL: hook, Timeout: "5s",
				Metadata: map[string]string{"cmd": "hey -z 1m -q 10 -c 2 http://" + n + "-canary." + ns + ":9898/"}}},
		},
	}}
}

// supervise stands in for the process supervisor: whenever a Workload's status does not
// describe its spec, it writes the status of every instance running and ready, as
// the supervisor would once the processes answer their probes.
func supervise(ctx context.Context, st store.Store, writes *atomic.Int64) {
	for ctx.Err() == nil {
		objs, rv, err := st.List(ctx, store.Filter{Kind: "Workload"})
		if err == nil {
			for _, o := range objs {
				reportReady(ctx, st, o, writes)
			}
			var ev <-chan store.Event
			if ev, err = st.Watch(ctx, store.Filter{Kind: "Workload"}, rv); err == nil {
				for e := range ev {
					if e.Type != store.Deleted {
						reportReady(ctx, st, e.Object, writes)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // the watch fell behind: list again
		}
	}
}

func reportReady(ctx context.Context, st store.Store, o v1alpha1.Object, writes *atomic.Int64) {
	w, ok := o.(*v1alpha1.Workload)
	if !ok {
		return
	}
	want := v1alpha1.WorkloadStatus{ObservedGeneration: w.Generation, Replicas: w.GetReplicas(),
		ReadyReplicas: w.GetReplicas(), Revision: w.Revision()}
	for i := range w.GetReplicas() {
		want.Instances = append(want.Instances, v1alpha1.WorkloadInstance{Index: i, Port: 20000 + i, PID: 1, Ready: true, Revision: w.Revision()})
	}
	if sameStatus(w.Status, want) {
		return
	}
	w.Status = want
	// A conflict means a newer version is on its way through the watch.
	if _, err := st.Update(ctx, w); err == nil {
		writes.Add(1)
	} else if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
		fmt.Println("supervisor stand-in:", err)
	}
}

func sameStatus(a, b v1alpha1.WorkloadStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.Replicas != b.Replicas || a.ReadyReplicas != b.ReadyReplicas ||
		a.Revision != b.Revision || len(a.Instances) != len(b.Instances) {
		return false
	}
	for i := range a.Instances {
		if a.Instances[i] != b.Instances[i] {
			return false
		}
	}
	return true
}

// healthy is what the proxies would report for every canary: busy and well.
var healthy = builtin.WindowFunc(func(string, time.Duration) builtin.Stats {
	return builtin.Stats{Requests: 600, SuccessRate: 100, P99: 42 * time.Millisecond}
})

// loadTester answers the load-test webhook as flagger-loadtester does for a cmd task
// it starts in the background: 202 at once. It counts the calls.
func loadTester(calls *atomic.Int64) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
}
