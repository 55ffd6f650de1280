package v1alpha1

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validVirtualRouter() *VirtualRouter {
	ms := func(v int64) Duration { return Duration{Unit: DurationUnitMS, Value: v} }
	target := func(name string, weight int64) WeightedTarget {
		return WeightedTarget{VirtualNodeRef: &VirtualNodeReference{Name: name}, Weight: weight}
	}
	return &VirtualRouter{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Spec: VirtualRouterSpec{
			Listeners: []VirtualRouterListener{{PortMapping: PortMapping{Port: 9898, Protocol: PortProtocolHTTP}}},
			Routes: []Route{
				{Name: "podinfo", Priority: meshPtr(int64(10)), HTTPRoute: &HTTPRoute{
					Match: HTTPRouteMatch{
						Prefix: meshPtr("/"),
						Headers: []HTTPRouteHeader{
							{Name: "x-canary", Match: &HeaderMatchMethod{Exact: meshPtr("insider")}},
							{Name: "user-agent", Match: &HeaderMatchMethod{Regex: meshPtr(".*Firefox.*")}, Invert: meshPtr(true)},
							{Name: "x-tier", Match: &HeaderMatchMethod{Range: &MatchRange{Start: 1, End: 5}}},
							{Name: "x-prefix", Match: &HeaderMatchMethod{Prefix: meshPtr("a")}},
							{Name: "x-suffix", Match: &HeaderMatchMethod{Suffix: meshPtr("z")}},
							{Name: "x-present"},
						},
						QueryParameters: []HTTPQueryParameters{{Name: "beta", Match: &QueryMatchMethod{Exact: meshPtr("1")}}, {Name: "debug"}},
						Method:          meshPtr("GET"),
						Scheme:          meshPtr("https"),
						Port:            meshPtr(PortNumber(9898)),
					},
					Action: HTTPRouteAction{WeightedTargets: []WeightedTarget{
						target("podinfo-primary", 90),
						{VirtualNodeARN: meshPtr("arn:aws:appmesh:us-west-2:123456789012:mesh/m/virtualNode/canary"), Weight: 10, Port: meshPtr(PortNumber(9898)),
							ResponseCookies: []ResponseCookie{{Name: "canary", Value: "k3Xa9", MaxAge: 3600, Path: "/", SameSite: "Lax", Secure: true}}},
					}, Mirror: &RouteMirror{VirtualNodeRef: VirtualNodeReference{Name: "podinfo-canary"}, Percent: 50}},
					RetryPolicy: &HTTPRetryPolicy{HTTPRetryEvents: []HTTPRetryPolicyEvent{"server-error", "gateway-error"},
						TCPRetryEvents: []TCPRetryPolicyEvent{"connection-error"}, MaxRetries: 3, PerRetryTimeout: ms(500)},
					Timeout: &HTTPTimeout{PerRequest: meshPtr(ms(15000)), Idle: meshPtr(ms(300000))},
				}},
				{Name: "api-v2", Priority: meshPtr(int64(0)), HTTP2Route: &HTTPRoute{
					Match:  HTTPRouteMatch{Path: &HTTPPathMatch{Regex: meshPtr("^/api/v2/[a-z]+$")}},
					Action: HTTPRouteAction{WeightedTargets: []WeightedTarget{target("podinfo-primary", 100)}},
				}},
				{Name: "grpc", GRPCRoute: &GRPCRoute{
					Match: GRPCRouteMatch{ServiceName: meshPtr("podinfo.v1.Echo"), MethodName: meshPtr("Say"), Port: meshPtr(PortNumber(9898)),
						Metadata: []GRPCRouteMetadata{
							{Name: "tenant", Match: &GRPCRouteMetadataMatchMethod{Exact: meshPtr("acme")}},
							{Name: "build", Match: &GRPCRouteMetadataMatchMethod{Range: &MatchRange{Start: 100, End: 200}}, Invert: meshPtr(false)},
							{Name: "region", Match: &GRPCRouteMetadataMatchMethod{Regex: meshPtr("eu-.*")}},
						}},
					Action: GRPCRouteAction{WeightedTargets: []WeightedTarget{target("podinfo-primary", 1)}},
					RetryPolicy: &GRPCRetryPolicy{GRPCRetryEvents: []GRPCRetryPolicyEvent{"unavailable", "deadline-exceeded"},
						MaxRetries: 0, PerRetryTimeout: Duration{Unit: DurationUnitS, Value: 1}},
					Timeout: &GRPCTimeout{PerRequest: meshPtr(ms(1000))},
				}},
				{Name: "tcp", TCPRoute: &TCPRoute{
					Match:   &TCPRouteMatch{Port: meshPtr(PortNumber(9898))},
					Action:  TCPRouteAction{WeightedTargets: []WeightedTarget{target("podinfo-primary", 100)}},
					Timeout: &TCPTimeout{Idle: meshPtr(ms(60000))},
				}},
			},
		},
	}
}

type vrRule = meshRule[VirtualRouter]

func httpRoute0(vr *VirtualRouter) *HTTPRoute { return vr.Spec.Routes[0].HTTPRoute }
func grpcRoute2(vr *VirtualRouter) *GRPCRoute { return vr.Spec.Routes[2].GRPCRoute }

func TestVirtualRouterValidate(t *testing.T) {
	r0 := "spec.routes[0]"
	rules := []vrRule{
		{"name required", func(vr *VirtualRouter) { vr.Name = "" }, "metadata.name", "is required"},
		{"awsName length", func(vr *VirtualRouter) { vr.Spec.AWSName = meshPtr(strings.Repeat("a", 256)) }, "spec.awsName", "at most 255 allowed"},
		{"at most one listener", func(vr *VirtualRouter) { vr.Spec.Listeners = append(vr.Spec.Listeners, vr.Spec.Listeners[0]) }, "spec.listeners", "has 2 items, at most 1 allowed"},
		{"listener port", func(vr *VirtualRouter) { vr.Spec.Listeners[0].PortMapping.Port = 65536 }, "spec.listeners[0].portMapping.port", "65536 is above 65535"},
		{"listener protocol", func(vr *VirtualRouter) { vr.Spec.Listeners[0].PortMapping.Protocol = "udp" }, "spec.listeners[0].portMapping.protocol", `"udp" is not one of`},
		{"route name required", func(vr *VirtualRouter) { vr.Spec.Routes[0].Name = "" }, r0 + ".name", "is required"},
		{"route name length", func(vr *VirtualRouter) { vr.Spec.Routes[0].Name = strings.Repeat("r", 256) }, r0 + ".name", "at most 255 allowed"},
		{"route names unique", func(vr *VirtualRouter) { vr.Spec.Routes[3].Name = "podinfo" }, "spec.routes[3].name", `"podinfo" is also the name of spec.routes[0]`},
		{"route needs a kind", func(vr *VirtualRouter) { vr.Spec.Routes[0].HTTPRoute = nil }, r0, "exactly one of grpcRoute, httpRoute, http2Route, tcpRoute is required"},
		{"route one kind", func(vr *VirtualRouter) { vr.Spec.Routes[0].TCPRoute = vr.Spec.Routes[3].TCPRoute }, r0, "only one of grpcRoute, httpRoute, http2Route, tcpRoute may be set, found httpRoute and tcpRoute"},
		{"priority min", func(vr *VirtualRouter) { vr.Spec.Routes[0].Priority = meshPtr(int64(-1)) }, r0 + ".priority", "-1 is below 0"},
		{"priority max", func(vr *VirtualRouter) { vr.Spec.Routes[0].Priority = meshPtr(int64(1001)) }, r0 + ".priority", "1001 is above 1000"},
		// HTTP matching.
		{"prefix or path", func(vr *VirtualRouter) { httpRoute0(vr).Match.Prefix = nil }, r0 + ".httpRoute.match", "exactly one of prefix, path is required"},
		{"not prefix and path", func(vr *VirtualRouter) { httpRoute0(vr).Match.Path = &HTTPPathMatch{Exact: meshPtr("/x")} }, r0 + ".httpRoute.match", "only one of prefix, path may be set"},
		{"prefix starts with slash", func(vr *VirtualRouter) { httpRoute0(vr).Match.Prefix = meshPtr("api") }, r0 + ".httpRoute.match.prefix", `"api" does not start with "/"`},
		{"path one kind", func(vr *VirtualRouter) { vr.Spec.Routes[1].HTTP2Route.Match.Path.Exact = meshPtr("/x") }, "spec.routes[1].http2Route.match.path", "only one of exact, regex may be set"},
		{"path needs a kind", func(vr *VirtualRouter) { vr.Spec.Routes[1].HTTP2Route.Match.Path = &HTTPPathMatch{} }, "spec.routes[1].http2Route.match.path", "exactly one of exact, regex is required"},
		{"path regex compiles", func(vr *VirtualRouter) { vr.Spec.Routes[1].HTTP2Route.Match.Path.Regex = meshPtr("(") }, "spec.routes[1].http2Route.match.path.regex", "is not a valid regular expression (Go RE2 syntax)"},
		{"path exact length", func(vr *VirtualRouter) {
			vr.Spec.Routes[1].HTTP2Route.Match.Path = &HTTPPathMatch{Exact: meshPtr("/" + strings.Repeat("p", 255))}
		}, "spec.routes[1].http2Route.match.path.exact", "has 256 characters, at most 255 allowed"},
		{"path exact not empty", func(vr *VirtualRouter) { vr.Spec.Routes[1].HTTP2Route.Match.Path = &HTTPPathMatch{Exact: meshPtr("")} }, "spec.routes[1].http2Route.match.path.exact", "must not be empty"},
		{"headers at least 1", func(vr *VirtualRouter) { httpRoute0(vr).Match.Headers = []HTTPRouteHeader{} }, r0 + ".httpRoute.match.headers", "has 0 items, at least 1 expected"},
		{"headers at most 10", func(vr *VirtualRouter) { httpRoute0(vr).Match.Headers = make([]HTTPRouteHeader, 11) }, r0 + ".httpRoute.match.headers", "has 11 items, at most 10 allowed"},
		{"header name required", func(vr *VirtualRouter) { httpRoute0(vr).Match.Headers[0].Name = "" }, r0 + ".httpRoute.match.headers[0].name", "is required"},
		{"header name length", func(vr *VirtualRouter) { httpRoute0(vr).Match.Headers[0].Name = strings.Repeat("h", 51) }, r0 + ".httpRoute.match.headers[0].name", "has 51 characters, at most 50 allowed"},
		{"header match needs a kind", func(vr *VirtualRouter) { httpRoute0(vr).Match.Headers[0].Match = &HeaderMatchMethod{} }, r0 + ".httpRoute.match.headers[0].match", "exactly one of exact, prefix, range, regex, suffix is required"},
		{"header match one kind", func(vr *VirtualRouter) { httpRoute0(vr).Match.Headers[0].Match.Suffix = meshPtr("r") }, r0 + ".httpRoute.match.headers[0].match", "only one of exact, prefix, range, regex, suffix may be set, found exact and suffix"},
		{"header regex compiles", func(vr *VirtualRouter) { httpRoute0(vr).Match.Headers[1].Match.Regex = meshPtr("[a-") }, r0 + ".httpRoute.match.headers[1].match.regex", `"[a-" is not a valid regular expression (Go RE2 syntax)`},
		{"header range order", func(vr *VirtualRouter) { httpRoute0(vr).Match.Headers[2].Match.Range.End = 1 }, r0 + ".httpRoute.match.headers[2].match.range.end", "1 is not above start 1"},
		{"header exact length", func(vr *VirtualRouter) {
			httpRoute0(vr).Match.Headers[0].Match.Exact = meshPtr(strings.Repeat("e", 256))
		}, r0 + ".httpRoute.match.headers[0].match.exact", "at most 255 allowed"},
		{"header prefix not empty", func(vr *VirtualRouter) { httpRoute0(vr).Match.Headers[3].Match.Prefix = meshPtr("") }, r0 + ".httpRoute.match.headers[3].match.prefix", "must not be empty"},
		{"header suffix length", func(vr *VirtualRouter) {
			httpRoute0(vr).Match.Headers[4].Match.Suffix = meshPtr(strings.Repeat("s", 256))
		}, r0 + ".httpRoute.match.headers[4].match.suffix", "at most 255 allowed"},
		{"query at most 10", func(vr *VirtualRouter) { httpRoute0(vr).Match.QueryParameters = make([]HTTPQueryParameters, 11) }, r0 + ".httpRoute.match.queryParameters", "has 11 items, at most 10 allowed"},
		{"query at least 1", func(vr *VirtualRouter) { httpRoute0(vr).Match.QueryParameters = []HTTPQueryParameters{} }, r0 + ".httpRoute.match.queryParameters", "has 0 items, at least 1 expected"},
		{"query name required", func(vr *VirtualRouter) { httpRoute0(vr).Match.QueryParameters[0].Name = "" }, r0 + ".httpRoute.match.queryParameters[0].name", "is required"},
		{"query match exact", func(vr *VirtualRouter) { httpRoute0(vr).Match.QueryParameters[1].Match = &QueryMatchMethod{} }, r0 + ".httpRoute.match.queryParameters[1].match.exact", "is required"},
		{"method enum", func(vr *VirtualRouter) { httpRoute0(vr).Match.Method = meshPtr("FETCH") }, r0 + ".httpRoute.match.method", `"FETCH" is not one of CONNECT, DELETE, GET`},
		{"scheme enum", func(vr *VirtualRouter) { httpRoute0(vr).Match.Scheme = meshPtr("ftp") }, r0 + ".httpRoute.match.scheme", `"ftp" is not one of http, https`},
		{"match port", func(vr *VirtualRouter) { httpRoute0(vr).Match.Port = meshPtr(PortNumber(0)) }, r0 + ".httpRoute.match.port", "0 is below 1"},
	}
	rules = append(rules, virtualRouterActionRules()...)
	rules = append(rules, virtualRouterGRPCAndTCPRules()...)
	rules = append(rules, virtualRouterExtensionRules()...)
	runMeshRules(t, validVirtualRouter, rules)
}

func virtualRouterActionRules() []vrRule {
	wt := "spec.routes[0].httpRoute.action.weightedTargets"
	rp := "spec.routes[0].httpRoute.retryPolicy"
	retry := func(vr *VirtualRouter) *HTTPRetryPolicy { return httpRoute0(vr).RetryPolicy }
	return []vrRule{
		{"targets at least 1", func(vr *VirtualRouter) { httpRoute0(vr).Action.WeightedTargets = nil }, wt, "has 0 items, at least 1 expected"},
		{"targets at most 10", func(vr *VirtualRouter) {
			httpRoute0(vr).Action.WeightedTargets = make([]WeightedTarget, 11)
		}, wt, "has 11 items, at most 10 allowed"},
		{"weight max", func(vr *VirtualRouter) { httpRoute0(vr).Action.WeightedTargets[1].Weight = 150 }, wt + "[1].weight", "150 is above 100"},
		{"weight min", func(vr *VirtualRouter) { httpRoute0(vr).Action.WeightedTargets[0].Weight = -1 }, wt + "[0].weight", "-1 is below 0"},
		{"target needs a node", func(vr *VirtualRouter) { httpRoute0(vr).Action.WeightedTargets[0].VirtualNodeRef = nil }, wt + "[0]", "exactly one of virtualNodeRef, virtualNodeARN is required"},
		{"target one node", func(vr *VirtualRouter) { httpRoute0(vr).Action.WeightedTargets[0].VirtualNodeARN = meshPtr("arn") }, wt + "[0]", "only one of virtualNodeRef, virtualNodeARN may be set"},
		{"target ref name", func(vr *VirtualRouter) { httpRoute0(vr).Action.WeightedTargets[0].VirtualNodeRef.Name = "" }, wt + "[0].virtualNodeRef.name", "is required"},
		{"target arn not empty", func(vr *VirtualRouter) { httpRoute0(vr).Action.WeightedTargets[1].VirtualNodeARN = meshPtr("") }, wt + "[1].virtualNodeARN", "must not be empty"},
		{"target port", func(vr *VirtualRouter) { httpRoute0(vr).Action.WeightedTargets[1].Port = meshPtr(PortNumber(0)) }, wt + "[1].port", "0 is below 1"},
		{"http2 weight", func(vr *VirtualRouter) { vr.Spec.Routes[1].HTTP2Route.Action.WeightedTargets[0].Weight = 101 }, "spec.routes[1].http2Route.action.weightedTargets[0].weight", "101 is above 100"},
		{"retry needs events", func(vr *VirtualRouter) { retry(vr).HTTPRetryEvents, retry(vr).TCPRetryEvents = nil, nil }, rp, "at least one of httpRetryEvents, tcpRetryEvents is required"},
		{"http retry event enum", func(vr *VirtualRouter) { retry(vr).HTTPRetryEvents[0] = "5xx" }, rp + ".httpRetryEvents[0]", `"5xx" is not one of server-error, gateway-error, client-error, stream-error`},
		{"http retry events at most 25", func(vr *VirtualRouter) {
			retry(vr).HTTPRetryEvents = make([]HTTPRetryPolicyEvent, 26)
		}, rp + ".httpRetryEvents", "has 26 items, at most 25 allowed"},
		{"retry events once", func(vr *VirtualRouter) { retry(vr).HTTPRetryEvents[1] = "server-error" }, rp + ".httpRetryEvents[1]", `"server-error" is listed twice`},
		{"tcp retry event enum", func(vr *VirtualRouter) { retry(vr).TCPRetryEvents[0] = "reset" }, rp + ".tcpRetryEvents[0]", `"reset" is not one of connection-error`},
		{"tcp retry events at most 1", func(vr *VirtualRouter) {
			retry(vr).TCPRetryEvents = append(retry(vr).TCPRetryEvents, "connection-error")
		}, rp + ".tcpRetryEvents", "has 2 items, at most 1 allowed"},
		{"maxRetries min", func(vr *VirtualRouter) { retry(vr).MaxRetries = -1 }, rp + ".maxRetries", "-1 is below 0"},
		{"perRetryTimeout required", func(vr *VirtualRouter) { retry(vr).PerRetryTimeout = Duration{} }, rp + ".perRetryTimeout", "is required"},
		{"perRetryTimeout unit", func(vr *VirtualRouter) { retry(vr).PerRetryTimeout.Unit = "us" }, rp + ".perRetryTimeout.unit", `"us" is not one of ms, s`},
		{"http route timeout", func(vr *VirtualRouter) { httpRoute0(vr).Timeout.Idle.Unit = "min" }, "spec.routes[0].httpRoute.timeout.idle.unit", `"min" is not one of ms, s`},
	}
}

func virtualRouterGRPCAndTCPRules() []vrRule {
	g := "spec.routes[2].grpcRoute"
	tcp := func(vr *VirtualRouter) *TCPRoute { return vr.Spec.Routes[3].TCPRoute }
	md := func(vr *VirtualRouter, i int) *GRPCRouteMetadataMatchMethod {
		return grpcRoute2(vr).Match.Metadata[i].Match
	}
	return []vrRule{
		{"method needs service", func(vr *VirtualRouter) { grpcRoute2(vr).Match.ServiceName = nil }, g + ".match.serviceName", "is required when methodName is set"},
		{"method name length", func(vr *VirtualRouter) { grpcRoute2(vr).Match.MethodName = meshPtr(strings.Repeat("m", 51)) }, g + ".match.methodName", "has 51 characters, at most 50 allowed"},
		{"service name not empty", func(vr *VirtualRouter) { grpcRoute2(vr).Match.ServiceName = meshPtr("") }, g + ".match.serviceName", "must not be empty"},
		{"metadata at most 10", func(vr *VirtualRouter) { grpcRoute2(vr).Match.Metadata = make([]GRPCRouteMetadata, 11) }, g + ".match.metadata", "has 11 items, at most 10 allowed"},
		{"metadata name required", func(vr *VirtualRouter) { grpcRoute2(vr).Match.Metadata[0].Name = "" }, g + ".match.metadata[0].name", "is required"},
		{"metadata match needs a kind", func(vr *VirtualRouter) { grpcRoute2(vr).Match.Metadata[0].Match = &GRPCRouteMetadataMatchMethod{} }, g + ".match.metadata[0].match", "exactly one of exact, prefix, range, regex, suffix is required"},
		{"metadata match one kind", func(vr *VirtualRouter) { md(vr, 0).Prefix = meshPtr("a") }, g + ".match.metadata[0].match", "only one of exact, prefix, range, regex, suffix may be set, found exact and prefix"},
		{"metadata range order", func(vr *VirtualRouter) { md(vr, 1).Range.Start = 300 }, g + ".match.metadata[1].match.range.end", "200 is not above start 300"},
		{"metadata regex compiles", func(vr *VirtualRouter) { md(vr, 2).Regex = meshPtr("*") }, g + ".match.metadata[2].match.regex", "is not a valid regular expression (Go RE2 syntax)"},
		{"grpc match port", func(vr *VirtualRouter) { grpcRoute2(vr).Match.Port = meshPtr(PortNumber(99999)) }, g + ".match.port", "99999 is above 65535"},
		{"grpc targets", func(vr *VirtualRouter) { grpcRoute2(vr).Action.WeightedTargets = nil }, g + ".action.weightedTargets", "has 0 items, at least 1 expected"},
		{"grpc retry needs events", func(vr *VirtualRouter) { grpcRoute2(vr).RetryPolicy.GRPCRetryEvents = nil }, g + ".retryPolicy", "at least one of grpcRetryEvents, httpRetryEvents, tcpRetryEvents is required"},
		{"grpc retry event enum", func(vr *VirtualRouter) { grpcRoute2(vr).RetryPolicy.GRPCRetryEvents[0] = "aborted" }, g + ".retryPolicy.grpcRetryEvents[0]", `"aborted" is not one of cancelled, deadline-exceeded, internal, resource-exhausted, unavailable`},
		{"grpc retry events at most 5", func(vr *VirtualRouter) {
			grpcRoute2(vr).RetryPolicy.GRPCRetryEvents = []GRPCRetryPolicyEvent{"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable", "internal"}
		}, g + ".retryPolicy.grpcRetryEvents", "has 6 items, at most 5 allowed"},
		{"grpc http retry event enum", func(vr *VirtualRouter) {
			grpcRoute2(vr).RetryPolicy.HTTPRetryEvents = []HTTPRetryPolicyEvent{"timeout"}
		}, g + ".retryPolicy.httpRetryEvents[0]", `"timeout" is not one of`},
		{"grpc maxRetries min", func(vr *VirtualRouter) { grpcRoute2(vr).RetryPolicy.MaxRetries = -2 }, g + ".retryPolicy.maxRetries", "-2 is below 0"},
		{"grpc perRetryTimeout required", func(vr *VirtualRouter) { grpcRoute2(vr).RetryPolicy.PerRetryTimeout = Duration{} }, g + ".retryPolicy.perRetryTimeout", "is required"},
		{"grpc timeout", func(vr *VirtualRouter) { grpcRoute2(vr).Timeout.PerRequest.Value = -1 }, g + ".timeout.perRequest.value", "-1 is below 0"},
		{"tcp match port", func(vr *VirtualRouter) { tcp(vr).Match.Port = meshPtr(PortNumber(0)) }, "spec.routes[3].tcpRoute.match.port", "0 is below 1"},
		{"tcp targets at most 10", func(vr *VirtualRouter) { tcp(vr).Action.WeightedTargets = make([]WeightedTarget, 11) }, "spec.routes[3].tcpRoute.action.weightedTargets", "has 11 items, at most 10 allowed"},
		{"tcp timeout", func(vr *VirtualRouter) { tcp(vr).Timeout.Idle.Unit = "" }, "spec.routes[3].tcpRoute.timeout.idle.unit", "is required"},
	}
}

func TestVirtualRouterErrorText(t *testing.T) {
	vr := validVirtualRouter()
	vr.Spec.Routes[0].HTTPRoute.Action.WeightedTargets[1].Weight = 150
	want := "spec.routes[0].httpRoute.action.weightedTargets[1].weight: 150 is above 100"
	if got := vr.Validate().Error(); got != want {
		t.Errorf("error text = %q, want %q", got, want)
	}
}

func TestVirtualRouterValidVariants(t *testing.T) {
	for name, mutate := range map[string]func(*VirtualRouter){
		"no routes":           func(vr *VirtualRouter) { vr.Spec.Routes = nil },
		"zero weight target":  func(vr *VirtualRouter) { httpRoute0(vr).Action.WeightedTargets[1].Weight = 0 },
		"tcp only retry":      func(vr *VirtualRouter) { httpRoute0(vr).RetryPolicy.HTTPRetryEvents = nil },
		"grpc service only":   func(vr *VirtualRouter) { grpcRoute2(vr).Match.MethodName = nil },
		"grpc match anything": func(vr *VirtualRouter) { grpcRoute2(vr).Match = GRPCRouteMatch{} },
		"tcp without match":   func(vr *VirtualRouter) { vr.Spec.Routes[3].TCPRoute.Match = nil },
		"unknown nodes are ok": func(vr *VirtualRouter) {
			httpRoute0(vr).Action.WeightedTargets[0].VirtualNodeRef.Namespace = meshPtr("elsewhere")
		},
	} {
		vr := validVirtualRouter()
		mutate(vr)
		if errs := vr.Validate(); len(errs) > 0 {
			t.Errorf("%s: unexpected errors: %v", name, errs)
		}
	}
}

func TestVirtualRouterDefault(t *testing.T) {
	vr := validVirtualRouter()
	vr.Default()
	if got := *vr.Spec.AWSName; got != "podinfo_test" {
		t.Errorf("awsName = %q, want podinfo_test", got)
	}
	vr.Spec.AWSName = meshPtr("kept")
	vr.Default()
	if got := *vr.Spec.AWSName; got != "kept" {
		t.Errorf("Default overwrote awsName: %q", got)
	}
}

func TestVirtualRouterDecodesAppMeshFields(t *testing.T) {
	var vr VirtualRouter
	decodeMeshManifest(t, `{"apiVersion":"canarymesh.dev/v1alpha1","kind":"VirtualRouter","metadata":{"name":"r","namespace":"test"},
	"spec":{"awsName":"r_test","meshRef":{"name":"m","uid":"u"},"listeners":[{"portMapping":{"port":80,"protocol":"http"}}],
	"routes":[{"name":"h","priority":1,"httpRoute":{
	  "match":{"prefix":"/","method":"GET","scheme":"http","port":80,
	    "headers":[{"name":"x","invert":true,"match":{"range":{"start":1,"end":2}}}],
	    "queryParameters":[{"name":"q","match":{"exact":"1"}}]},
	  "action":{"weightedTargets":[{"virtualNodeRef":{"name":"a","namespace":"test"},"weight":90,"port":80},{"virtualNodeARN":"arn","weight":10}]},
	  "retryPolicy":{"httpRetryEvents":["server-error"],"tcpRetryEvents":["connection-error"],"maxRetries":2,"perRetryTimeout":{"unit":"ms","value":250}},
	  "timeout":{"perRequest":{"unit":"s","value":15},"idle":{"unit":"s","value":300}}}},
	 {"name":"g","grpcRoute":{"match":{"serviceName":"s","methodName":"m","port":80,"metadata":[{"name":"k","invert":false,"match":{"suffix":"z"}}]},
	  "action":{"weightedTargets":[{"virtualNodeRef":{"name":"a"},"weight":1}]},
	  "retryPolicy":{"grpcRetryEvents":["cancelled"],"maxRetries":1,"perRetryTimeout":{"unit":"s","value":1}},
	  "timeout":{"perRequest":{"unit":"s","value":1}}}},
	 {"name":"h2","http2Route":{"match":{"path":{"exact":"/x"}},"action":{"weightedTargets":[{"virtualNodeRef":{"name":"a"},"weight":1}]}}},
	 {"name":"t","tcpRoute":{"match":{"port":80},"action":{"weightedTargets":[{"virtualNodeRef":{"name":"a"},"weight":1}]},"timeout":{"idle":{"unit":"s","value":1}}}}]}}`, &vr)
	if errs := vr.Validate(); len(errs) > 0 {
		t.Errorf("decoded manifest is invalid: %v", errs)
	}
}

// virtualRouterExtensionRules cover Canarymesh's route extensions: mirror and response
// cookies.
func virtualRouterExtensionRules() []vrRule {
	a := "spec.routes[0].httpRoute.action"
	mirror := func(vr *VirtualRouter) *RouteMirror { return httpRoute0(vr).Action.Mirror }
	cookie := func(vr *VirtualRouter) *ResponseCookie {
		return &httpRoute0(vr).Action.WeightedTargets[1].ResponseCookies[0]
	}
	ck := a + ".weightedTargets[1].responseCookies"
	return []vrRule{
		{"mirror node required", func(vr *VirtualRouter) { mirror(vr).VirtualNodeRef.Name = "" }, a + ".mirror.virtualNodeRef.name", "is required"},
		{"mirror percent min", func(vr *VirtualRouter) { mirror(vr).Percent = 0 }, a + ".mirror.percent", "0 is below 1"},
		{"mirror percent max", func(vr *VirtualRouter) { mirror(vr).Percent = 101 }, a + ".mirror.percent", "101 is above 100"},
		{"mirror port", func(vr *VirtualRouter) { mirror(vr).Port = meshPtr(PortNumber(70000)) }, a + ".mirror.port", "70000 is above 65535"},
		{"cookie name required", func(vr *VirtualRouter) { cookie(vr).Name = "" }, ck + "[0].name", "is required"},
		{"cookie name token", func(vr *VirtualRouter) { cookie(vr).Name = "a b" }, ck + "[0].name", `"a b" is not a cookie name`},
		{"cookie value octets", func(vr *VirtualRouter) { cookie(vr).Value = "x;y" }, ck + "[0].value", "characters a cookie value cannot carry"},
		{"cookie sameSite", func(vr *VirtualRouter) { cookie(vr).SameSite = "lax" }, ck + "[0].sameSite", `"lax" is not one of Strict, Lax, None`},
		{"cookie path", func(vr *VirtualRouter) { cookie(vr).Path = "/a;b" }, ck + "[0].path", "cannot be a cookie attribute"},
		{"cookie once per target", func(vr *VirtualRouter) {
			t := &httpRoute0(vr).Action.WeightedTargets[1]
			t.ResponseCookies = append(t.ResponseCookies, t.ResponseCookies[0])
		}, ck + "[1].name", `"canary" is set twice on the same target`},
		{"cookies at most 4", func(vr *VirtualRouter) {
			t := &httpRoute0(vr).Action.WeightedTargets[1]
			for _, n := range []string{"b", "c", "d", "e"} {
				t.ResponseCookies = append(t.ResponseCookies, ResponseCookie{Name: n})
			}
		}, ck, "has 5 items, at most 4 allowed"},
		{"no cookies on grpc routes", func(vr *VirtualRouter) {
			grpcRoute2(vr).Action.WeightedTargets[0].ResponseCookies = []ResponseCookie{{Name: "c", Value: "v"}}
		}, "spec.routes[2].grpcRoute.action.weightedTargets[0].responseCookies", "httpRoute and http2Route targets only"},
		{"no cookies on tcp routes", func(vr *VirtualRouter) {
			vr.Spec.Routes[3].TCPRoute.Action.WeightedTargets[0].ResponseCookies = []ResponseCookie{{Name: "c", Value: "v"}}
		}, "spec.routes[3].tcpRoute.action.weightedTargets[0].responseCookies", "httpRoute and http2Route targets only"},
	}
}
