package v1alpha1

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validGatewayRoute() *GatewayRoute {
	return &GatewayRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Spec: GatewayRouteSpec{
			Priority: meshPtr(int64(100)),
			HTTPRoute: &HTTPGatewayRoute{
				Match: HTTPGatewayRouteMatch{
					Prefix:   meshPtr("/podinfo/"),
					Hostname: &GatewayRouteHostnameMatch{Suffix: meshPtr(".example.com")},
					Headers: []HTTPRouteHeader{
						{Name: "x-canary", Match: &HeaderMatchMethod{Exact: meshPtr("1")}},
						{Name: "x-version", Match: &HeaderMatchMethod{Regex: meshPtr(`^v[0-9]+$`)}},
						{Name: "x-build", Match: &HeaderMatchMethod{Range: &MatchRange{Start: 1, End: 10}}},
					},
					QueryParameters: []HTTPQueryParameters{{Name: "beta", Match: &QueryMatchMethod{Exact: meshPtr("true")}}},
					Method:          meshPtr("POST"),
					Port:            meshPtr(PortNumber(8088)),
				},
				Action: HTTPGatewayRouteAction{
					Target: GatewayRouteTarget{VirtualService: GatewayRouteVirtualService{VirtualServiceRef: &VirtualServiceReference{Name: "podinfo"}},
						Port: meshPtr(PortNumber(9898))},
					Rewrite: &HTTPGatewayRouteRewrite{
						Prefix:   &GatewayRoutePrefixRewrite{Value: meshPtr("/")},
						Hostname: &GatewayRouteHostnameRewrite{DefaultTargetHostname: meshPtr(RewriteDisabled)},
					},
				},
			},
		},
	}
}

type grRule = meshRule[GatewayRoute]

func grHTTP(gr *GatewayRoute) *HTTPGatewayRoute { return gr.Spec.HTTPRoute }

// useGRPC replaces the route with a valid gRPC gateway route and returns it.
func useGRPC(gr *GatewayRoute) *GRPCGatewayRoute {
	gr.Spec.HTTPRoute = nil
	gr.Spec.GRPCRoute = &GRPCGatewayRoute{
		Match: GRPCGatewayRouteMatch{ServiceName: meshPtr("podinfo.v1.Echo"), Port: meshPtr(PortNumber(8088)),
			Hostname: &GatewayRouteHostnameMatch{Exact: meshPtr("grpc.example.com")},
			Metadata: []GRPCRouteMetadata{{Name: "tenant", Match: &GRPCRouteMetadataMatchMethod{Prefix: meshPtr("acme-")}}}},
		Action: GRPCGatewayRouteAction{
			Target:  GatewayRouteTarget{VirtualService: GatewayRouteVirtualService{VirtualServiceARN: meshPtr("arn:aws:appmesh:vs")}},
			Rewrite: &GRPCGatewayRouteRewrite{Hostname: &GatewayRouteHostnameRewrite{DefaultTargetHostname: meshPtr(RewriteEnabled)}},
		},
	}
	return gr.Spec.GRPCRoute
}

func TestGatewayRouteValidate(t *testing.T) {
	m := "spec.httpRoute.match"
	rules := []grRule{
		{"name required", func(gr *GatewayRoute) { gr.Name = "" }, "metadata.name", "is required"},
		{"awsName length", func(gr *GatewayRoute) { gr.Spec.AWSName = meshPtr(strings.Repeat("a", 256)) }, "spec.awsName", "at most 255 allowed"},
		{"priority min", func(gr *GatewayRoute) { gr.Spec.Priority = meshPtr(int64(-1)) }, "spec.priority", "-1 is below 0"},
		{"priority max", func(gr *GatewayRoute) { gr.Spec.Priority = meshPtr(int64(1001)) }, "spec.priority", "1001 is above 1000"},
		{"route needs a kind", func(gr *GatewayRoute) { gr.Spec.HTTPRoute = nil }, "spec", "exactly one of grpcRoute, httpRoute, http2Route is required"},
		{"route one kind", func(gr *GatewayRoute) { gr.Spec.HTTP2Route = gr.Spec.HTTPRoute }, "spec", "only one of grpcRoute, httpRoute, http2Route may be set, found httpRoute and http2Route"},
		{"match needs something", func(gr *GatewayRoute) { grHTTP(gr).Match.Prefix, grHTTP(gr).Match.Hostname = nil, nil }, m, "at least one of prefix, path, hostname is required"},
		{"not prefix and path", func(gr *GatewayRoute) { grHTTP(gr).Match.Path = &HTTPPathMatch{Exact: meshPtr("/x")} }, m, "only one of prefix, path may be set, found prefix and path"},
		{"prefix starts with slash", func(gr *GatewayRoute) { grHTTP(gr).Match.Prefix = meshPtr("podinfo") }, m + ".prefix", `"podinfo" does not start with "/"`},
		{"path needs a kind", func(gr *GatewayRoute) { grHTTP(gr).Match.Prefix, grHTTP(gr).Match.Path = nil, &HTTPPathMatch{} }, m + ".path", "exactly one of exact, regex is required"},
		{"path regex compiles", func(gr *GatewayRoute) {
			grHTTP(gr).Match.Prefix, grHTTP(gr).Match.Path = nil, &HTTPPathMatch{Regex: meshPtr("a{2,1}")}
		}, m + ".path.regex", "is not a valid regular expression (Go RE2 syntax)"},
		{"hostname one kind", func(gr *GatewayRoute) { grHTTP(gr).Match.Hostname.Exact = meshPtr("a.example.com") }, m + ".hostname", "only one of exact, suffix may be set"},
		{"hostname needs a kind", func(gr *GatewayRoute) { grHTTP(gr).Match.Hostname = &GatewayRouteHostnameMatch{} }, m + ".hostname", "exactly one of exact, suffix is required"},
		{"hostname length", func(gr *GatewayRoute) { grHTTP(gr).Match.Hostname.Suffix = meshPtr(strings.Repeat("h", 254)) }, m + ".hostname.suffix", "has 254 characters, at most 253 allowed"},
		{"headers at most 10", func(gr *GatewayRoute) { grHTTP(gr).Match.Headers = make([]HTTPRouteHeader, 11) }, m + ".headers", "has 11 items, at most 10 allowed"},
		{"header match needs a kind", func(gr *GatewayRoute) { grHTTP(gr).Match.Headers[0].Match = &HeaderMatchMethod{} }, m + ".headers[0].match", "exactly one of exact, prefix, range, regex, suffix is required"},
		{"header match one kind", func(gr *GatewayRoute) { grHTTP(gr).Match.Headers[0].Match.Prefix = meshPtr("x") }, m + ".headers[0].match", "only one of exact, prefix, range, regex, suffix may be set"},
		{"header regex compiles", func(gr *GatewayRoute) { grHTTP(gr).Match.Headers[1].Match.Regex = meshPtr(`\`) }, m + ".headers[1].match.regex", "is not a valid regular expression (Go RE2 syntax)"},
		{"header range order", func(gr *GatewayRoute) { grHTTP(gr).Match.Headers[2].Match.Range.End = 0 }, m + ".headers[2].match.range.end", "0 is not above start 1"},
		{"header name length", func(gr *GatewayRoute) { grHTTP(gr).Match.Headers[0].Name = strings.Repeat("n", 51) }, m + ".headers[0].name", "at most 50 allowed"},
		{"query match exact", func(gr *GatewayRoute) { grHTTP(gr).Match.QueryParameters[0].Match.Exact = nil }, m + ".queryParameters[0].match.exact", "is required"},
		{"query at most 10", func(gr *GatewayRoute) { grHTTP(gr).Match.QueryParameters = make([]HTTPQueryParameters, 11) }, m + ".queryParameters", "has 11 items, at most 10 allowed"},
		{"method enum", func(gr *GatewayRoute) { grHTTP(gr).Match.Method = meshPtr("post") }, m + ".method", `"post" is not one of`},
		{"match port", func(gr *GatewayRoute) { grHTTP(gr).Match.Port = meshPtr(PortNumber(0)) }, m + ".port", "0 is below 1"},
		{"http2 route checked", func(gr *GatewayRoute) {
			gr.Spec.HTTPRoute, gr.Spec.HTTP2Route = nil, gr.Spec.HTTPRoute
			gr.Spec.HTTP2Route.Match.Prefix = meshPtr("x")
		}, "spec.http2Route.match.prefix", `"x" does not start with "/"`},
	}
	rules = append(rules, gatewayRouteActionRules()...)
	rules = append(rules, gatewayRouteGRPCRules()...)
	runMeshRules(t, validGatewayRoute, rules)
}

func gatewayRouteActionRules() []grRule {
	tg := "spec.httpRoute.action.target"
	rw := "spec.httpRoute.action.rewrite"
	vs := func(gr *GatewayRoute) *GatewayRouteVirtualService { return &grHTTP(gr).Action.Target.VirtualService }
	rewrite := func(gr *GatewayRoute) *HTTPGatewayRouteRewrite { return grHTTP(gr).Action.Rewrite }
	return []grRule{
		{"target needs a service", func(gr *GatewayRoute) { vs(gr).VirtualServiceRef = nil }, tg + ".virtualService", "exactly one of virtualServiceRef, virtualServiceARN is required"},
		{"target one service", func(gr *GatewayRoute) { vs(gr).VirtualServiceARN = meshPtr("arn") }, tg + ".virtualService", "only one of virtualServiceRef, virtualServiceARN may be set"},
		{"target ref name", func(gr *GatewayRoute) { vs(gr).VirtualServiceRef.Name = "" }, tg + ".virtualService.virtualServiceRef.name", "is required"},
		{"target arn not empty", func(gr *GatewayRoute) { vs(gr).VirtualServiceRef, vs(gr).VirtualServiceARN = nil, meshPtr("") }, tg + ".virtualService.virtualServiceARN", "must not be empty"},
		{"target port", func(gr *GatewayRoute) { grHTTP(gr).Action.Target.Port = meshPtr(PortNumber(70000)) }, tg + ".port", "70000 is above 65535"},
		{"rewrite needs something", func(gr *GatewayRoute) { grHTTP(gr).Action.Rewrite = &HTTPGatewayRouteRewrite{} }, rw, "at least one of prefix, path, hostname is required"},
		{"rewrite prefix or path", func(gr *GatewayRoute) { rewrite(gr).Path = &GatewayRoutePathRewrite{Exact: meshPtr("/x")} }, rw, "only one of prefix, path may be set, found prefix and path"},
		{"prefix rewrite one kind", func(gr *GatewayRoute) { rewrite(gr).Prefix.DefaultPrefix = meshPtr(RewriteEnabled) }, rw + ".prefix", "only one of defaultPrefix, value may be set"},
		{"defaultPrefix enum", func(gr *GatewayRoute) { rewrite(gr).Prefix = &GatewayRoutePrefixRewrite{DefaultPrefix: meshPtr("ON")} }, rw + ".prefix.defaultPrefix", `"ON" is not one of ENABLED, DISABLED`},
		{"prefix value slashes", func(gr *GatewayRoute) { rewrite(gr).Prefix.Value = meshPtr("/v2") }, rw + ".prefix.value", `"/v2" does not start and end with "/"`},
		{"prefix value length", func(gr *GatewayRoute) { rewrite(gr).Prefix.Value = meshPtr("/" + strings.Repeat("v", 255) + "/") }, rw + ".prefix.value", "has 257 characters, at most 255 allowed"},
		{"path rewrite exact", func(gr *GatewayRoute) { rewrite(gr).Prefix, rewrite(gr).Path = nil, &GatewayRoutePathRewrite{} }, rw + ".path.exact", "is required"},
		{"hostname rewrite enum", func(gr *GatewayRoute) { rewrite(gr).Hostname.DefaultTargetHostname = meshPtr("yes") }, rw + ".hostname.defaultTargetHostname", `"yes" is not one of ENABLED, DISABLED`},
	}
}

func gatewayRouteGRPCRules() []grRule {
	g := "spec.grpcRoute"
	return []grRule{
		{"grpc needs service or host", func(gr *GatewayRoute) { r := useGRPC(gr); r.Match.ServiceName, r.Match.Hostname = nil, nil }, g + ".match", "at least one of serviceName, hostname is required"},
		{"grpc service not empty", func(gr *GatewayRoute) { useGRPC(gr).Match.ServiceName = meshPtr("") }, g + ".match.serviceName", "must not be empty"},
		{"grpc hostname kind", func(gr *GatewayRoute) { useGRPC(gr).Match.Hostname = &GatewayRouteHostnameMatch{} }, g + ".match.hostname", "exactly one of exact, suffix is required"},
		{"grpc metadata at most 10", func(gr *GatewayRoute) { useGRPC(gr).Match.Metadata = make([]GRPCRouteMetadata, 11) }, g + ".match.metadata", "has 11 items, at most 10 allowed"},
		{"grpc metadata name", func(gr *GatewayRoute) { useGRPC(gr).Match.Metadata[0].Name = "" }, g + ".match.metadata[0].name", "is required"},
		{"grpc metadata one kind", func(gr *GatewayRoute) { useGRPC(gr).Match.Metadata[0].Match.Exact = meshPtr("x") }, g + ".match.metadata[0].match", "only one of exact, prefix, range, regex, suffix may be set"},
		{"grpc metadata range", func(gr *GatewayRoute) {
			useGRPC(gr).Match.Metadata[0].Match = &GRPCRouteMetadataMatchMethod{Range: &MatchRange{Start: 5, End: 5}}
		}, g + ".match.metadata[0].match.range.end", "5 is not above start 5"},
		{"grpc port", func(gr *GatewayRoute) { useGRPC(gr).Match.Port = meshPtr(PortNumber(0)) }, g + ".match.port", "0 is below 1"},
		{"grpc target", func(gr *GatewayRoute) { useGRPC(gr).Action.Target.VirtualService.VirtualServiceARN = nil }, g + ".action.target.virtualService", "exactly one of virtualServiceRef, virtualServiceARN is required"},
		{"grpc hostname rewrite", func(gr *GatewayRoute) {
			useGRPC(gr).Action.Rewrite.Hostname.DefaultTargetHostname = meshPtr("")
		}, g + ".action.rewrite.hostname.defaultTargetHostname", `"" is not one of ENABLED, DISABLED`},
	}
}

func TestGatewayRouteValidVariants(t *testing.T) {
	for name, mutate := range map[string]func(*GatewayRoute){
		"grpc route":    func(gr *GatewayRoute) { useGRPC(gr) },
		"hostname only": func(gr *GatewayRoute) { grHTTP(gr).Match.Prefix = nil },
		"path only": func(gr *GatewayRoute) {
			m := &grHTTP(gr).Match
			m.Prefix, m.Hostname, m.Path = nil, nil, &HTTPPathMatch{Exact: meshPtr("/x")}
		},
		"default prefix": func(gr *GatewayRoute) {
			grHTTP(gr).Action.Rewrite.Prefix = &GatewayRoutePrefixRewrite{DefaultPrefix: meshPtr(RewriteDisabled)}
		},
		"path rewrite": func(gr *GatewayRoute) {
			rw := grHTTP(gr).Action.Rewrite
			rw.Prefix, rw.Path = nil, &GatewayRoutePathRewrite{Exact: meshPtr("/y")}
		},
		"no rewrite":       func(gr *GatewayRoute) { grHTTP(gr).Action.Rewrite = nil },
		"no priority":      func(gr *GatewayRoute) { gr.Spec.Priority = nil },
		"header only name": func(gr *GatewayRoute) { grHTTP(gr).Match.Headers[0].Match = nil },
	} {
		gr := validGatewayRoute()
		mutate(gr)
		if errs := gr.Validate(); len(errs) > 0 {
			t.Errorf("%s: unexpected errors: %v", name, errs)
		}
	}
}

func TestGatewayRouteDefault(t *testing.T) {
	gr := validGatewayRoute()
	gr.Default()
	if got := *gr.Spec.AWSName; got != "podinfo_test" {
		t.Errorf("awsName = %q, want podinfo_test", got)
	}
	if *gr.Spec.Priority != 100 {
		t.Errorf("Default changed priority to %d", *gr.Spec.Priority)
	}
	gr.Spec.AWSName = meshPtr("kept")
	gr.Default()
	if got := *gr.Spec.AWSName; got != "kept" {
		t.Errorf("Default overwrote awsName: %q", got)
	}
}

func TestGatewayRouteDecodesAppMeshFields(t *testing.T) {
	var gr GatewayRoute
	decodeMeshManifest(t, `{"apiVersion":"canarymesh.dev/v1alpha1","kind":"GatewayRoute","metadata":{"name":"r","namespace":"test"},
	"spec":{"awsName":"r_test","priority":5,"meshRef":{"name":"m","uid":"u"},"virtualGatewayRef":{"name":"gw","namespace":"gw","uid":"u2"},
	"httpRoute":{"match":{"prefix":"/","hostname":{"exact":"a.example.com"},"method":"GET","port":8088,
	    "path":null,"headers":[{"name":"h","invert":true,"match":{"suffix":"x"}}],"queryParameters":[{"name":"q"}]},
	  "action":{"target":{"virtualService":{"virtualServiceRef":{"name":"s","namespace":"test"}},"port":80},
	    "rewrite":{"prefix":{"defaultPrefix":"ENABLED"},"hostname":{"defaultTargetHostname":"DISABLED"}}}}}}`, &gr)
	if errs := gr.Validate(); len(errs) > 0 {
		t.Errorf("decoded manifest is invalid: %v", errs)
	}
	var grpc GatewayRoute
	decodeMeshManifest(t, `{"metadata":{"name":"g","namespace":"test"},"spec":{"grpcRoute":{
	  "match":{"serviceName":"s","hostname":{"suffix":".example.com"},"port":8088,"metadata":[{"name":"k","invert":false,"match":{"range":{"start":1,"end":2}}}]},
	  "action":{"target":{"virtualService":{"virtualServiceARN":"arn"}},"rewrite":{"hostname":{"defaultTargetHostname":"ENABLED"}}}}}}`, &grpc)
	if errs := grpc.Validate(); len(errs) > 0 {
		t.Errorf("decoded gRPC manifest is invalid: %v", errs)
	}
	var h2 GatewayRoute
	decodeMeshManifest(t, `{"spec":{"http2Route":{"match":{"path":{"regex":"^/x$"}},"action":{"target":{"virtualService":{"virtualServiceARN":"arn"}},
	  "rewrite":{"path":{"exact":"/y"}}}}}}`, &h2)
}
