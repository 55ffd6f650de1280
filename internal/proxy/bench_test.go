package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// benchSnapshot is an egress listener with 50 virtual services; the one under test has
// a header route (regex), a gRPC-less prefix route and a 90/10 weighted default.
func benchSnapshot() *snapshot.Snapshot {
	s := &snapshot.Snapshot{Version: 1, Node: snapshot.EgressNode}
	l := snapshot.Listener{Name: "egress", Kind: snapshot.Egress, Protocol: "http", Port: 15001}
	for i := 0; i < 50; i++ {
		name := fmt.Sprintf("svc%d", i)
		s.Clusters = append(s.Clusters, snapshot.Cluster{Name: "demo/" + name, Protocol: "http", Port: 80,
			Endpoints: []snapshot.Endpoint{{Address: fmt.Sprintf("127.0.0.1:%d", 20000+i), Ready: true}}})
		l.VirtualHosts = append(l.VirtualHosts, snapshot.VirtualHost{Name: "demo/" + name,
			Domains: []string{name + ".demo", name + ".demo.svc.cluster.local"},
			Routes:  []snapshot.Route{{Name: "demo/r/" + name, Targets: []snapshot.WeightedCluster{{Cluster: "demo/" + name, Weight: 1}}}}})
	}
	s.Clusters = append(s.Clusters,
		snapshot.Cluster{Name: "demo/podinfo-primary", Protocol: "http", Port: 9898,
			Endpoints: []snapshot.Endpoint{{Address: "127.0.0.1:1", Ready: true}, {Address: "127.0.0.1:2", Ready: true}, {Address: "127.0.0.1:3", Ready: true}}},
		snapshot.Cluster{Name: "demo/podinfo-canary", Protocol: "http", Port: 9898,
			Endpoints: []snapshot.Endpoint{{Address: "127.0.0.1:4", Ready: true}}})
	l.VirtualHosts = append(l.VirtualHosts, snapshot.VirtualHost{Name: "demo/podinfo",
		Domains: []string{"podinfo.demo", "podinfo.demo.svc.cluster.local"},
		Routes: []snapshot.Route{
			{Name: "demo/podinfo/insiders", Match: snapshot.Match{Prefix: "/", Headers: []snapshot.HeaderMatch{
				{Name: "x-canary", Regex: ptr("insider|beta")}}},
				Targets: []snapshot.WeightedCluster{{Cluster: "demo/podinfo-canary", Weight: 100}}},
			{Name: "demo/podinfo/admin", Match: snapshot.Match{Prefix: "/admin"},
				Targets: []snapshot.WeightedCluster{{Cluster: "demo/podinfo-primary", Weight: 100}}},
			{Name: "demo/podinfo/default", Match: snapshot.Match{Prefix: "/"},
				Targets: []snapshot.WeightedCluster{{Cluster: "demo/podinfo-primary", Weight: 90}, {Cluster: "demo/podinfo-canary", Weight: 10}}},
		}})
	s.Listeners = []snapshot.Listener{l}
	return s
}

func benchTable(tb testing.TB) (*hostTable, *request) {
	c, err := compile(benchSnapshot())
	if err != nil {
		tb.Fatal(err)
	}
	req := &request{method: "GET", scheme: "http", host: "podinfo.demo", port: 15001, path: "/api/info",
		header: stdHeader(http.Header{"User-Agent": {"hey/0.0.1"}, "Accept": {"*/*"}})}
	return c.listeners["egress"].hosts, req
}

// benchUpstream is an upstream with three endpoints and no background work.
func benchUpstream() *upstream {
	p := New(Options{})
	u := newUpstream(p, &clusterUse{key: upstreamKey{"egress", "demo/x", 80}, protocol: "http",
		cluster: &snapshot.Cluster{Name: "demo/x"}, statName: "cds_egress_x"})
	u.apply(&clusterUse{protocol: "http", cluster: &snapshot.Cluster{Name: "demo/x", Endpoints: []snapshot.Endpoint{
		{Address: "127.0.0.1:1", Ready: true}, {Address: "127.0.0.1:2", Ready: true}, {Address: "127.0.0.1:3", Ready: true}}}})
	return u
}

func BenchmarkRouteMatch(b *testing.B) {
	tbl, req := benchTable(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, rt := tbl.selectRoute(req); rt == nil {
			b.Fatal("no route")
		}
	}
}

func BenchmarkRouteMatchHeaderRegex(b *testing.B) {
	tbl, req := benchTable(b)
	req.header = stdHeader(http.Header{"X-Canary": {"beta"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, rt := tbl.selectRoute(req); rt == nil || rt.name != "demo/podinfo/insiders" {
			b.Fatal("wrong route")
		}
	}
}

func BenchmarkWeightedPick(b *testing.B) {
	w := newWeighted([]*target{{weight: 90}, {weight: 10}})
	b.ReportAllocs()
	for b.Loop() {
		if w.pick() == nil {
			b.Fatal("no target")
		}
	}
}

func BenchmarkEndpointPick(b *testing.B) {
	u := benchUpstream()
	b.ReportAllocs()
	for b.Loop() {
		if u.pick(nil) == nil {
			b.Fatal("no endpoint")
		}
	}
}

// BenchmarkRouteAndPick is the whole routing decision of one request.
func BenchmarkRouteAndPick(b *testing.B) {
	tbl, req := benchTable(b)
	u := benchUpstream()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, rt := tbl.selectRoute(req)
			if t := rt.targets.pick(); t == nil || u.pick(nil) == nil {
				b.Fatal("no pick")
			}
		}
	})
}

func BenchmarkMetricsRecord(b *testing.B) {
	st := &clusterStats{rqTime: newHistogram(envoyBucketsMS)}
	w := &window{}
	p := New(Options{})
	b.ReportAllocs()
	for b.Loop() {
		st.rq.add(200)
		st.rqTotal.Add(1)
		st.rqTime.observe(1500000)
		w.record(p.now(), 200, 1500000)
	}
}

// BenchmarkServeHTTP is one proxied request through the net/http-based path, handler
// to a loopback backend and back, without the client's side of the socket: the
// baseline the purpose-built HTTP/1.1 path is measured against.
func BenchmarkServeHTTP(b *testing.B) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer be.Close()
	s := egressSnapshot(1, []snapshot.Cluster{{Name: "demo/be", Protocol: "http", Port: 80,
		Endpoints: []snapshot.Endpoint{{Address: be.Listener.Addr().String(), Ready: true}}}},
		snapshot.VirtualHost{Name: "demo/be", Domains: []string{"be.demo"},
			Routes: []snapshot.Route{{Name: "demo/be/main", Targets: []snapshot.WeightedCluster{{Cluster: "demo/be", Weight: 1}}}}})
	p := New(Options{Bind: ephemeralBind})
	defer p.Close()
	if err := p.Update(s); err != nil {
		b.Fatal(err)
	}
	p.mu.Lock()
	l := p.listeners["egress"]
	p.mu.Unlock()
	req := httptest.NewRequest("GET", "http://be.demo/", nil)
	b.ReportAllocs()
	for b.Loop() {
		req.Header = http.Header{"User-Agent": {"bench"}}
		rec := httptest.NewRecorder()
		l.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
