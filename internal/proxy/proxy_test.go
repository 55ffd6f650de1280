package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

func TestWeightsThroughProxy(t *testing.T) {
	v1, v2, v3 := newBackend(t, "v1", nil), newBackend(t, "v2", nil), newBackend(t, "v3", nil)
	p := startProxy(t, egressSnapshot(1,
		[]snapshot.Cluster{cluster("v1", v1), cluster("v2", v2), cluster("v3", v3)},
		service("podinfo", snapshot.Route{Name: "demo/podinfo/main", Targets: targets("v1", 90, "v2", 10, "v3", 0)})))
	for i := 0; i < 1000; i++ {
		if code, _ := get(t, p, "podinfo.demo", "/"); code != 200 {
			t.Fatalf("request %d: status %d", i, code)
		}
	}
	if n := v1.hits.Load(); n < 880 || n > 920 {
		t.Errorf("v1 got %d of 1000, want 880..920", n)
	}
	if n := v3.hits.Load(); n != 0 {
		t.Errorf("v3 has weight 0 but got %d", n)
	}
	if n := v1.hits.Load() + v2.hits.Load(); n != 1000 {
		t.Errorf("backends got %d requests, want 1000", n)
	}
}

func TestRoutingByHostAndMatch(t *testing.T) {
	api, web := newBackend(t, "api", nil), newBackend(t, "web", nil)
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cluster("api", api), cluster("web", web)},
		service("shop",
			snapshot.Route{Name: "demo/shop/api", Match: snapshot.Match{Prefix: "/api", Method: "POST"}, Targets: targets("api", 1)},
			snapshot.Route{Name: "demo/shop/web", Match: snapshot.Match{Prefix: "/web"}, Targets: targets("web", 1)})))
	for _, tc := range []struct {
		method, host, path string
		code               int
		body               string
	}{
		{"POST", "shop.demo", "/api/cart", 200, "api"},
		{"POST", "shop.demo:15001", "/api/cart", 200, "api"},
		{"POST", "SHOP.demo.svc.cluster.local", "/api/cart", 200, "api"},
		{"GET", "shop.demo", "/web/", 200, "web"},
		{"GET", "shop.demo", "/api/cart", 404, ""},  // no route: the method does not match
		{"GET", "unknown.demo", "/web/", 404, ""},   // no virtual host
		{"GET", "shop.demo", "/elsewhere", 404, ""}, // no route
	} {
		code, body, _ := do(t, p, "egress", tc.method, tc.host, tc.path, nil)
		if code != tc.code || body != tc.body {
			t.Errorf("%s %s%s = %d %q, want %d %q", tc.method, tc.host, tc.path, code, body, tc.code, tc.body)
		}
	}
}

func TestRetriesTurnFlaky503IntoSuccess(t *testing.T) {
	var n atomic.Int64
	flaky := newBackend(t, "flaky", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if n.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write(body)
	})
	retry := &snapshot.RetryPolicy{MaxRetries: 2, HTTPEvents: []string{"server-error"}}
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cluster("flaky", flaky)},
		service("flaky", snapshot.Route{Name: "demo/flaky/main", Targets: targets("flaky", 1), Retry: retry})))
	for i := 0; i < 50; i++ {
		payload := strings.Repeat(strconv.Itoa(i), 100)
		code, body, _ := do(t, p, "egress", "POST", "flaky.demo", "/", strings.NewReader(payload))
		if code != 200 || body != payload {
			t.Fatalf("request %d: %d %q; a retry must turn the 503 into a success with the same body", i, code, body)
		}
	}
	const cn = `{envoy_cluster_name="cds_egress_global_flaky_demo_http_80"}`
	if v := metricValue(t, p, "envoy_cluster_upstream_rq_retry"+cn); v != "50" {
		t.Errorf("envoy_cluster_upstream_rq_retry = %q, want 50", v)
	}
	if v := metricValue(t, p, "envoy_cluster_upstream_rq_retry_success"+cn); v != "50" {
		t.Errorf("envoy_cluster_upstream_rq_retry_success = %q, want 50", v)
	}

	t.Run("a body larger than the replay buffer is not retried", func(t *testing.T) {
		n.Store(0) // the next attempt fails
		big := bytes.Repeat([]byte("x"), maxReplay+1)
		// A chunked body (unknown length) streams, so the proxy cannot replay it.
		code, _, _ := do(t, p, "egress", "POST", "flaky.demo", "/", io.MultiReader(bytes.NewReader(big)))
		if code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want the upstream's 503", code)
		}
	})
}

func TestPerRequestTimeoutIs504(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cluster("slow", slow)},
		service("slow", snapshot.Route{Name: "demo/slow/main", Targets: targets("slow", 1),
			Timeout: &snapshot.Timeouts{PerRequest: 50 * time.Millisecond}})))
	code, body := get(t, p, "slow.demo", "/")
	if code != http.StatusGatewayTimeout || body != "upstream request timeout" {
		t.Fatalf("got %d %q, want 504 upstream request timeout", code, body)
	}
	const cn = `{envoy_cluster_name="cds_egress_global_slow_demo_http_80"}`
	if v := metricValue(t, p, "envoy_cluster_upstream_rq_timeout"+cn); v != "1" {
		t.Errorf("envoy_cluster_upstream_rq_timeout = %q, want 1", v)
	}
	if v := metricValue(t, p, `envoy_cluster_upstream_rq{envoy_response_code="504",envoy_cluster_name="cds_egress_global_slow_demo_http_80"}`); v != "1" {
		t.Errorf("a timeout must count as a 504, got %q", v)
	}
}

func TestPerTryTimeoutRetriesAnotherEndpoint(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	fast := newBackend(t, "fast", nil)
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cluster("mixed", slow, fast)},
		service("mixed", snapshot.Route{Name: "demo/mixed/main", Targets: targets("mixed", 1),
			Retry: &snapshot.RetryPolicy{MaxRetries: 1, PerTryTimeout: 50 * time.Millisecond, HTTPEvents: []string{"gateway-error"}}})))
	for i := 0; i < 6; i++ {
		if code, body := get(t, p, "mixed.demo", "/"); code != 200 || body != "fast" {
			t.Fatalf("request %d: %d %q; a per-try timeout must be retried on the other endpoint", i, code, body)
		}
	}
}

func TestOutlierEjectionAndReturn(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	good := newBackend(t, "good", nil)
	bad := newBackend(t, "bad", func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "bad")
	})
	c := cluster("pool", good, bad)
	c.OutlierDetection = &snapshot.OutlierDetection{MaxServerErrors: 3, Interval: time.Second,
		BaseEjectionDuration: 200 * time.Millisecond, MaxEjectionPercent: 50}
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{c},
		service("pool", snapshot.Route{Name: "demo/pool/main", Targets: targets("pool", 1)})))
	const active = `envoy_cluster_outlier_detection_ejections_active{envoy_cluster_name="cds_egress_global_pool_demo_http_80"}`
	eventually(t, "the failing endpoint is ejected", func() bool {
		get(t, p, "pool.demo", "/")
		return metricValue(t, p, active) == "1"
	})
	before := bad.hits.Load()
	for i := 0; i < 20; i++ {
		if code, body := get(t, p, "pool.demo", "/"); code != 200 || body != "good" {
			// The ejection may have just expired; only a return explains a bad answer.
			if metricValue(t, p, active) == "1" {
				t.Fatalf("request %d went to an ejected endpoint: %d %q", i, code, body)
			}
		}
	}
	failing.Store(false)
	eventually(t, "the ejected endpoint returns", func() bool { return metricValue(t, p, active) == "0" })
	eventually(t, "the returned endpoint gets traffic again", func() bool {
		get(t, p, "pool.demo", "/")
		return bad.hits.Load() > before
	})
	if v := metricValue(t, p, `envoy_cluster_outlier_detection_ejections_total{envoy_cluster_name="cds_egress_global_pool_demo_http_80"}`); v == "0" || v == "" {
		t.Errorf("ejections_total = %q", v)
	}
}

func TestOutlierNeverEjectsBeyondMaxPercent(t *testing.T) {
	fail := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }
	a, b := newBackend(t, "a", fail), newBackend(t, "b", fail)
	c := cluster("broken", a, b)
	c.OutlierDetection = &snapshot.OutlierDetection{MaxServerErrors: 1, Interval: time.Second,
		BaseEjectionDuration: time.Hour, MaxEjectionPercent: 50}
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{c},
		service("broken", snapshot.Route{Name: "demo/broken/main", Targets: targets("broken", 1)})))
	for i := 0; i < 20; i++ {
		if code, _ := get(t, p, "broken.demo", "/"); code != 500 {
			t.Fatalf("status %d, want the backends' 500", code)
		}
	}
	const cn = `{envoy_cluster_name="cds_egress_global_broken_demo_http_80"}`
	if v := metricValue(t, p, "envoy_cluster_outlier_detection_ejections_active"+cn); v != "1" {
		t.Errorf("ejections_active = %q, want 1 (50%% of 2)", v)
	}
	if v := metricValue(t, p, "envoy_cluster_outlier_detection_ejections_overflow"+cn); v == "0" {
		t.Error("refused ejections must be counted")
	}
}

func TestConnectionPoolOverflow(t *testing.T) {
	const cn = `{envoy_cluster_name="cds_egress_global_slow_demo_http_80"}`
	checkOverflow(t, func(slow *backend) *snapshot.Snapshot {
		c := cluster("slow", slow)
		c.ConnectionPool = &snapshot.ConnectionPool{MaxConnections: 1, MaxPendingRequests: 1}
		return egressSnapshot(1, []snapshot.Cluster{c}, service("slow", snapshot.Route{Name: "demo/slow/main", Targets: targets("slow", 1)}))
	}, "envoy_cluster_upstream_rq_pending_active"+cn, "envoy_cluster_upstream_rq_pending_overflow"+cn)
}

func TestListenerConnectionPoolOverflow(t *testing.T) {
	const pn = `{envoy_http_conn_manager_prefix="egress"}`
	checkOverflow(t, func(slow *backend) *snapshot.Snapshot {
		s := egressSnapshot(1, []snapshot.Cluster{cluster("slow", slow)}, service("slow", snapshot.Route{Name: "demo/slow/main", Targets: targets("slow", 1)}))
		s.Listeners[0].ConnectionPool = &snapshot.ConnectionPool{MaxConnections: 1, MaxPendingRequests: 1}
		return s
	}, "canarymesh_http_downstream_rq_pending_active"+pn, "canarymesh_http_downstream_rq_overflow_total"+pn)
}

// checkOverflow holds one request in a pool of one, queues a second, and expects a third
// to be refused with 503 and x-envoy-overloaded while the first two succeed.
func checkOverflow(t *testing.T, snap func(*backend) *snapshot.Snapshot, pendingSeries, overflowSeries string) {
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "done")
	})
	p := startProxy(t, snap(slow))
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := get(t, p, "slow.demo", "/")
			codes <- code
		}()
		if i == 0 {
			<-arrived // the first request holds the only slot
		}
	}
	eventually(t, "the second request waits in the pool", func() bool { return metricValue(t, p, pendingSeries) == "1" })
	code, body, h := do(t, p, "egress", "GET", "slow.demo", "/", nil)
	if code != http.StatusServiceUnavailable || h.Get("X-Envoy-Overloaded") != "true" {
		t.Fatalf("overflow answered %d %q %v, want 503 with x-envoy-overloaded", code, body, h)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("a request within the pool got %d", c)
		}
	}
	if v := metricValue(t, p, overflowSeries); v != "1" {
		t.Errorf("%s = %q, want 1", overflowSeries, v)
	}
}

func TestWeightChangesUnderLoadLoseNothing(t *testing.T) {
	v1, v2 := newBackend(t, "v1", nil), newBackend(t, "v2", nil)
	clusters := []snapshot.Cluster{cluster("v1", v1), cluster("v2", v2)}
	snap := func(version uint64, w int) *snapshot.Snapshot {
		return egressSnapshot(version, clusters,
			service("podinfo", snapshot.Route{Name: "demo/podinfo/main", Targets: targets("v1", 100-w, "v2", w)}))
	}
	p := startProxy(t, snap(1, 0))
	addr := p.Addr("egress").String()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
				req.Host = "podinfo.demo"
				res, err := testClient.Do(req)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= 50; i++ {
		if err := p.Update(snap(uint64(i+1), i*2)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across 50 weight changes", failed.Load(), sent.Load())
	}
	if p.Version() != 51 || p.Addr("egress").String() != addr {
		t.Fatalf("version %d at %s; want 51 on the same socket %s", p.Version(), p.Addr("egress"), addr)
	}
	if v2.hits.Load() == 0 {
		t.Fatal("the new weights never took effect")
	}
}

func TestInFlightRequestFinishesOnItsSnapshot(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "old")
	})
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cluster("slow", slow)},
		service("podinfo", snapshot.Route{Name: "demo/podinfo/main", Targets: targets("slow", 1)})))
	done := make(chan string)
	go func() {
		code, body := get(t, p, "podinfo.demo", "/")
		done <- strconv.Itoa(code) + " " + body
	}()
	<-arrived
	other := newBackend(t, "other", nil)
	if err := p.Update(egressSnapshot(2, []snapshot.Cluster{cluster("other", other)},
		service("podinfo", snapshot.Route{Name: "demo/podinfo/main", Targets: targets("other", 1)}))); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, p, "podinfo.demo", "/"); code != 200 || body != "other" {
		t.Fatalf("a new request got %d %q, want the new snapshot's backend", code, body)
	}
	close(release)
	if got := <-done; got != "200 old" {
		t.Fatalf("the request in flight got %q; it must finish on the snapshot it started with", got)
	}
}

func TestBadRegexRejectedOldConfigKeepsServing(t *testing.T) {
	v1 := newBackend(t, "v1", nil)
	clusters := []snapshot.Cluster{cluster("v1", v1)}
	p := startProxy(t, egressSnapshot(7, clusters, service("podinfo", snapshot.Route{Name: "demo/podinfo/main", Targets: targets("v1", 1)})))
	bad := egressSnapshot(8, clusters, service("podinfo", snapshot.Route{Name: "demo/podinfo/main", Targets: targets("v1", 1),
		Match: snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-user", Regex: ptr("(unclosed")}}}}))
	err := p.Update(bad)
	if err == nil {
		t.Fatal("a snapshot with a bad regex must be rejected")
	}
	for _, want := range []string{"snapshot 8", "routes[0](demo/podinfo/main)", "match.headers[0]", "regex", "missing closing )"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if p.Version() != 7 {
		t.Errorf("version %d after a rejected snapshot, want 7", p.Version())
	}
	if code, body := get(t, p, "podinfo.demo", "/"); code != 200 || body != "v1" {
		t.Fatalf("the old snapshot must keep serving; got %d %q", code, body)
	}
}

func TestRejectsInconsistentSnapshots(t *testing.T) {
	p := New(Options{Bind: ephemeralBind})
	defer p.Close()
	for name, s := range map[string]*snapshot.Snapshot{
		"unknown cluster": egressSnapshot(1, nil, service("x", snapshot.Route{Name: "r", Targets: targets("nope", 1)})),
		"no targets":      egressSnapshot(1, nil, service("x", snapshot.Route{Name: "r"})),
		"unknown retry event": egressSnapshot(1, []snapshot.Cluster{{Name: "demo/a"}}, service("x", snapshot.Route{Name: "r",
			Targets: targets("a", 1), Retry: &snapshot.RetryPolicy{MaxRetries: 1, HTTPEvents: []string{"5xx"}}})),
		"bad kind": {Version: 1, Listeners: []snapshot.Listener{{Name: "l", Kind: "sideways"}}},
		"duplicate listener": {Version: 1, Listeners: []snapshot.Listener{
			{Name: "l", Kind: snapshot.Egress}, {Name: "l", Kind: snapshot.Egress}}},
		"missing local cluster": {Version: 1, Listeners: []snapshot.Listener{{Name: "ingress-80", Kind: snapshot.Ingress, LocalCluster: "local:demo/a"}}},
		"gateway route to nowhere": {Version: 1, Listeners: []snapshot.Listener{{Name: "gateway-80", Kind: snapshot.Gateway,
			VirtualHosts: []snapshot.VirtualHost{{Name: "gw", Domains: []string{"*"}, Routes: []snapshot.Route{{Name: "r", VirtualService: "demo/missing"}}}}}}},
		"bad access log format": {Version: 1, Listeners: []snapshot.Listener{{Name: "l", Kind: snapshot.Egress,
			AccessLog: &snapshot.AccessLog{Path: "/dev/stdout", Format: "text", Pattern: "%NOT_AN_OPERATOR%"}}}},
	} {
		if err := p.Update(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if p.Version() != 0 {
		t.Errorf("version %d after only rejected snapshots", p.Version())
	}
}
