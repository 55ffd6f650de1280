package mesh

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// compileRoute compiles shop with router web holding the one route rt, and returns
// that route as the egress node sees it.
func compileRoute(t *testing.T, rt v1alpha1.Route) snapshot.Route {
	t.Helper()
	in := shop()
	in.VirtualRouters[0].Spec.Routes = []v1alpha1.Route{rt}
	s, ps := compile(t, in, snapshot.EgressNode, nil)
	vh := virtualHost(s, "egress", "shop/web")
	if vh == nil || len(vh.Routes) != 1 {
		t.Fatalf("want one route in shop/web, got %s\nproblems: %v", dump(s), ps)
	}
	return vh.Routes[0]
}

func TestHTTPRouteMatches(t *testing.T) {
	targets := v1alpha1.HTTPRouteAction{WeightedTargets: []v1alpha1.WeightedTarget{target("web-v1", 1)}}
	port := v1alpha1.PortNumber(8080)
	tests := []struct {
		name  string
		match v1alpha1.HTTPRouteMatch
		want  snapshot.Match
	}{
		{"prefix", v1alpha1.HTTPRouteMatch{Prefix: ptr("/api")}, snapshot.Match{Prefix: "/api"}},
		{"path exact", v1alpha1.HTTPRouteMatch{Path: &v1alpha1.HTTPPathMatch{Exact: ptr("/healthz")}},
			snapshot.Match{Path: &snapshot.StringMatch{Exact: "/healthz"}}},
		{"path regex", v1alpha1.HTTPRouteMatch{Path: &v1alpha1.HTTPPathMatch{Regex: ptr("/v[0-9]+/.*")}},
			snapshot.Match{Path: &snapshot.StringMatch{Regex: "/v[0-9]+/.*"}}},
		{"method", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Method: ptr("POST")}, snapshot.Match{Prefix: "/", Method: "POST"}},
		{"scheme", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Scheme: ptr("https")}, snapshot.Match{Prefix: "/", Scheme: "https"}},
		{"port", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Port: &port}, snapshot.Match{Prefix: "/", Port: 8080}},
		{"header exact", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Headers: []v1alpha1.HTTPRouteHeader{
			{Name: "x-canary", Match: &v1alpha1.HeaderMatchMethod{Exact: ptr("insider")}}}},
			snapshot.Match{Prefix: "/", Headers: []snapshot.HeaderMatch{{Name: "x-canary", Exact: ptr("insider")}}}},
		{"header prefix", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Headers: []v1alpha1.HTTPRouteHeader{
			{Name: "user-agent", Match: &v1alpha1.HeaderMatchMethod{Prefix: ptr("curl/")}}}},
			snapshot.Match{Prefix: "/", Headers: []snapshot.HeaderMatch{{Name: "user-agent", Prefix: ptr("curl/")}}}},
		{"header suffix", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Headers: []v1alpha1.HTTPRouteHeader{
			{Name: "host", Match: &v1alpha1.HeaderMatchMethod{Suffix: ptr(".internal")}}}},
			snapshot.Match{Prefix: "/", Headers: []snapshot.HeaderMatch{{Name: "host", Suffix: ptr(".internal")}}}},
		{"header regex", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Headers: []v1alpha1.HTTPRouteHeader{
			{Name: "cookie", Match: &v1alpha1.HeaderMatchMethod{Regex: ptr("^(.*?;)?(canary=always)(;.*)?$")}}}},
			snapshot.Match{Prefix: "/", Headers: []snapshot.HeaderMatch{{Name: "cookie", Regex: ptr("^(.*?;)?(canary=always)(;.*)?$")}}}},
		{"header range", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Headers: []v1alpha1.HTTPRouteHeader{
			{Name: "x-tier", Match: &v1alpha1.HeaderMatchMethod{Range: &v1alpha1.MatchRange{Start: 1, End: 5}}}}},
			snapshot.Match{Prefix: "/", Headers: []snapshot.HeaderMatch{{Name: "x-tier", Range: &snapshot.MatchRange{Start: 1, End: 5}}}}},
		{"header invert", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Headers: []v1alpha1.HTTPRouteHeader{
			{Name: "x-debug", Match: &v1alpha1.HeaderMatchMethod{Exact: ptr("1")}, Invert: ptr(true)}}},
			snapshot.Match{Prefix: "/", Headers: []snapshot.HeaderMatch{{Name: "x-debug", Exact: ptr("1"), Invert: true}}}},
		{"header present", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Headers: []v1alpha1.HTTPRouteHeader{{Name: "x-user"}}},
			snapshot.Match{Prefix: "/", Headers: []snapshot.HeaderMatch{{Name: "x-user"}}}},
		{"query exact and present", v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), QueryParameters: []v1alpha1.HTTPQueryParameters{
			{Name: "version", Match: &v1alpha1.QueryMatchMethod{Exact: ptr("2")}}, {Name: "debug"}}},
			snapshot.Match{Prefix: "/", Query: []snapshot.QueryMatch{{Name: "version", Exact: ptr("2")}, {Name: "debug"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kind := range []string{"http", "http2"} {
				rt := v1alpha1.Route{Name: "r"}
				h := &v1alpha1.HTTPRoute{Match: tt.match, Action: targets}
				if kind == "http" {
					rt.HTTPRoute = h
				} else {
					rt.HTTP2Route = h
				}
				got := compileRoute(t, rt)
				if got.Protocol != kind {
					t.Errorf("%s: protocol %q", kind, got.Protocol)
				}
				if !reflect.DeepEqual(got.Match, tt.want) {
					t.Errorf("%s: match\n got %s\nwant %s", kind, dump(got.Match), dump(tt.want))
				}
			}
		})
	}
}

func TestGRPCAndTCPRoutes(t *testing.T) {
	port := v1alpha1.PortNumber(9000)
	grpc := compileRoute(t, v1alpha1.Route{Name: "g", GRPCRoute: &v1alpha1.GRPCRoute{
		Match: v1alpha1.GRPCRouteMatch{ServiceName: ptr("shop.Cart"), MethodName: ptr("Add"), Port: &port,
			Metadata: []v1alpha1.GRPCRouteMetadata{
				{Name: "tenant", Match: &v1alpha1.GRPCRouteMetadataMatchMethod{Prefix: ptr("eu-")}},
				{Name: "x-beta", Invert: ptr(true)},
			}},
		Action: v1alpha1.GRPCRouteAction{WeightedTargets: []v1alpha1.WeightedTarget{target("web-v1", 1)}},
		RetryPolicy: &v1alpha1.GRPCRetryPolicy{MaxRetries: 2, PerRetryTimeout: v1alpha1.Duration{Unit: "ms", Value: 250},
			GRPCRetryEvents: []v1alpha1.GRPCRetryPolicyEvent{"unavailable"}, TCPRetryEvents: []v1alpha1.TCPRetryPolicyEvent{"connection-error"}},
		Timeout: &v1alpha1.GRPCTimeout{PerRequest: &v1alpha1.Duration{Unit: "s", Value: 3}},
	}})
	wantMatch := snapshot.Match{GRPCService: "shop.Cart", GRPCMethod: "Add", Port: 9000, Metadata: []snapshot.HeaderMatch{
		{Name: "tenant", Prefix: ptr("eu-")}, {Name: "x-beta", Invert: true}}}
	if grpc.Protocol != "grpc" || !reflect.DeepEqual(grpc.Match, wantMatch) {
		t.Errorf("grpc route: %s", dump(grpc))
	}
	wantRetry := &snapshot.RetryPolicy{MaxRetries: 2, PerTryTimeout: 250 * time.Millisecond,
		GRPCEvents: []string{"unavailable"}, TCPEvents: []string{"connection-error"}}
	if !reflect.DeepEqual(grpc.Retry, wantRetry) || grpc.Timeout == nil || grpc.Timeout.PerRequest != 3*time.Second {
		t.Errorf("grpc retry/timeout: %s", dump(grpc))
	}

	tcp := compileRoute(t, v1alpha1.Route{Name: "t", TCPRoute: &v1alpha1.TCPRoute{
		Match:   &v1alpha1.TCPRouteMatch{Port: &port},
		Action:  v1alpha1.TCPRouteAction{WeightedTargets: []v1alpha1.WeightedTarget{target("web-v2", 1)}},
		Timeout: &v1alpha1.TCPTimeout{Idle: &v1alpha1.Duration{Unit: "s", Value: 30}},
	}})
	if tcp.Protocol != "tcp" || tcp.Match.Port != 9000 || tcp.Timeout == nil || tcp.Timeout.Idle != 30*time.Second {
		t.Errorf("tcp route: %s", dump(tcp))
	}
}

func TestHTTPRetryTimeoutAndTargets(t *testing.T) {
	p := v1alpha1.PortNumber(8080)
	other := target("web-v2", 30)
	other.VirtualNodeRef.Namespace = ptr("shop")
	other.Port = &p
	r := compileRoute(t, v1alpha1.Route{Name: "r", HTTPRoute: &v1alpha1.HTTPRoute{
		Match:  v1alpha1.HTTPRouteMatch{Prefix: ptr("/")},
		Action: v1alpha1.HTTPRouteAction{WeightedTargets: []v1alpha1.WeightedTarget{target("web-v1", 70), other}},
		RetryPolicy: &v1alpha1.HTTPRetryPolicy{MaxRetries: 3, PerRetryTimeout: v1alpha1.Duration{Unit: "s", Value: 1},
			HTTPRetryEvents: []v1alpha1.HTTPRetryPolicyEvent{"server-error", "gateway-error"}},
		Timeout: &v1alpha1.HTTPTimeout{PerRequest: &v1alpha1.Duration{Unit: "ms", Value: 1500}, Idle: &v1alpha1.Duration{Unit: "s", Value: 60}},
	}})
	want := snapshot.Route{
		Name: "shop/web/r", Priority: unsetPriority, Protocol: "http", Match: snapshot.Match{Prefix: "/"},
		Targets: []snapshot.WeightedCluster{{Cluster: "shop/web-v1", Weight: 70}, {Cluster: "shop/web-v2", Weight: 30, Port: 8080}},
		Retry:   &snapshot.RetryPolicy{MaxRetries: 3, PerTryTimeout: time.Second, HTTPEvents: []string{"server-error", "gateway-error"}},
		Timeout: &snapshot.Timeouts{PerRequest: 1500 * time.Millisecond, Idle: time.Minute},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("route\n got %s\nwant %s", dump(r), dump(want))
	}
}

func TestRoutePriorityOrder(t *testing.T) {
	in := shop()
	mk := func(name string, prio *int64) v1alpha1.Route {
		r := httpRoute(name, target("web-v1", 1))
		r.Priority = prio
		return r
	}
	in.VirtualRouters[0].Spec.Routes = []v1alpha1.Route{
		mk("a", nil), mk("b", ptr(int64(5))), mk("c", nil), mk("d", ptr(int64(0))), mk("e", ptr(int64(5))), mk("f", ptr(int64(1000))),
	}
	s, _ := compile(t, in, snapshot.EgressNode, nil)
	var got []string
	for _, r := range virtualHost(s, "egress", "shop/web").Routes {
		got = append(got, strings.TrimPrefix(r.Name, "shop/web/"))
	}
	if strings.Join(got, "") != "dbefac" {
		t.Errorf("route order %v, want d b e f a c (priority, unset last, declaration order among equals)", got)
	}
}

func TestBadRouteFailsTheService(t *testing.T) {
	tests := []struct {
		name  string
		route v1alpha1.Route
		field string
	}{
		{"bad path regex", v1alpha1.Route{Name: "r", HTTPRoute: &v1alpha1.HTTPRoute{
			Match:  v1alpha1.HTTPRouteMatch{Path: &v1alpha1.HTTPPathMatch{Regex: ptr("(unclosed")}},
			Action: v1alpha1.HTTPRouteAction{WeightedTargets: []v1alpha1.WeightedTarget{target("web-v1", 1)}}}},
			"spec.routes[1].httpRoute.match.path.regex"},
		{"bad header regex", v1alpha1.Route{Name: "r", HTTP2Route: &v1alpha1.HTTPRoute{
			Match: v1alpha1.HTTPRouteMatch{Prefix: ptr("/"), Headers: []v1alpha1.HTTPRouteHeader{
				{Name: "h", Match: &v1alpha1.HeaderMatchMethod{Regex: ptr("a(?P<x")}}}},
			Action: v1alpha1.HTTPRouteAction{WeightedTargets: []v1alpha1.WeightedTarget{target("web-v1", 1)}}}},
			"spec.routes[1].http2Route.match.headers[0].match.regex"},
		{"bad metadata regex", v1alpha1.Route{Name: "r", GRPCRoute: &v1alpha1.GRPCRoute{
			Match: v1alpha1.GRPCRouteMatch{Metadata: []v1alpha1.GRPCRouteMetadata{
				{Name: "m", Match: &v1alpha1.GRPCRouteMetadataMatchMethod{Regex: ptr("[")}}}},
			Action: v1alpha1.GRPCRouteAction{WeightedTargets: []v1alpha1.WeightedTarget{target("web-v1", 1)}}}},
			"spec.routes[1].grpcRoute.match.metadata[0].match.regex"},
		{"missing target node", httpRoute("r", target("web-v9", 1)),
			"spec.routes[1].httpRoute.action.weightedTargets[0].virtualNodeRef"},
		{"ARN target", httpRoute("r", v1alpha1.WeightedTarget{VirtualNodeARN: ptr("arn:aws:appmesh:x"), Weight: 1}),
			"spec.routes[1].httpRoute.action.weightedTargets[0].virtualNodeARN"},
		{"no route kind", v1alpha1.Route{Name: "r"}, "spec.routes[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := shop()
			in.VirtualRouters[0].Spec.Routes = []v1alpha1.Route{httpRoute("ok", target("web-v1", 1)), tt.route}
			s, ps := compile(t, in, snapshot.EgressNode, nil)
			if vh := virtualHost(s, "egress", "shop/web"); vh != nil {
				t.Errorf("service with a bad route is served: %s", dump(vh))
			}
			if len(ps) != 1 || ps[0].Object != "VirtualRouter/shop/web" || ps[0].Field != tt.field || ps[0].KeptLastGood {
				t.Errorf("problems %v, want one on VirtualRouter/shop/web %s", ps, tt.field)
			}
		})
	}
}
