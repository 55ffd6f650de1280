package canary_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
)

// Given podinfo 3.1.0 under load on podinfo.demo only, and a blue/green Canary with
// analysis.mirror, when 3.1.1 is released, then during the iterations podinfo.demo
// answers 3.1.0 while a copy of every request reaches 3.1.1, whose built-in success rate
// is judged on those copies alone; then 3.1.1 is promoted.
func TestBlueGreenMirrorWithRealProcesses(t *testing.T) {
	s := newStack(t)
	cd := fastCanary()
	an := cd.Spec.Analysis
	an.StepWeight, an.MaxWeight, an.Iterations, an.Mirror = 0, 0, 3, true
	s.initialized(cd)
	stopLoad := s.load("podinfo.demo", nil, 40)

	s.release(app{version: "3.1.1"})
	var leaks []string
	mirrored, mirrorRouted := false, false
	s.watch("Succeeded", 60*time.Second, func(cd *v1alpha1.Canary) bool {
		st := cd.Status
		if st.Phase != v1alpha1.CanaryPhaseProgressing || st.Iterations >= an.Iterations {
			return st.Phase == v1alpha1.CanaryPhaseSucceeded
		}
		mirrored = mirrored || st.Mirrored
		if m := apexMirror(s); m != nil && m.Percent == 100 && m.VirtualNodeRef.Name == "podinfo-canary" {
			mirrorRouted = true
		}
		p, c := s.h.weights()
		v := s.version()
		if after := s.h.canary().Status; after.Phase == v1alpha1.CanaryPhaseProgressing && after.Iterations < an.Iterations &&
			(st.CanaryWeight != 0 || c != 0 || p != 100 || v != "3.1.0") {
			leaks = append(leaks, fmt.Sprintf("weight %d, route %d/%d, answer %s", st.CanaryWeight, p, c, v))
		}
		return false
	})
	if !mirrored || !mirrorRouted {
		t.Errorf("status mirrored %v, apex route mirrored %v", mirrored, mirrorRouted)
	}
	if len(leaks) > 0 {
		t.Errorf("the canary answered clients during the iterations: %v", leaks)
	}
	if m, ok := metricResult(s.h.canary(), "request-success-rate"); !ok || !m.Passed {
		t.Errorf("the canary's success rate on mirrored traffic: %+v", m)
	}
	copies := egressSeries(t, s, `envoy_cluster_upstream_rq_mirrored{envoy_cluster_name="cds_egress_flaggerdemo_podinfo-canary_demo_http_9898"}`)
	if copies == "" || copies == "0" {
		t.Errorf("copies sent to the canary: %q", copies)
	}
	s.backOnPrimary("3.1.1")
	if apexMirror(s) != nil {
		t.Error("the apex route still mirrors after the promotion")
	}
	if res := stopLoad(); res == nil || res.Requests == 0 || res.StatusCodes[200] != res.Requests {
		t.Errorf("load through the mirrored route: %+v", res)
	}
}

// Given podinfo 3.1.0 under load and a Canary with analysis.sessionAffinity, when 3.1.1
// is released, then a client that got the canary's cookie from a 3.1.1 answer keeps
// reaching 3.1.1 for the rest of the analysis, while clients without it are split by
// weight; after the promotion the cookie is expired (Max-Age=-1).
func TestSessionAffinityWithRealProcesses(t *testing.T) {
	s := newStack(t)
	cd := fastCanary()
	an := cd.Spec.Analysis
	an.StepWeight, an.MaxWeight = 10, 50
	an.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "canary-session", MaxAge: 120}
	s.initialized(cd)
	stopLoad := s.load("podinfo.demo", nil, 40)

	s.release(app{version: "3.1.1"})
	var cookie string
	var pinned, strays []string
	s.watch("Succeeded", 60*time.Second, func(cd *v1alpha1.Canary) bool {
		st := cd.Status
		if st.Phase != v1alpha1.CanaryPhaseProgressing || st.CanaryWeight == 0 {
			return st.Phase == v1alpha1.CanaryPhaseSucceeded
		}
		if cookie == "" {
			// A fresh client: whoever answers, a 3.1.1 answer hands out the cookie.
			v, set := askCookie(s, "")
			if v == "3.1.1" {
				if len(set) != 1 || !strings.HasPrefix(set[0], st.SessionAffinityCookie+"; Max-Age=120") {
					t.Errorf("3.1.1 answered with Set-Cookie %q, want %s; Max-Age=120", set, st.SessionAffinityCookie)
				}
				cookie, _, _ = strings.Cut(set[0], ";")
			} else if len(set) != 0 {
				t.Errorf("%s answered with Set-Cookie %q", v, set)
			}
			return false
		}
		v, _ := askCookie(s, "theme=dark; "+cookie)
		if after := s.h.canary().Status; after.Phase == v1alpha1.CanaryPhaseProgressing {
			pinned = append(pinned, v)
			if v != "3.1.1" {
				strays = append(strays, v)
			}
		}
		return false
	})
	if cookie == "" || len(pinned) < 3 || len(strays) > 0 {
		t.Errorf("cookie %q; the client holding it got %v (strays %v)", cookie, pinned, strays)
	}
	s.backOnPrimary("3.1.1")
	got := s.h.canary().Status
	if got.PreviousSessionAffinityCookie != cookie || got.SessionAffinityCookie != "" {
		t.Errorf("after the promotion: cookie %q, previous %q, want previous %q", got.SessionAffinityCookie,
			got.PreviousSessionAffinityCookie, cookie)
	}
	v, set := askCookie(s, cookie)
	if v != "3.1.1" || len(set) != 1 || set[0] != cookie+"; Max-Age=-1" {
		t.Errorf("the old cookie after the promotion: %s, Set-Cookie %q, want %s; Max-Age=-1", v, set, cookie)
	}
	stopLoad()
}

// apexMirror is the mirror of the apex router's weighted route, if any.
func apexMirror(s *stack) *v1alpha1.RouteMirror {
	vr, ok := s.h.get("VirtualRouter", "podinfo").(*v1alpha1.VirtualRouter)
	if !ok {
		return nil
	}
	for _, r := range vr.Spec.Routes {
		if r.Name == "podinfo-route" && r.HTTPRoute != nil {
			return r.HTTPRoute.Action.Mirror
		}
	}
	return nil
}

// askCookie sends GET /version for podinfo.demo with a Cookie header (none when empty)
// and returns the version that answered and the Set-Cookie values.
func askCookie(s *stack, cookie string) (string, []string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.egress+"/version", nil)
	req.Host = "podinfo.demo"
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "<error: " + err.Error() + ">", nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("<status %d>", resp.StatusCode), nil
	}
	var v struct{ Version string }
	_ = json.Unmarshal(b, &v)
	return v.Version, resp.Header.Values("Set-Cookie")
}

// egressSeries reads one series from the egress proxy's metrics.
func egressSeries(t *testing.T, s *stack, series string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.proxies.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats/prometheus", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// Given 3.1.1 healthy at weight 40 under load, when the release is aborted, then every
// request is still answered 200: the canary is scaled down only once the proxies have
// acknowledged the routes that took its traffic away (Controller.Propagation), so no
// request reaches a canary that is going away.
func TestRollbackWaitsForProxiesWithRealProcesses(t *testing.T) {
	s := newStack(t)
	cd := fastCanary()
	cd.Spec.Analysis.Interval = "2s"
	s.initialized(cd)
	stopLoad := s.load("podinfo.demo", nil, 100)

	s.release(app{version: "3.1.1"})
	s.watch("weight 40", 60*time.Second, func(cd *v1alpha1.Canary) bool { return cd.Status.CanaryWeight == 40 })
	s.h.command(canary.ManualAbort)
	s.watch("Failed", 30*time.Second, phaseIs(v1alpha1.CanaryPhaseFailed))
	s.watch("the canary stopped", 30*time.Second, func(*v1alpha1.Canary) bool {
		w := s.h.workload("podinfo")
		return w.Status.Replicas == 0
	})
	s.backOnPrimary("3.1.0")
	res := stopLoad()
	if res == nil || res.Requests == 0 {
		t.Fatal("the load generator sent nothing")
	}
	if res.StatusCodes[200] != res.Requests || len(res.ErrorDist) > 0 {
		t.Errorf("%d requests: status codes %v, errors %v; want all 200", res.Requests, res.StatusCodes, res.ErrorDist)
	}
}
