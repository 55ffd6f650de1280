package canary_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	prom "github.com/canarymesh/canarymesh/internal/metrics/prometheus"
	"github.com/canarymesh/canarymesh/internal/metrics/prometheus/promtest"
)

// appMeshSuccessRate is Flagger's App Mesh success-rate query, as a user writes it in a
// MetricTemplate.
const appMeshSuccessRate = `sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",envoy_response_code!~"5.*"}[{{ interval }}]))
/ sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100`

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func metricTemplate(name, address, query string) *v1alpha1.MetricTemplate {
	return &v1alpha1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1alpha1.MetricTemplateSpec{Provider: v1alpha1.MetricTemplateProvider{Type: "prometheus", Address: address}, Query: query}}
}

// Given podinfo as real processes behind the in-process proxies, a real Prometheus
// scraping the proxies' admin endpoint with canarymesh's scrape rules, and a Canary
// whose only check is a MetricTemplate running Flagger's App Mesh success-rate query on
// it: when 3.1.1 is released under load it is promoted; when 3.1.2 answers half its
// requests with 500s, the template's value fails it and it is rolled back.
func TestMetricTemplateOnRealPrometheusWithRealProcesses(t *testing.T) {
	s := newStack(t)
	srv := promtest.Start(t, promtest.Options{Targets: []promtest.Target{{Job: "canarymesh-proxies",
		Addresses: []string{serve(t, s.proxies.Handler())}, MetricsPath: "/stats/prometheus", MetricRelabel: prom.ClusterLabelRelabel()}}})
	s.h.create(metricTemplate("appmesh-success-rate", srv.URL, appMeshSuccessRate))
	cd := fastCanary()
	// Prometheus sees the canary's first requests a scrape or two after they happen:
	// with one-second rounds, the first ones wait for data rather than fail on its lack.
	cd.Spec.Analysis.NoData = v1alpha1.NoDataWait
	cd.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{{Name: "success-rate", Interval: "5s",
		TemplateRef:    &v1alpha1.CrossNamespaceObjectReference{Name: "appmesh-success-rate"},
		ThresholdRange: &v1alpha1.CanaryThresholdRange{Min: ptr(99.0)}}}
	s.initialized(cd)
	stopLoad := s.load("podinfo.demo", nil, 100)

	s.release(app{version: "3.1.1"})
	weights := s.watch("Succeeded", 90*time.Second, phaseIs(v1alpha1.CanaryPhaseSucceeded))
	if !isSubsequence([]int{20, 40, 60}, weights) {
		t.Errorf("weights seen %v, want 20, 40, 60 in order", weights)
	}
	sr, ok := metricResult(s.h.canary(), "success-rate")
	if !ok || !sr.Passed || sr.Value < 99 {
		t.Errorf("success rate of the promoted canary: %+v", sr)
	}
	if !strings.Contains(sr.Query, `kubernetes_namespace="demo",kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"`) ||
		!strings.Contains(sr.Query, "[5s]") {
		t.Errorf("status query %q: want the rendered template", sr.Query)
	}

	s.release(app{version: "3.1.2", errorRate: 0.5})
	s.watch("Failed", 90*time.Second, phaseIs(v1alpha1.CanaryPhaseFailed))
	got := s.h.canary()
	if got.Status.FailedChecks < 2 || !strings.Contains(got.Status.Message, "metric success-rate") {
		t.Errorf("after the rollback: failedChecks %d, message %q", got.Status.FailedChecks, got.Status.Message)
	}
	if sr, ok := metricResult(got, "success-rate"); !ok || sr.Passed || sr.Value >= 99 {
		t.Errorf("success rate of the failing canary: %+v", sr)
	}
	s.backOnPrimary("3.1.1")
	if res := stopLoad(); res == nil || res.Requests == 0 {
		t.Error("the load generator sent nothing")
	}
}

// exporter serves test_requests{code}: 90 × 200 and 10 × 500.
func exporter(t *testing.T) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_requests", Help: "requests"}, []string{"code"})
	reg.MustRegister(g)
	g.WithLabelValues("200").Set(90)
	g.WithLabelValues("500").Set(10)
	return serve(t, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

// Given a real Prometheus, and a Canary whose checks are MetricTemplates that cannot
// answer (the server unreachable, a PromQL syntax error, several series, a template
// variable the Canary does not define): each check fails with its reason in the status
// and in the Halt events, the release is rolled back and nothing is promoted. The
// controller keeps working: with a good template the next release is promoted.
func TestBadMetricQueriesNeverPromote(t *testing.T) {
	srv := promtest.Start(t, promtest.Options{Targets: []promtest.Target{{Job: "app", Addresses: []string{exporter(t)}}}})
	srv.WaitForData(t, `test_requests`, 30*time.Second)
	h := newHarness(t)
	unreachable := "http://" + promtest.FreeAddr(t)
	h.create(metricTemplate("down", unreachable, `sum(test_requests)`))
	h.create(metricTemplate("syntax", srv.URL, `sum(rate(test_requests[{{ interval }}]`))
	h.create(metricTemplate("several", srv.URL, `test_requests`))
	h.create(metricTemplate("variable", srv.URL, `sum(test_requests{code="{{ variables.code }}"})`))
	h.create(metricTemplate("good", srv.URL, `sum(test_requests{code!~"5.*"}) / sum(test_requests) * 100`))
	check := func(name, tmpl string) v1alpha1.CanaryMetric {
		return v1alpha1.CanaryMetric{Name: name, Interval: "1m", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: tmpl},
			ThresholdRange: &v1alpha1.CanaryThresholdRange{Min: ptr(0.0)}}
	}
	cd := seedCanary()
	cd.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{check("down", "down"), check("syntax", "syntax"),
		check("several", "several"), check("variable", "variable")}
	h.initialized(cd)
	promoted := h.canary().Status.LastPromotedSpec

	h.release("3.1.1")
	h.until("Failed", 30, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseFailed })
	got := h.canary()
	want := map[string][]string{
		"down":     {"query failed", unreachable[len("http://"):]},
		"syntax":   {"query failed", "parse error"},
		"several":  {"query failed", "returned 2 series", `code="500"`},
		"variable": {"query failed", `"variables.code"`},
	}
	for name, says := range want {
		r, ok := metricResult(got, name)
		if !ok || r.Passed {
			t.Errorf("%s: %+v, want a failed check", name, r)
			continue
		}
		for _, s := range says {
			if !strings.Contains(r.Message, s) {
				t.Errorf("%s: status message %q does not say %q", name, r.Message, s)
			}
		}
	}
	if r, _ := metricResult(got, "syntax"); r.Query != `sum(rate(test_requests[1m]` {
		t.Errorf("syntax: status query %q, want the rendered query", r.Query)
	}
	evs := h.events()
	if len(evs["Halt"]) == 0 || len(evs["RolledBack"]) != 1 {
		t.Fatalf("events: %d Halt, %d RolledBack", len(evs["Halt"]), len(evs["RolledBack"]))
	}
	halt := evs["Halt"][0].Message
	for _, s := range []string{"metric down", "metric syntax", "metric several", "metric variable", "parse error"} {
		if !strings.Contains(halt, s) {
			t.Errorf("Halt event %q does not say %q", halt, s)
		}
	}
	if n := h.target.promotions.Load(); n != 0 || h.canary().Status.LastPromotedSpec != promoted {
		t.Fatalf("%d promotions after failing checks", n)
	}

	// The controller keeps working: a release checked by a template that answers goes on.
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatal("cannot update the Canary")
		}
		cd := h.canary()
		cd.Spec.Analysis.Metrics = []v1alpha1.CanaryMetric{check("good", "good")}
		cd.Spec.Analysis.Metrics[0].ThresholdRange.Min = ptr(85.0)
		if _, err := h.st.Update(context.Background(), cd); err == nil {
			break
		}
	}
	h.release("3.1.2")
	h.until("Succeeded", 40, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseSucceeded })
	if r, ok := metricResult(h.canary(), "good"); !ok || !r.Passed || r.Value != 90 {
		t.Errorf("good: %+v", r)
	}
	if n := h.target.promotions.Load(); n != 1 {
		t.Errorf("%d promotions, want 1", n)
	}
}
