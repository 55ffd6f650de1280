package canary

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/metrics"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/metrics/prometheus/promtest"
)

func TestMeshMetricsBuiltinFromWindows(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	var asked []string
	src := builtin.WindowFunc(func(cluster string, d time.Duration) builtin.Stats {
		asked = append(asked, cluster+" "+d.String())
		return builtin.Stats{Requests: 10, SuccessRate: 90, P99: 42 * time.Millisecond}
	})
	m := &MeshMetrics{Store: st, Windows: src}
	cd := seedCanary()
	if r := m.Check(ctx, cd, &v1alpha1.CanaryMetric{Name: "request-success-rate", Interval: "1m"}); r.Err != "" || r.Value != 90 {
		t.Errorf("success rate: %+v", r)
	}
	if r := m.Check(ctx, cd, &v1alpha1.CanaryMetric{Name: "request-duration", Interval: "30s"}); r.Err != "" || r.Value != 42 {
		t.Errorf("duration: %+v", r)
	}
	if r := m.Check(ctx, cd, &v1alpha1.CanaryMetric{Name: "error-budget"}); !strings.Contains(r.Err, `unknown metric "error-budget"`) {
		t.Errorf("unknown metric: %+v", r)
	}
	if len(asked) != 2 || asked[0] != "demo/podinfo-canary 1m0s" || asked[1] != "demo/podinfo-canary 30s" {
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

// exporter serves test_requests{app,code} over HTTP: podinfo 90 × 200 and 10 × 500.
func exporter(t *testing.T) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_requests", Help: "requests"}, []string{"app", "code"})
	reg.MustRegister(g)
	g.WithLabelValues("podinfo", "200").Set(90)
	g.WithLabelValues("podinfo", "500").Set(10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// Given a real Prometheus scraping an application, each kind of metric check answers
// with its value, no data, or an error naming what is wrong, and shows its query.
func TestMeshMetricsTemplatesOnRealPrometheus(t *testing.T) {
	prom := promtest.Start(t, promtest.Options{Targets: []promtest.Target{{Job: "app", Addresses: []string{exporter(t)}}}})
	prom.WaitForData(t, `test_requests`, 30*time.Second)
	kpis := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"checkout": {"conversion": 4.2}}`)
	}))
	t.Cleanup(kpis.Close)

	st := newStore(t)
	ctx := context.Background()
	secrets := t.TempDir()
	if err := os.MkdirAll(filepath.Join(secrets, "demo"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "demo", "prom-basic.yaml"), []byte("username: u\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpl := func(name, typ, address, query string) {
		mt := &v1alpha1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"},
			Spec: v1alpha1.MetricTemplateSpec{Provider: v1alpha1.MetricTemplateProvider{Type: typ, Address: address}, Query: query}}
		if name == "with-secret" {
			mt.Spec.Provider.SecretRef = &v1alpha1.SecretReference{Name: "prom-basic"}
		}
		if _, err := st.Create(ctx, mt); err != nil {
			t.Fatal(err)
		}
	}
	unreachable := "http://" + promtest.FreeAddr(t)
	tmpl("success-rate", "prometheus", prom.URL,
		`sum(test_requests{app="{{ target }}",code!~"5.*"}) / sum(test_requests{app="{{ target }}"}) * 100`)
	tmpl("by-code", "prometheus", "", `sum(test_requests{app="{{ target }}",code="{{ variables.code }}"})`)
	tmpl("several", "prometheus", prom.URL, `test_requests{app="{{ target }}"}`)
	tmpl("syntax", "prometheus", prom.URL, `sum(rate(test_requests{app="{{ target }}"}[{{ interval }}]`)
	tmpl("down", "prometheus", unreachable, `sum(test_requests)`)
	tmpl("with-secret", "prometheus", prom.URL, `sum(test_requests)`)
	tmpl("conversion", "web", kpis.URL, `{$.checkout.conversion}`)

	ref := func(n string) *v1alpha1.CrossNamespaceObjectReference {
		return &v1alpha1.CrossNamespaceObjectReference{Name: n}
	}
	m := &MeshMetrics{Store: st, MetricsServer: prom.URL, Secrets: metrics.FileSecrets{Dir: secrets}}
	cd := seedCanary()
	tests := []struct {
		name    string
		metric  v1alpha1.CanaryMetric
		m       *MeshMetrics
		value   float64
		noData  bool
		errHas  []string
		queryIs string
	}{
		{name: "template", metric: v1alpha1.CanaryMetric{Name: "sr", TemplateRef: ref("success-rate")}, value: 90,
			queryIs: `sum(test_requests{app="podinfo",code!~"5.*"}) / sum(test_requests{app="podinfo"}) * 100`},
		{name: "variables and the default server", metric: v1alpha1.CanaryMetric{Name: "500s", TemplateRef: ref("by-code"),
			TemplateVariables: map[string]string{"code": "500"}}, value: 10, queryIs: `sum(test_requests{app="podinfo",code="500"})`},
		{name: "empty result", metric: v1alpha1.CanaryMetric{Name: "404s", TemplateRef: ref("by-code"),
			TemplateVariables: map[string]string{"code": "404"}}, noData: true, queryIs: `sum(test_requests{app="podinfo",code="404"})`},
		{name: "missing variable", metric: v1alpha1.CanaryMetric{Name: "404s", TemplateRef: ref("by-code")},
			errHas: []string{"MetricTemplate demo/by-code", `"variables.code"`}},
		{name: "several series", metric: v1alpha1.CanaryMetric{Name: "all", TemplateRef: ref("several")},
			errHas: []string{"returned 2 series", `code="200"`, `code="500"`}, queryIs: `test_requests{app="podinfo"}`},
		{name: "syntax error", metric: v1alpha1.CanaryMetric{Name: "bad", Interval: "2m", TemplateRef: ref("syntax")},
			errHas: []string{"bad_data", "parse error"}, queryIs: `sum(rate(test_requests{app="podinfo"}[2m]`},
		{name: "unreachable", metric: v1alpha1.CanaryMetric{Name: "down", TemplateRef: ref("down")},
			errHas: []string{unreachable[len("http://"):], "connection refused"}},
		{name: "bad secret", metric: v1alpha1.CanaryMetric{Name: "s", TemplateRef: ref("with-secret")},
			errHas: []string{"spec.provider.secretRef", "username but no password"}},
		{name: "no secret source", m: &MeshMetrics{Store: st}, metric: v1alpha1.CanaryMetric{Name: "s", TemplateRef: ref("with-secret")},
			errHas: []string{"no secret source"}},
		{name: "missing template", metric: v1alpha1.CanaryMetric{Name: "x", TemplateRef: ref("missing")},
			errHas: []string{"MetricTemplate demo/missing not found"}},
		{name: "web", metric: v1alpha1.CanaryMetric{Name: "conversion", TemplateRef: ref("conversion")}, value: 4.2,
			queryIs: `{$.checkout.conversion}`},
		{name: "inline query", metric: v1alpha1.CanaryMetric{Name: "custom", Query: `sum(test_requests{code="200"})`}, value: 90,
			queryIs: `sum(test_requests{code="200"})`},
		{name: "inline query without a server", m: &MeshMetrics{Store: st},
			metric: v1alpha1.CanaryMetric{Name: "custom", Query: `sum(test_requests)`}, errHas: []string{"no Prometheus is set"}},
		{name: "built-in from Prometheus", metric: v1alpha1.CanaryMetric{Name: "request-success-rate", Interval: "1m"}, noData: true,
			queryIs: `sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="demo",kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",envoy_response_code!~"5.*"}[1m])) / sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="demo",kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[1m])) * 100`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := m
			if tt.m != nil {
				mm = tt.m
			}
			r := mm.Check(ctx, cd, &tt.metric)
			if tt.queryIs != "" && r.Query != tt.queryIs {
				t.Errorf("query %q, want %q", r.Query, tt.queryIs)
			}
			switch {
			case tt.errHas != nil:
				if r.Err == "" {
					t.Fatalf("result %+v, want an error", r)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(r.Err, s) {
						t.Errorf("error %q does not say %q", r.Err, s)
					}
				}
			case tt.noData:
				if !r.NoData || r.Err != "" {
					t.Fatalf("result %+v, want no data", r)
				}
			case r.Err != "" || r.NoData || r.Value != tt.value:
				t.Fatalf("result %+v, want %v", r, tt.value)
			}
		})
	}
}
