package mesh

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// webV1Cluster compiles shop after changing node web-v1, and returns its cluster as the
// egress node sees it.
func webV1Cluster(t *testing.T, in *Inputs, change func(*v1alpha1.VirtualNode)) (*snapshot.Cluster, []Problem) {
	t.Helper()
	change(in.VirtualNodes[0])
	s, ps := compile(t, in, snapshot.EgressNode, nil)
	c := cluster(s, "shop/web-v1")
	if c == nil {
		t.Fatalf("no cluster shop/web-v1: %s", dump(s))
	}
	return c, ps
}

func TestPodSelectorEndpoints(t *testing.T) {
	inst := func(port int32, ready bool, rev string) v1alpha1.WorkloadInstance {
		return v1alpha1.WorkloadInstance{Port: port, Ready: ready, Revision: rev}
	}
	workloads := []*v1alpha1.Workload{
		newWorkload("shop", "web", map[string]string{"app": "web", "track": "stable"}, inst(7001, true, "r1"), inst(7002, false, "r1")),
		newWorkload("shop", "web-next", map[string]string{"app": "web", "track": "canary"}, inst(7010, true, "r2"), inst(0, false, "r2")),
		newWorkload("shop", "db", map[string]string{"app": "db"}, inst(7100, true, "")),
		newWorkload("other", "web", map[string]string{"app": "web"}, inst(7200, true, "x")),
	}
	tests := []struct {
		name     string
		selector *metav1.LabelSelector
		want     []string
	}{
		{"nil selects none", nil, nil},
		{"empty selects the namespace", &metav1.LabelSelector{}, []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7010", "127.0.0.1:7100"}},
		{"match labels", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			[]string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7010"}},
		{"match expressions", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "track", Operator: metav1.LabelSelectorOpIn, Values: []string{"canary"}}}}, []string{"127.0.0.1:7010"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := shop()
			in.Workloads = workloads
			c, _ := webV1Cluster(t, in, func(vn *v1alpha1.VirtualNode) {
				vn.Spec.PodSelector = tt.selector
				vn.Spec.ServiceDiscovery = &v1alpha1.ServiceDiscovery{DNS: &v1alpha1.DNSServiceDiscovery{Hostname: "web.shop.svc.cluster.local"}}
			})
			var got []string
			for _, e := range c.Endpoints {
				got = append(got, e.Address)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("endpoints %v, want %v", got, tt.want)
			}
			if (c.DNS == nil) != (tt.want != nil) {
				t.Errorf("dns %v: a node its workloads run is not resolved by DNS, any other is", c.DNS)
			}
		})
	}
	in := shop()
	in.Workloads = workloads
	c, _ := webV1Cluster(t, in, func(vn *v1alpha1.VirtualNode) {
		vn.Spec.PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"track": "stable"}}
	})
	want := []snapshot.Endpoint{
		{Address: "10.0.0.1:8080", Ready: true},
		{Address: "127.0.0.1:7001", Ready: true, Labels: map[string]string{"app": "web", "track": "stable", RevisionLabel: "r1"}},
		{Address: "127.0.0.1:7002", Ready: false, Labels: map[string]string{"app": "web", "track": "stable", RevisionLabel: "r1"}},
	}
	if !reflect.DeepEqual(c.Endpoints, want) {
		t.Errorf("endpoints with labels, readiness and static ones\n got %s\nwant %s", dump(c.Endpoints), dump(want))
	}
	if workloads[0].Spec.Labels[RevisionLabel] != "" {
		t.Error("the workload's labels were modified")
	}
}

func TestServiceDiscovery(t *testing.T) {
	tests := []struct {
		name    string
		sd      *v1alpha1.ServiceDiscovery
		wantEps []snapshot.Endpoint
		wantDNS *snapshot.DNSDiscovery
		problem string
	}{
		{"static", &v1alpha1.ServiceDiscovery{Static: []v1alpha1.StaticEndpoint{{Address: "vm2.lan", Port: 80}, {Address: "10.0.0.9", Port: 8080}, {Address: "::1", Port: 9}}},
			[]snapshot.Endpoint{{Address: "10.0.0.9:8080", Ready: true}, {Address: "[::1]:9", Ready: true}, {Address: "vm2.lan:80", Ready: true}}, nil, ""},
		{"dns default response type", &v1alpha1.ServiceDiscovery{DNS: &v1alpha1.DNSServiceDiscovery{Hostname: "web.shop.svc.cluster.local"}},
			nil, &snapshot.DNSDiscovery{Hostname: "web.shop.svc.cluster.local", Port: 8080, ResponseType: "LOADBALANCER"}, ""},
		{"dns endpoints", &v1alpha1.ServiceDiscovery{DNS: &v1alpha1.DNSServiceDiscovery{Hostname: "web", ResponseType: ptr("ENDPOINTS")}},
			nil, &snapshot.DNSDiscovery{Hostname: "web", Port: 8080, ResponseType: "ENDPOINTS"}, ""},
		{"cloud map", &v1alpha1.ServiceDiscovery{AWSCloudMap: &v1alpha1.AWSCloudMapServiceDiscovery{NamespaceName: "n", ServiceName: "s"}},
			nil, nil, "spec.serviceDiscovery.awsCloudMap"},
		{"none", nil, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ps := webV1Cluster(t, shop(), func(vn *v1alpha1.VirtualNode) { vn.Spec.ServiceDiscovery = tt.sd })
			if !reflect.DeepEqual(c.Endpoints, tt.wantEps) || !reflect.DeepEqual(c.DNS, tt.wantDNS) {
				t.Errorf("cluster %s", dump(c))
			}
			if tt.problem == "" && ps != nil || tt.problem != "" && !hasProblem(ps, "VirtualNode/shop/web-v1", false, tt.problem) {
				t.Errorf("problems %v", ps)
			}
		})
	}
}

func TestClusterPolicies(t *testing.T) {
	c, _ := webV1Cluster(t, shop(), func(vn *v1alpha1.VirtualNode) {
		vn.Spec.Listeners[0] = v1alpha1.Listener{
			PortMapping: v1alpha1.PortMapping{Port: 9090, Protocol: v1alpha1.PortProtocolHTTP2},
			OutlierDetection: &v1alpha1.OutlierDetection{MaxServerErrors: 5, Interval: v1alpha1.Duration{Unit: "s", Value: 10},
				BaseEjectionDuration: v1alpha1.Duration{Unit: "ms", Value: 30000}, MaxEjectionPercent: 50},
			ConnectionPool: &v1alpha1.VirtualNodeConnectionPool{HTTP2: &v1alpha1.HTTP2ConnectionPool{MaxRequests: 100}},
			HealthCheck: &v1alpha1.HealthCheckPolicy{Protocol: "http2", Path: ptr("/ready"), IntervalMillis: 5000, TimeoutMillis: 2000,
				HealthyThreshold: 2, UnhealthyThreshold: 3},
			Timeout: &v1alpha1.ListenerTimeout{HTTP2: &v1alpha1.HTTPTimeout{PerRequest: &v1alpha1.Duration{Unit: "s", Value: 15}}},
		}
	})
	want := snapshot.Cluster{
		Name: "shop/web-v1", Mesh: "m", Protocol: "http2", Port: 9090,
		Endpoints: []snapshot.Endpoint{{Address: "10.0.0.1:8080", Ready: true}},
		OutlierDetection: &snapshot.OutlierDetection{MaxServerErrors: 5, Interval: 10 * time.Second,
			BaseEjectionDuration: 30 * time.Second, MaxEjectionPercent: 50},
		ConnectionPool: &snapshot.ConnectionPool{MaxRequests: 100},
		HealthCheck: &snapshot.HealthCheck{Protocol: "http2", Path: "/ready", Interval: 5 * time.Second, Timeout: 2 * time.Second,
			HealthyThreshold: 2, UnhealthyThreshold: 3},
		Timeout: &snapshot.Timeouts{PerRequest: 15 * time.Second},
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("cluster\n got %s\nwant %s", dump(c), dump(want))
	}
}

func TestConnectionPools(t *testing.T) {
	tests := []struct {
		pool *v1alpha1.VirtualNodeConnectionPool
		want *snapshot.ConnectionPool
	}{
		{&v1alpha1.VirtualNodeConnectionPool{TCP: &v1alpha1.TCPConnectionPool{MaxConnections: 10}}, &snapshot.ConnectionPool{MaxConnections: 10}},
		{&v1alpha1.VirtualNodeConnectionPool{HTTP: &v1alpha1.HTTPConnectionPool{MaxConnections: 10, MaxPendingRequests: ptr(int64(20))}},
			&snapshot.ConnectionPool{MaxConnections: 10, MaxPendingRequests: 20}},
		{&v1alpha1.VirtualNodeConnectionPool{GRPC: &v1alpha1.GRPCConnectionPool{MaxRequests: 7}}, &snapshot.ConnectionPool{MaxRequests: 7}},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := connectionPool(tt.pool); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("connectionPool(%s) = %s, want %s", dump(tt.pool), dump(got), dump(tt.want))
		}
	}
}

func TestNodeWithoutListener(t *testing.T) {
	in := shop()
	p := v1alpha1.PortNumber(7000)
	t2 := target("web-v2", 20)
	t2.Port = &p
	in.VirtualRouters[0].Spec.Routes[0].HTTPRoute.Action.WeightedTargets[1] = t2
	in.VirtualNodes[0].Spec.Listeners = nil
	in.VirtualNodes[1].Spec.Listeners = nil
	s, ps := compile(t, in, snapshot.EgressNode, nil)
	if c := cluster(s, "shop/web-v1"); c.Protocol != "http" || c.Port != 0 {
		t.Errorf("cluster without listener or target port: %s", dump(c))
	}
	if c := cluster(s, "shop/web-v2"); c.Protocol != "http" || c.Port != 7000 {
		t.Errorf("cluster whose target names a port: %s", dump(c))
	}
	if !hasProblem(ps, "VirtualNode/shop/web-v1", false, "spec.listeners") || hasProblem(ps, "VirtualNode/shop/web-v2", false, "spec.listeners") {
		t.Errorf("problems %v", ps)
	}
}

func TestVirtualNodeIngress(t *testing.T) {
	in := shop()
	vn := in.VirtualNodes[0]
	vn.Spec.Listeners[0].Timeout = &v1alpha1.ListenerTimeout{HTTP: &v1alpha1.HTTPTimeout{Idle: &v1alpha1.Duration{Unit: "s", Value: 300}}}
	vn.Spec.Listeners[0].ConnectionPool = &v1alpha1.VirtualNodeConnectionPool{HTTP: &v1alpha1.HTTPConnectionPool{MaxConnections: 50}}
	vn.Spec.Listeners[0].HealthCheck = &v1alpha1.HealthCheckPolicy{Protocol: "http", Path: ptr("/healthz"), IntervalMillis: 10000,
		TimeoutMillis: 2000, HealthyThreshold: 2, UnhealthyThreshold: 2}
	vn.Spec.Listeners[0].OutlierDetection = &v1alpha1.OutlierDetection{MaxServerErrors: 1}
	vn.Spec.Logging = &v1alpha1.Logging{AccessLog: &v1alpha1.AccessLog{File: &v1alpha1.FileAccessLog{Path: "/dev/stdout",
		Format: &v1alpha1.LoggingFormat{JSON: []v1alpha1.JSONFormatRef{{Key: "status", Value: "%RESPONSE_CODE%"}}}}}}

	s, ps := compile(t, in, "VirtualNode/shop/web-v1", nil)
	if ps != nil || s.Mesh != "m" || len(s.Listeners) != 1 {
		t.Fatalf("snapshot %s problems %v", dump(s), ps)
	}
	want := snapshot.Listener{
		Name: "ingress-8080", Kind: snapshot.Ingress, Protocol: "http", Port: 8080, LocalCluster: "local:shop/web-v1",
		Timeout: &snapshot.Timeouts{Idle: 5 * time.Minute}, ConnectionPool: &snapshot.ConnectionPool{MaxConnections: 50},
		HealthCheck: &snapshot.HealthCheck{Protocol: "http", Path: "/healthz", Interval: 10 * time.Second, Timeout: 2 * time.Second,
			HealthyThreshold: 2, UnhealthyThreshold: 2},
		AccessLog: &snapshot.AccessLog{Path: "/dev/stdout", Format: "json", Fields: map[string]string{"status": "%RESPONSE_CODE%"}},
	}
	if !reflect.DeepEqual(s.Listeners[0], want) {
		t.Errorf("ingress listener\n got %s\nwant %s", dump(s.Listeners[0]), dump(want))
	}
	local := snapshot.Cluster{Name: "local:shop/web-v1", Mesh: "m", Protocol: "http", Port: 8080,
		Endpoints: []snapshot.Endpoint{{Address: "10.0.0.1:8080", Ready: true}}}
	if len(s.Clusters) != 1 || !reflect.DeepEqual(s.Clusters[0], local) {
		t.Errorf("local cluster (the node's endpoints, none of the callers' policies): %s", dump(s.Clusters))
	}

	side, _, err := Compile(in, "VirtualNode/shop/web-v1", nil, Options{Sidecar: true, EgressPort: 15999})
	if err != nil {
		t.Fatal(err)
	}
	if eps := side.Clusters[0].Endpoints; len(eps) != 1 || eps[0].Address != "127.0.0.1:8080" {
		t.Errorf("sidecar local cluster: %s", dump(side.Clusters[0]))
	}
	client, _, _ := Compile(in, "VirtualNode/shop/client", nil, Options{EgressPort: 15999})
	if l := listener(t, client, "egress"); l.Port != 15999 {
		t.Errorf("egress port %d", l.Port)
	}
	if got := clusterNames(client); got != "local:shop/client shop/web-v1 shop/web-v2" {
		t.Errorf("client clusters %q", got)
	}
}

func TestAccessLogText(t *testing.T) {
	got := accessLog(&v1alpha1.Logging{AccessLog: &v1alpha1.AccessLog{File: &v1alpha1.FileAccessLog{Path: "/var/log/a",
		Format: &v1alpha1.LoggingFormat{Text: ptr("%START_TIME% %RESPONSE_CODE%")}}}})
	want := &snapshot.AccessLog{Path: "/var/log/a", Format: "text", Pattern: "%START_TIME% %RESPONSE_CODE%"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("accessLog = %s", dump(got))
	}
	if got := accessLog(&v1alpha1.Logging{AccessLog: &v1alpha1.AccessLog{File: &v1alpha1.FileAccessLog{Path: "/p"}}}); got.Format != "text" || got.Pattern != "" {
		t.Errorf("default format: %s", dump(got))
	}
}
