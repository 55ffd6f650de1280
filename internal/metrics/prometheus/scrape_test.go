package prometheus_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/demoapp"
	prom "github.com/canarymesh/canarymesh/internal/metrics/prometheus"
	"github.com/canarymesh/canarymesh/internal/metrics/prometheus/promtest"
)

func TestClusterLabelRelabelNames(t *testing.T) {
	// The regular expression as Prometheus applies it: anchored at both ends.
	cfg := prom.ClusterLabelRelabel()
	re := cfg[0]["regex"].(string)
	tests := []struct{ cluster, ns, pod string }{
		{"cds_egress_global_podinfo-canary_demo_http_9898", "demo", "podinfo-standalone-egress"},
		{"cds_egress_global_podinfo-primary_demo_http_9898", "demo", "podinfo-primary-standalone-egress"},
		{"cds_ingress_flaggerdemo_podinfo_demo_http_9898", "demo", "podinfo-standalone-ingress"},
		{"cds_egress_frontend-canary_shop_grpc_8080", "shop", "frontend-standalone-egress"},
		{"cds_egress_global_amazonaws", "", ""},
	}
	for _, tt := range tests {
		ns, pod := relabel(t, re, tt.cluster, cfg[0]["replacement"].(string)), relabel(t, re, tt.cluster, cfg[1]["replacement"].(string))
		if ns != tt.ns || pod != tt.pod {
			t.Errorf("%s: namespace %q pod %q, want %q %q", tt.cluster, ns, pod, tt.ns, tt.pod)
		}
	}
}

// Given `canarymesh up --prometheus-config`'s configuration and target files, a real
// Prometheus loads them and scrapes the proxies, the controller and the workloads, and
// picks up a proxy that starts later once the files are rewritten.
func TestScrapeConfigOnRealPrometheus(t *testing.T) {
	// The admin port: an egress proxy, a node's proxy, and the controller's /metrics.
	primary := demoApp(t, demoapp.Options{Version: "3.1.0"})
	p := egressProxy(t, primary, primary, 0)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "canarymesh_canary_total", Help: "canaries"}))
	mux := http.NewServeMux()
	mux.Handle("/stats/prometheus", p.Metrics())
	mux.Handle("/proxies/VirtualNode/demo/podinfo/stats/prometheus", p.Metrics())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	admin := ln.Addr().String()

	dir := t.TempDir()
	cfg, err := prom.ScrapeConfig(prom.ScrapeOptions{AdminAddr: admin, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(primary)
	portN, _ := strconv.Atoi(port)
	wl := &v1alpha1.Workload{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "demo"},
		Status: v1alpha1.WorkloadStatus{Instances: []v1alpha1.WorkloadInstance{{Index: 0, Port: int32(portN), Revision: "abc"}}}}
	quiet := &v1alpha1.Workload{ObjectMeta: metav1.ObjectMeta{Name: "batch", Namespace: "demo",
		Annotations: map[string]string{prom.AnnotationScrape: "false"}},
		Status: v1alpha1.WorkloadStatus{Instances: []v1alpha1.WorkloadInstance{{Index: 0, Port: 1}}}}
	var mu sync.Mutex
	nodes := []string{"egress"}
	w := &prom.TargetsWriter{Dir: dir, AdminAddr: admin,
		Nodes: func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), nodes...) },
		Workloads: func(context.Context) ([]*v1alpha1.Workload, error) {
			return []*v1alpha1.Workload{wl, quiet}, nil
		}}
	ctx := context.Background()
	if err := w.Write(ctx); err != nil {
		t.Fatal(err)
	}
	var groups []prom.TargetGroup
	b, _ := os.ReadFile(filepath.Join(dir, prom.WorkloadsTargetsFile))
	if err := json.Unmarshal(b, &groups); err != nil || len(groups) != 1 || groups[0].Labels["workload"] != "podinfo" {
		t.Fatalf("workload targets %s: %v", b, err)
	}

	s := promtest.Start(t, promtest.Options{Config: string(cfg), Dir: dir})
	s.WaitForData(t, `up{job="canarymesh-proxies",canarymesh_node="egress"} == 1`, 30*time.Second)
	s.WaitForData(t, `up{job="canarymesh-controller"} == 1`, 30*time.Second)
	s.WaitForData(t, `up{job="canarymesh-workloads",namespace="demo",workload="podinfo"} == 1`, 30*time.Second)
	s.WaitForData(t, `envoy_cluster_upstream_rq_total{kubernetes_namespace="demo",kubernetes_pod_name="podinfo-primary-standalone-egress"}`, 30*time.Second)

	mu.Lock()
	nodes = append(nodes, "VirtualNode/demo/podinfo")
	mu.Unlock()
	if err := w.Write(ctx); err != nil {
		t.Fatal(err)
	}
	s.WaitForData(t, `up{job="canarymesh-proxies",canarymesh_node="VirtualNode/demo/podinfo"} == 1`, 60*time.Second)
}

// relabel applies one replace rule the way Prometheus does, through its own API: the
// rule is tested by the real server in TestScrapeConfigOnRealPrometheus, this is the
// table of names.
func relabel(t *testing.T, re, cluster, replacement string) string {
	t.Helper()
	m := anchored(t, re).FindStringSubmatchIndex(cluster)
	if m == nil {
		return ""
	}
	return string(anchored(t, re).ExpandString(nil, replacement, cluster, m))
}

func TestScrapeConfigNeedsAdmin(t *testing.T) {
	if _, err := prom.ScrapeConfig(prom.ScrapeOptions{}); err == nil || !strings.Contains(err.Error(), "admin address") {
		t.Errorf("no admin address: %v", err)
	}
}
