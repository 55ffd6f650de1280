package canary

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Stats are the controller's Prometheus metrics, Flagger's set under the canarymesh_
// prefix, in a registry of their own. A nil *Stats records nothing.
type Stats struct {
	reg       *prometheus.Registry
	status    *prometheus.GaugeVec
	weight    *prometheus.GaugeVec
	duration  *prometheus.HistogramVec
	analysis  *prometheus.GaugeVec
	total     *prometheus.GaugeVec
	successes *prometheus.CounterVec
	failures  *prometheus.CounterVec
}

// Analysis statuses of the successes and failures counters, as Flagger's.
const (
	analysisCompleted = "completed"
	analysisSkipped   = "skipped"
)

// NewStats makes the metrics and their registry.
func NewStats() *Stats {
	s := &Stats{
		reg: prometheus.NewRegistry(),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "canarymesh_canary_status",
			Help: "Last canary analysis result: 0 running, 1 successful, 2 failed."}, []string{"name", "namespace"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "canarymesh_canary_weight",
			Help: "The apex route's weight of the primary and of the canary workload."}, []string{"workload", "namespace"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "canarymesh_canary_duration_seconds",
			Help: "Seconds spent performing canary analysis.", Buckets: prometheus.DefBuckets}, []string{"name", "namespace"}),
		analysis: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "canarymesh_canary_metric_analysis",
			Help: "Last canary analysis result per metric."}, []string{"name", "namespace", "metric"}),
		total: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "canarymesh_canary_total",
			Help: "Total number of canary objects."}, []string{"namespace"}),
		successes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "canarymesh_canary_successes_total",
			Help: "Total number of canary successes."}, []string{"name", "namespace", "deployment_strategy", "analysis_status"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "canarymesh_canary_failures_total",
			Help: "Total number of canary failures."}, []string{"name", "namespace", "deployment_strategy", "analysis_status"}),
	}
	s.reg.MustRegister(s.status, s.weight, s.duration, s.analysis, s.total, s.successes, s.failures)
	return s
}

// Handler serves the metrics in the Prometheus text format.
func (s *Stats) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// Registry is where the metrics are registered.
func (s *Stats) Registry() *prometheus.Registry { return s.reg }

func (s *Stats) observeRun(k store.Key, d time.Duration) {
	if s == nil {
		return
	}
	s.duration.WithLabelValues(k.Name, k.Namespace).Observe(d.Seconds())
}

func (s *Stats) setTotal(ns string, n int) {
	if s == nil {
		return
	}
	s.total.WithLabelValues(ns).Set(float64(n))
}

// record sets the gauges from a newly persisted status and counts a release that has
// just ended.
func (s *Stats) record(old *v1alpha1.Canary, st v1alpha1.CanaryStatus) {
	if s == nil {
		return
	}
	name, ns := old.Name, old.Namespace
	s.status.WithLabelValues(name, ns).Set(statusValue(st.Phase))
	target := old.Spec.TargetRef.Name
	s.weight.WithLabelValues(target+"-primary", ns).Set(float64(100 - st.CanaryWeight))
	s.weight.WithLabelValues(target, ns).Set(float64(st.CanaryWeight))
	for _, m := range st.LastMetrics {
		s.analysis.WithLabelValues(name, ns, m.Name).Set(m.Value)
	}
	if old.Status.Phase == st.Phase {
		return
	}
	strategy, status := v1alpha1.StrategyCanary, analysisCompleted
	if an := old.GetAnalysis(); an != nil && an.Strategy() != "" {
		strategy = an.Strategy()
	}
	if old.SkipAnalysis() {
		status = analysisSkipped
	}
	switch st.Phase {
	case v1alpha1.CanaryPhaseSucceeded:
		s.successes.WithLabelValues(name, ns, strategy, status).Inc()
	case v1alpha1.CanaryPhaseFailed:
		s.failures.WithLabelValues(name, ns, strategy, status).Inc()
	}
}

// forget drops the series of a Canary that is gone.
func (s *Stats) forget(k store.Key, target string) {
	if s == nil {
		return
	}
	labels := prometheus.Labels{"name": k.Name, "namespace": k.Namespace}
	s.status.Delete(labels)
	s.analysis.DeletePartialMatch(labels)
	s.duration.Delete(labels)
	if target != "" {
		s.weight.Delete(prometheus.Labels{"workload": target, "namespace": k.Namespace})
		s.weight.Delete(prometheus.Labels{"workload": target + "-primary", "namespace": k.Namespace})
	}
}

// statusValue is Flagger's: 0 while a release is under way, 2 after a failure, else 1.
func statusValue(p v1alpha1.CanaryPhase) float64 {
	switch p {
	case v1alpha1.CanaryPhaseFailed:
		return 2
	case v1alpha1.CanaryPhaseWaiting, v1alpha1.CanaryPhaseProgressing, v1alpha1.CanaryPhaseWaitingPromotion,
		v1alpha1.CanaryPhasePromoting, v1alpha1.CanaryPhaseFinalising:
		return 0
	}
	return 1
}
