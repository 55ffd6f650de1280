package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/loadtest"
	"github.com/canarymesh/canarymesh/internal/metrics/prometheus/promtest"
)

// Given `canarymesh up --prometheus-config FILE --metrics-server URL` and a real
// Prometheus started on URL with the configuration up wrote: Prometheus finds the
// proxies, the controller and the workloads through the target files up keeps current,
// and when podinfo 3.1.1 is released under load, the built-in checks run Flagger's App
// Mesh queries on it, unchanged, and promote the release.
func TestUpWithPrometheusPromotesOnFlaggerQueries(t *testing.T) {
	promtest.Require(t)
	dir, manifests, promDir := t.TempDir(), t.TempDir(), t.TempDir()
	write := func(version string) {
		if err := os.WriteFile(filepath.Join(manifests, "podinfo.yaml"), []byte(fmt.Sprintf(restartYAML, version)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("3.1.0")
	egress, promAddr := freeAddr(t), freeAddr(t)
	cfgFile := filepath.Join(promDir, "prometheus.yml")
	s := startUp(t, dir, "-f", manifests, "--stream-listen", freeAddr(t), "--egress-listen", egress, "--admin-listen", freeAddr(t),
		"--metrics-server", "http://"+promAddr, "--prometheus-config", cfgFile, "--prometheus-scrape-interval", "1s")
	cfg, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatalf("up wrote no Prometheus configuration: %v", err)
	}
	prom := promtest.Start(t, promtest.Options{Config: string(cfg), Dir: promDir, Addr: promAddr})

	s.watchCanary("Initialized", 90*time.Second, func(st canaryStatus) bool { return st.Phase == "Initialized" })
	waitFor(t, 30*time.Second, "3.1.0 answering", func() bool { return askVersion(egress) == "3.1.0" })
	prom.WaitForData(t, `up{job="canarymesh-controller"} == 1`, 30*time.Second)
	prom.WaitForData(t, `up{job="canarymesh-workloads",namespace="demo",workload="podinfo-primary"} == 1`, 30*time.Second)
	prom.WaitForData(t, `up{job="canarymesh-proxies",canarymesh_node="VirtualNode/demo/podinfo-canary"} == 1`, 30*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = loadtest.Run(ctx, loadtest.Config{URL: "http://" + egress + "/", Host: "podinfo.demo",
			Rate: 40, Concurrency: 8, Duration: 5 * time.Minute, Timeout: 5 * time.Second})
	}()
	prom.WaitForData(t, `envoy_cluster_upstream_rq{kubernetes_namespace="demo",kubernetes_pod_name="podinfo-primary-standalone-egress"}`, 30*time.Second)

	write("3.1.1")
	last, weights := s.watchCanary("Succeeded", 150*time.Second, func(st canaryStatus) bool { return st.Phase == "Succeeded" || st.Phase == "Failed" })
	if last.Phase != "Succeeded" {
		t.Fatalf("release ended %s (%s), weights %v", last.Phase, last.Message, weights)
	}
	var cd struct {
		Status struct {
			LastMetrics []struct {
				Name   string  `json:"name"`
				Value  float64 `json:"value"`
				Passed bool    `json:"passed"`
				Query  string  `json:"query"`
			} `json:"lastMetrics"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(s.mustCLI("get", "canary", "podinfo", "-n", "demo", "-o", "json")), &cd); err != nil {
		t.Fatal(err)
	}
	if len(cd.Status.LastMetrics) != 2 {
		t.Fatalf("lastMetrics %+v", cd.Status.LastMetrics)
	}
	for _, m := range cd.Status.LastMetrics {
		if !m.Passed || !strings.Contains(m.Query, `kubernetes_namespace="demo",kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"`) {
			t.Errorf("%s: %+v, want a passed check by Flagger's App Mesh query", m.Name, m)
		}
	}
	if sr := cd.Status.LastMetrics[0]; sr.Name != "request-success-rate" || sr.Value < 99 {
		t.Errorf("success rate %+v", sr)
	}
}
