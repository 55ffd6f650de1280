package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

func ptr[T any](v T) *T { return &v }

func TestMatch(t *testing.T) {
	base := request{method: "GET", scheme: "http", host: "podinfo.demo", port: 9898, path: "/api/info",
		query: "user=alice&debug&name=a%20b", header: stdHeader(http.Header{
			"X-Canary":   {"insider"},
			"X-Version":  {"v2-beta"},
			"X-Count":    {"42"},
			"User-Agent": {"curl/8.0"},
		})}
	grpcReq := base
	grpcReq.path = "/grpc.testing.TestService/UnaryCall"
	cases := []struct {
		name  string
		match snapshot.Match
		proto string
		req   request
		want  bool
	}{
		{"empty matches all", snapshot.Match{}, "", base, true},
		{"prefix", snapshot.Match{Prefix: "/api"}, "", base, true},
		{"prefix miss", snapshot.Match{Prefix: "/admin"}, "", base, false},
		{"path exact", snapshot.Match{Path: &snapshot.StringMatch{Exact: "/api/info"}}, "", base, true},
		{"path exact miss", snapshot.Match{Path: &snapshot.StringMatch{Exact: "/api"}}, "", base, false},
		{"path regex anchored", snapshot.Match{Path: &snapshot.StringMatch{Regex: "/api/[a-z]+"}}, "", base, true},
		{"path regex is anchored", snapshot.Match{Path: &snapshot.StringMatch{Regex: "/api"}}, "", base, false},
		{"method", snapshot.Match{Method: "GET"}, "", base, true},
		{"method miss", snapshot.Match{Method: "POST"}, "", base, false},
		{"scheme", snapshot.Match{Scheme: "http"}, "", base, true},
		{"scheme miss", snapshot.Match{Scheme: "https"}, "", base, false},
		{"port", snapshot.Match{Port: 9898}, "", base, true},
		{"port miss", snapshot.Match{Port: 8080}, "", base, false},
		{"header exact", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-canary", Exact: ptr("insider")}}}, "", base, true},
		{"header exact miss", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-canary", Exact: ptr("other")}}}, "", base, false},
		{"header prefix", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "X-Version", Prefix: ptr("v2")}}}, "", base, true},
		{"header suffix", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "X-Version", Suffix: ptr("-beta")}}}, "", base, true},
		{"header suffix miss", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "X-Version", Suffix: ptr("-rc")}}}, "", base, false},
		{"header regex", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "user-agent", Regex: ptr(".*curl.*")}}}, "", base, true},
		{"header regex anchored", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "user-agent", Regex: ptr("curl")}}}, "", base, false},
		{"header range in", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-count", Range: &snapshot.MatchRange{Start: 40, End: 43}}}}, "", base, true},
		{"header range end excluded", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-count", Range: &snapshot.MatchRange{Start: 0, End: 42}}}}, "", base, false},
		{"header range not a number", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-version", Range: &snapshot.MatchRange{Start: 0, End: 9}}}}, "", base, false},
		{"header present", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-canary"}}}, "", base, true},
		{"header absent", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-missing"}}}, "", base, false},
		{"header invert", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-canary", Exact: ptr("insider"), Invert: true}}}, "", base, false},
		{"header invert absent", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-missing", Exact: ptr("x"), Invert: true}}}, "", base, true},
		{"all headers must hold", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x-canary"}, {Name: "x-missing"}}}, "", base, false},
		{"query exact", snapshot.Match{Query: []snapshot.QueryMatch{{Name: "user", Exact: ptr("alice")}}}, "", base, true},
		{"query exact miss", snapshot.Match{Query: []snapshot.QueryMatch{{Name: "user", Exact: ptr("bob")}}}, "", base, false},
		{"query present without value", snapshot.Match{Query: []snapshot.QueryMatch{{Name: "debug"}}}, "", base, true},
		{"query absent", snapshot.Match{Query: []snapshot.QueryMatch{{Name: "trace"}}}, "", base, false},
		{"query escaped value", snapshot.Match{Query: []snapshot.QueryMatch{{Name: "name", Exact: ptr("a b")}}}, "", base, true},
		{"hostname exact", snapshot.Match{Hostname: &snapshot.StringMatch{Exact: "PODINFO.demo"}}, "", base, true},
		{"hostname suffix", snapshot.Match{Hostname: &snapshot.StringMatch{Suffix: ".demo"}}, "", base, true},
		{"hostname suffix miss", snapshot.Match{Hostname: &snapshot.StringMatch{Suffix: ".prod"}}, "", base, false},
		{"grpc service", snapshot.Match{GRPCService: "grpc.testing.TestService"}, "grpc", grpcReq, true},
		{"grpc method", snapshot.Match{GRPCService: "grpc.testing.TestService", GRPCMethod: "UnaryCall"}, "grpc", grpcReq, true},
		{"grpc method miss", snapshot.Match{GRPCMethod: "StreamingCall"}, "grpc", grpcReq, false},
		{"grpc service miss", snapshot.Match{GRPCService: "other.Service"}, "grpc", grpcReq, false},
		{"grpc metadata", snapshot.Match{Metadata: []snapshot.HeaderMatch{{Name: "x-canary", Exact: ptr("insider")}}}, "grpc", grpcReq, true},
		{"grpc metadata miss", snapshot.Match{Metadata: []snapshot.HeaderMatch{{Name: "x-canary", Prefix: ptr("out")}}}, "grpc", grpcReq, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := compileMatch(&tc.match, tc.proto)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.match(&tc.req); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMatchRejectsBadInput(t *testing.T) {
	cases := []struct {
		name  string
		match snapshot.Match
		want  string
	}{
		{"bad path regex", snapshot.Match{Path: &snapshot.StringMatch{Regex: "(unclosed"}}, "match.path: regex"},
		{"bad header regex", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x", Regex: ptr("[")}}}, "match.headers[0]: regex"},
		{"two kinds", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x", Exact: ptr("a"), Prefix: ptr("b")}}}, "at most one"},
		{"empty range", snapshot.Match{Headers: []snapshot.HeaderMatch{{Name: "x", Range: &snapshot.MatchRange{Start: 5, End: 5}}}}, "range"},
		{"unnamed header", snapshot.Match{Headers: []snapshot.HeaderMatch{{Exact: ptr("a")}}}, "name: empty"},
		{"unnamed query", snapshot.Match{Query: []snapshot.QueryMatch{{}}}, "match.query[0].name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileMatch(&tc.match, "http")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestHostTable(t *testing.T) {
	vhs := map[string]*vhost{}
	tbl := &hostTable{exact: map[string]*vhost{}}
	for _, v := range []struct {
		name    string
		domains []string
	}{
		{"exact", []string{"podinfo.demo", "podinfo.demo.svc.cluster.local"}},
		{"short-suffix", []string{"*.demo"}},
		{"long-suffix", []string{"*.api.demo"}},
		{"prefix", []string{"internal.*"}},
		{"any", []string{"*"}},
	} {
		vh := &vhost{name: v.name, domains: v.domains}
		vhs[v.name] = vh
		if err := tbl.add(vh); err != nil {
			t.Fatal(err)
		}
	}
	tbl.sortWildcards()
	for host, want := range map[string]string{
		"podinfo.demo":                   "exact",
		"PodInfo.Demo":                   "exact",
		"podinfo.demo.svc.cluster.local": "exact",
		"other.demo":                     "short-suffix",
		"v1.api.demo":                    "long-suffix",
		"internal.example":               "prefix",
		"example.com":                    "any",
	} {
		if got := tbl.lookup(host); got == nil || got.name != want {
			t.Errorf("lookup(%q) = %v, want %s", host, got, want)
		}
	}
	empty := &hostTable{exact: map[string]*vhost{}}
	if empty.lookup("x") != nil {
		t.Error("a table without * must not match unknown hosts")
	}
}

func TestSplitHostPort(t *testing.T) {
	for in, want := range map[string]struct {
		host string
		port int
	}{
		"podinfo.demo":      {"podinfo.demo", 0},
		"podinfo.demo:9898": {"podinfo.demo", 9898},
		"[::1]:8080":        {"::1", 8080},
		"[::1]":             {"::1", 0},
		"::1":               {"::1", 0},
		"host:notaport":     {"host", 0},
		"":                  {"", 0},
	} {
		h, p := splitHostPort(in)
		if h != want.host || p != want.port {
			t.Errorf("splitHostPort(%q) = %q, %d; want %q, %d", in, h, p, want.host, want.port)
		}
	}
}

func TestRouteMatchDoesNotAllocate(t *testing.T) {
	tbl, req := benchTable(t)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, rt := tbl.selectRoute(req); rt == nil {
			t.Fatal("no route")
		}
	})
	if allocs != 0 {
		t.Fatalf("route match allocates %.1f times per request", allocs)
	}
}
