package prometheus_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/demoapp"
	"github.com/canarymesh/canarymesh/internal/loadtest"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
	"github.com/canarymesh/canarymesh/internal/metrics"
	prom "github.com/canarymesh/canarymesh/internal/metrics/prometheus"
	"github.com/canarymesh/canarymesh/internal/metrics/prometheus/promtest"
	"github.com/canarymesh/canarymesh/internal/proxy"
)

// demoApp runs the demo app on a loopback port until the test ends.
func demoApp(t *testing.T, o demoapp.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = demoapp.Serve(ctx, ln, o) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// egressProxy is a real proxy whose egress listener splits podinfo.demo between the
// primary and canary virtual nodes, as the canary controller's route does mid-release.
func egressProxy(t *testing.T, primary, canary string, canaryWeight int) *proxy.Proxy {
	t.Helper()
	cluster := func(name, addr string) snapshot.Cluster {
		return snapshot.Cluster{Name: "demo/" + name, Mesh: "global", Protocol: "http", Port: 9898,
			Endpoints: []snapshot.Endpoint{{Address: addr, Ready: true}}}
	}
	s := &snapshot.Snapshot{Version: 1, Node: snapshot.EgressNode,
		Clusters: []snapshot.Cluster{cluster("podinfo-primary", primary), cluster("podinfo-canary", canary)},
		Listeners: []snapshot.Listener{{Name: "egress", Kind: snapshot.Egress, Protocol: "http", Port: 15001,
			VirtualHosts: []snapshot.VirtualHost{{Name: "demo/podinfo", Domains: []string{"podinfo.demo"}, Routes: []snapshot.Route{{
				Name: "demo/podinfo/podinfo-route", Priority: 1001, Protocol: "http",
				Targets: []snapshot.WeightedCluster{{Cluster: "demo/podinfo-primary", Weight: 100 - canaryWeight},
					{Cluster: "demo/podinfo-canary", Weight: canaryWeight}}}}}}}}}
	p := proxy.New(proxy.Options{Bind: func(snapshot.Listener) string { return "127.0.0.1:0" }})
	t.Cleanup(func() { _ = p.Close() })
	if err := p.Update(s); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveAdmin serves the proxy's /stats/prometheus, as canarymesh up's admin port does.
func serveAdmin(t *testing.T, p *proxy.Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/stats/prometheus", p.Metrics())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func load(t *testing.T, egress string, d time.Duration) *loadtest.Result {
	t.Helper()
	r, err := loadtest.Run(context.Background(), loadtest.Config{URL: "http://" + egress + "/", Host: "podinfo.demo",
		Rate: 150, Concurrency: 48, Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 {
		t.Fatalf("load: no responses: %v", r.ErrorDist)
	}
	return r
}

// Given a real proxy carrying real load to a primary and a canary that fails a fifth of
// its requests, and a real Prometheus scraping the proxy with the scrape configuration
// canarymesh writes, Flagger's App Mesh queries, unchanged, select the canary alone and
// give the success rate the proxy's in-process window gives for the same traffic, and a
// P99 in the same latency bucket.
func TestAppMeshQueriesMatchInProcessWindows(t *testing.T) {
	if testing.Short() {
		t.Skip("sends load for about 20s; skipped with -short")
	}
	primary := demoApp(t, demoapp.Options{Version: "3.1.0"})
	canary := demoApp(t, demoapp.Options{Version: "3.1.1", ErrorRate: 0.2, Delay: 150 * time.Millisecond})
	p := egressProxy(t, primary, canary, 50)
	egress := p.Addr("egress").String()
	srv := promtest.Start(t, promtest.Options{Targets: []promtest.Target{{Job: "canarymesh-proxies",
		Addresses: []string{serveAdmin(t, p)}, MetricsPath: "/stats/prometheus", MetricRelabel: prom.ClusterLabelRelabel()}}})

	// The first load makes every series exist, and gives the counters a start well above
	// zero, so that Prometheus extrapolates every series of the range alike.
	load(t, egress, 5*time.Second)
	srv.WaitForData(t, `envoy_cluster_upstream_rq{kubernetes_pod_name="podinfo-standalone-egress",envoy_response_code="500"}`, 30*time.Second)
	time.Sleep(2 * time.Second)
	start := time.Now()
	time.Sleep(time.Second)
	// The measured traffic: the window starts in the quiet second before it.
	res := load(t, egress, 6*time.Second)
	time.Sleep(3 * time.Second) // scrapes after the load ended
	secs := int(math.Ceil(time.Since(start).Seconds()))
	interval := fmt.Sprintf("%ds", secs)
	win := p.Window("demo/podinfo-canary", time.Duration(secs)*time.Second)
	t.Logf("load: %d requests, codes %v; canary window over %s: %d requests, %d 5xx, success %.3f%%, P99 %s",
		res.Requests, res.StatusCodes, interval, win.Requests, win.Errors5xx, win.SuccessRate, win.P99)
	if win.NoData || win.Errors5xx == 0 || win.Requests < 100 {
		t.Fatalf("the canary's window saw too little: %+v", win)
	}

	pp, err := prom.New(prom.Options{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	model := metrics.QueryModel{Name: "podinfo", Namespace: "demo", Target: "podinfo", Service: "podinfo", Interval: interval}
	run := func(metric string) float64 {
		t.Helper()
		tmpl, err := prom.BuiltinQuery(metric)
		if err != nil {
			t.Fatal(err)
		}
		q, err := metrics.RenderQuery(tmpl, model)
		if err != nil {
			t.Fatal(err)
		}
		v, err := pp.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}

	sr := run("request-success-rate")
	t.Logf("Prometheus: success rate %.4f%%, window %.4f%%", sr, win.SuccessRate)
	if math.Abs(sr-win.SuccessRate) > 0.01 {
		t.Errorf("success rate from Prometheus %.4f, from the window %.4f: they must agree", sr, win.SuccessRate)
	}
	p99 := run("request-duration")
	w99 := float64(win.P99) / float64(time.Millisecond)
	t.Logf("Prometheus: P99 %.2f ms, window %.2f ms", p99, w99)
	if b1, b2 := envoyBucket(p99), envoyBucket(w99); b1 != b2 {
		t.Errorf("P99 from Prometheus %.2f ms is in Envoy's bucket ≤%v, the window's %.2f ms in ≤%v", p99, b1, w99, b2)
	}
	if w99 < 150 {
		t.Errorf("window P99 %.2f ms is below the canary's 150ms delay", w99)
	}
}

// envoyBucket returns the upper bound of Envoy's default histogram bucket holding ms.
func envoyBucket(ms float64) float64 {
	for _, b := range []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000} {
		if ms <= b {
			return b
		}
	}
	return math.Inf(1)
}
