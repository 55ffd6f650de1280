package grafana_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/canarymesh/canarymesh/deploy/grafana"
	"github.com/canarymesh/canarymesh/internal/demoapp"
	"github.com/canarymesh/canarymesh/internal/loadtest"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
	"github.com/canarymesh/canarymesh/internal/metrics/prometheus/promtest"
	"github.com/canarymesh/canarymesh/internal/proxy"
)

// expressions walks the dashboard and returns every PromQL expression in it: the
// panels' targets and the template variables' label_values selectors.
func expressions(t *testing.T, v any, at string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			p := at + "." + k
			if s, ok := c.(string); ok && k == "expr" {
				out[p] = s
				continue
			}
			if s, ok := c.(string); ok && k == "query" && strings.HasPrefix(s, "label_values(") {
				out[p] = labelValuesSelector(t, s)
				continue
			}
			expressions(t, c, p, out)
		}
	case []any:
		for i, c := range x {
			expressions(t, c, at+"["+strconv.Itoa(i)+"]", out)
		}
	}
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_]+\)$`)

// labelValuesSelector is the series selector of Grafana's label_values(selector, label).
func labelValuesSelector(t *testing.T, q string) string {
	m := labelValues.FindStringSubmatch(q)
	if m == nil {
		t.Fatalf("template query %q is not label_values(selector, label)", q)
	}
	return m[1]
}

// Grafana's variables, as a user's choice would set them.
var variables = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "30m",
	"$namespace", "demo", "$canary", "podinfo", "$target", "podinfo")

// Given the dashboard, it parses as JSON with the panels a canary needs, and every PromQL
// expression in it, with Grafana's variables filled in, is accepted by a real Prometheus
// (a syntax or type error would come back as bad_data); with that Prometheus scraping a
// real proxy under load, the per-version panels show the primary and the canary.
func TestCanaryDashboard(t *testing.T) {
	var dash map[string]any
	if err := json.Unmarshal(grafana.CanaryDashboard, &dash); err != nil {
		t.Fatalf("canarymesh-canary.json: %v", err)
	}
	if dash["uid"] != "canarymesh-canary" {
		t.Errorf("uid %v", dash["uid"])
	}
	var titles []string
	for _, p := range dash["panels"].([]any) {
		titles = append(titles, p.(map[string]any)["title"].(string))
	}
	joined := strings.Join(titles, "|")
	for _, want := range []string{"Canary weight", "Phase", "Requests per second by version", "Success rate by version", "Latency P50 / P99 by version"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no panel %q in %v", want, titles)
		}
	}
	exprs := map[string]string{}
	expressions(t, dash, "", exprs)
	if len(exprs) < 10 {
		t.Fatalf("only %d expressions found: %v", len(exprs), exprs)
	}

	// A real proxy carrying real traffic to podinfo's primary and canary, scraped.
	p := splitProxy(t, demoApp(t, "3.1.0"), demoApp(t, "3.1.1"))
	srv := promtest.Start(t, promtest.Options{Targets: []promtest.Target{{Job: "canarymesh-proxies",
		Addresses: []string{serveMetrics(t, p)}, MetricsPath: "/stats/prometheus"}}})
	res, err := loadtest.Run(context.Background(), loadtest.Config{URL: "http://" + p.Addr("egress").String() + "/",
		Host: "podinfo.demo", Rate: 50, Concurrency: 8, Duration: 4 * time.Second})
	if err != nil || res.Requests == 0 {
		t.Fatalf("load: %v %+v", err, res)
	}
	srv.WaitForData(t, `canarymesh_route_requests_total{virtual_node="demo/podinfo-canary"}`, 30*time.Second)
	time.Sleep(2 * time.Second) // a second sample for rate

	c, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	papi := promv1.NewAPI(c)
	byTitle := map[string][]string{}
	for at, e := range exprs {
		q := variables.Replace(e)
		if strings.Contains(q, "$") {
			t.Errorf("%s: a variable is left in %q", at, q)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, _, _, err := papi.Query(ctx, q, time.Now())
		cancel()
		if err != nil {
			t.Errorf("%s: Prometheus refuses %q: %v", at, q, err)
			continue
		}
		if vec, ok := v.(model.Vector); ok {
			for _, s := range vec {
				byTitle[at] = append(byTitle[at], string(s.Metric["virtual_node"]))
			}
		}
	}
	// The traffic panels show both versions from the proxies' series.
	checked := 0
	for i, title := range titles {
		if !strings.Contains(title, "by version") {
			continue
		}
		for at, nodes := range byTitle {
			if !strings.HasPrefix(at, ".panels["+strconv.Itoa(i)+"]") {
				continue
			}
			checked++
			got := strings.Join(nodes, ",")
			if !strings.Contains(got, "demo/podinfo-primary") || !strings.Contains(got, "demo/podinfo-canary") {
				t.Errorf("panel %q (%s) shows %q, want the primary and the canary", title, at, got)
			}
		}
	}
	if checked < 4 {
		t.Errorf("only %d expressions of the per-version panels checked", checked)
	}
}

// demoApp runs the demo app on a loopback port until the test ends.
func demoApp(t *testing.T, version string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = demoapp.Serve(ctx, ln, demoapp.Options{Version: version}) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// splitProxy is a real egress proxy sending podinfo.demo half to each version.
func splitProxy(t *testing.T, primary, canary string) *proxy.Proxy {
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
				Targets: []snapshot.WeightedCluster{{Cluster: "demo/podinfo-primary", Weight: 50},
					{Cluster: "demo/podinfo-canary", Weight: 50}}}}}}}}}
	p := proxy.New(proxy.Options{Bind: func(snapshot.Listener) string { return "127.0.0.1:0" }})
	t.Cleanup(func() { _ = p.Close() })
	if err := p.Update(s); err != nil {
		t.Fatal(err)
	}
	return p
}

func serveMetrics(t *testing.T, p *proxy.Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p.Metrics(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
