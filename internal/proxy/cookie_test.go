package proxy

import (
	"net/http"
	"testing"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// affinitySnapshot is a canary's session affinity as the controller writes it: a route
// that sends requests carrying the canary cookie to the canary, ahead of a 50/50
// weighted route whose canary target hands that cookie out.
func affinitySnapshot(primary, canary *backend) *snapshot.Snapshot {
	cookieRe := `(.*[;,] *)?canary-session=k3Xa9( *[;,].*)?`
	sticky := snapshot.Route{Name: "demo/web/sticky", Priority: 0, Protocol: "http",
		Match:   snapshot.Match{Prefix: "/", Headers: []snapshot.HeaderMatch{{Name: "cookie", Regex: &cookieRe}}},
		Targets: targets("primary", 0, "canary", 100)}
	weighted := snapshot.Route{Name: "demo/web/route", Priority: 1, Protocol: "http", Match: snapshot.Match{Prefix: "/"},
		Targets: targets("primary", 50, "canary", 50)}
	weighted.Targets[1].SetCookies = []string{"canary-session=k3Xa9; Max-Age=600"}
	return egressSnapshot(1, []snapshot.Cluster{cluster("primary", primary), cluster("canary", canary)}, service("web", sticky, weighted))
}

// Responses served by the canary set the cookie and the primary's do not; a client that
// sends the cookie back is served by the canary every time. Both front ends (the fast
// path and net/http's) behave the same.
func TestSessionAffinityCookie(t *testing.T) {
	for _, fast := range []bool{true, false} {
		name := map[bool]string{true: "fast path", false: "net/http"}[fast]
		t.Run(name, func(t *testing.T) {
			primary, canary := newBackend(t, "primary", nil), newBackend(t, "canary", nil)
			p := startProxy(t, affinitySnapshot(primary, canary), func(o *Options) { o.NoFastPath = !fast })
			seen := map[string]int{}
			for range 20 {
				code, body, h := do(t, p, "egress", http.MethodGet, "web.demo", "/", nil)
				if code != 200 {
					t.Fatalf("status %d", code)
				}
				seen[body]++
				got := h.Values("Set-Cookie")
				switch {
				case body == "canary" && (len(got) != 1 || got[0] != "canary-session=k3Xa9; Max-Age=600"):
					t.Errorf("canary response Set-Cookie = %q", got)
				case body == "primary" && len(got) != 0:
					t.Errorf("primary response Set-Cookie = %q", got)
				}
			}
			if seen["canary"] != 10 || seen["primary"] != 10 {
				t.Errorf("without the cookie: %v, want 10/10", seen)
			}
			for i := range 20 {
				req, _ := http.NewRequest(http.MethodGet, "http://"+p.Addr("egress").String()+"/", nil)
				req.Host = "web.demo"
				req.Header.Set("Cookie", "theme=dark; canary-session=k3Xa9")
				res, err := testClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if b := res.Header.Get("X-Backend"); b != "canary" {
					t.Fatalf("request %d with the cookie went to %q", i, b)
				}
			}
			// A different value of the cookie is not pinned.
			req, _ := http.NewRequest(http.MethodGet, "http://"+p.Addr("egress").String()+"/", nil)
			req.Host = "web.demo"
			req.Header.Set("Cookie", "canary-session=old")
			counts := map[string]int{}
			for range 4 {
				res, err := testClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				counts[res.Header.Get("X-Backend")]++
			}
			if counts["primary"] == 0 {
				t.Errorf("a stale cookie value was pinned to the canary: %v", counts)
			}
		})
	}
}

// A route whose target sets cookies stays on the fast path; one that mirrors goes to
// net/http.
func TestSessionAffinityFastPathEligible(t *testing.T) {
	primary, canary := newBackend(t, "primary", nil), newBackend(t, "canary", nil)
	p := startProxy(t, affinitySnapshot(primary, canary))
	for range 4 {
		get(t, p, "web.demo", "/")
	}
	series := `canarymesh_http_downstream_cx_handed_over_total{envoy_http_conn_manager_prefix="egress"}`
	if v := metricValue(t, p, series); v != "0" {
		t.Errorf("connections handed to net/http with cookies: %q, want 0", v)
	}
	m := startProxy(t, mirrorSnapshot(primary, canary, "", 100))
	get(t, m, "web.demo", "/")
	if v := metricValue(t, m, series); v != "1" {
		t.Errorf("connections handed to net/http with a mirror: %q, want 1", v)
	}
}
