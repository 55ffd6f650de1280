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

func TestMeshMetricsCheck(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	mt := &v1alpha1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: "not-found-percentage", Namespace: "demo"},
		Spec: v1alpha1.MetricTemplateSpec{Provider: v1alpha1.MetricTemplateProvider{Type: "prometheus", Address: "http://prometheus:9090"}, Query: "1"}}
	if _, err := st.Create(ctx, mt); err != nil {
		t.Fatal(err)
	}
	var asked []string
	src := builtin.WindowFunc(func(cluster string, d time.Duration) builtin.Stats {
		asked = append(asked, cluster+" "+d.String())
		return builtin.Stats{Requests: 10, SuccessRate: 90, P99: 42 * time.Millisecond}
	})
	m := &MeshMetrics{Store: st, Windows: src}
	cd := seedCanary()
	tests := []struct {
		metric v1alpha1.CanaryMetric
		value  float64
		errHas string
	}{
		{metric: v1alpha1.CanaryMetric{Name: "request-success-rate", Interval: "1m"}, value: 90},
		{metric: v1alpha1.CanaryMetric{Name: "request-duration", Interval: "30s"}, value: 42},
		{metric: v1alpha1.CanaryMetric{Name: "error-budget"}, errHas: `unknown metric "error-budget"`},
		{metric: v1alpha1.CanaryMetric{Name: "404s", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: "not-found-percentage"}},
			errHas: `provider "prometheus" is not available yet`},
		{metric: v1alpha1.CanaryMetric{Name: "404s", TemplateRef: &v1alpha1.CrossNamespaceObjectReference{Name: "missing"}},
			errHas: "MetricTemplate demo/missing not found"},
		{metric: v1alpha1.CanaryMetric{Name: "custom", Query: "sum(rate(x[1m]))"}, errHas: "is not available yet"},
	}
	for _, tt := range tests {
		t.Run(tt.metric.Name, func(t *testing.T) {
			r := m.Check(ctx, cd, &tt.metric)
			if tt.errHas != "" {
				if !strings.Contains(r.Err, tt.errHas) {
					t.Fatalf("err %q, want %q", r.Err, tt.errHas)
				}
				return
			}
			if r.Err != "" || r.NoData || r.Value != tt.value {
				t.Fatalf("result %+v, want %v", r, tt.value)
			}
		})
	}
	if asked[0] != "demo/podinfo-canary 1m0s" || asked[1] != "demo/podinfo-canary 30s" {
		t.Errorf("windows asked: %v", asked)
	}

	none := (&MeshMetrics{Store: st}).Check(ctx, cd, &v1alpha1.CanaryMetric{Name: "request-success-rate"})
	if !strings.Contains(none.Err, "no in-process proxies") {
		t.Errorf("without proxies: %+v", none)
	}
	idle := (&MeshMetrics{Store: st, Windows: builtin.WindowFunc(func(string, time.Duration) builtin.Stats {
		return builtin.Stats{NoData: true}
	})}).Check(ctx, cd, &v1alpha1.CanaryMetric{Name: "request-success-rate"})
	if !idle.NoData || idle.Err != "" {
		t.Errorf("no traffic: %+v, want NoData", idle)
	}
}
