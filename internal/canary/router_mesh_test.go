package canary

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

func newStore(t *testing.T) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(context.Background(), t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func apexRouter(t *testing.T, st store.Store) *v1alpha1.VirtualRouter {
	t.Helper()
	o, err := st.Get(context.Background(), store.Key{Kind: "VirtualRouter", Namespace: "demo", Name: "podinfo"})
	if err != nil {
		t.Fatal(err)
	}
	return o.(*v1alpha1.VirtualRouter)
}

func TestRetryPolicyMapsEnvoyNames(t *testing.T) {
	tests := []struct {
		retryOn  string
		http     []v1alpha1.HTTPRetryPolicyEvent
		tcp      []v1alpha1.TCPRetryPolicyEvent
		errorHas string
	}{
		{retryOn: "gateway-error,client-error,stream-error", http: []v1alpha1.HTTPRetryPolicyEvent{"gateway-error", "client-error", "stream-error"}},
		{retryOn: "5xx, connect-failure", http: []v1alpha1.HTTPRetryPolicyEvent{"server-error"}, tcp: []v1alpha1.TCPRetryPolicyEvent{"connection-error"}},
		{retryOn: "", http: []v1alpha1.HTTPRetryPolicyEvent{"server-error", "client-error", "gateway-error"}},
		{retryOn: "reset", errorHas: `"reset" has no App Mesh equivalent`},
	}
	for _, tt := range tests {
		t.Run(tt.retryOn, func(t *testing.T) {
			p, err := retryPolicy(&v1alpha1.HTTPRetry{Attempts: 2, PerTryTimeout: "250ms", RetryOn: tt.retryOn}, nil)
			if tt.errorHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errorHas) {
					t.Fatalf("err = %v, want %q", err, tt.errorHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.MaxRetries != 2 || p.PerRetryTimeout.Value != 250 || p.PerRetryTimeout.Unit != "ms" ||
				strings.Join(toStrings(p.HTTPRetryEvents), ",") != strings.Join(toStrings(tt.http), ",") ||
				strings.Join(toStrings(p.TCPRetryEvents), ",") != strings.Join(toStrings(tt.tcp), ",") {
				t.Errorf("policy %+v", p)
			}
		})
	}
}

func toStrings[T ~string](l []T) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = string(v)
	}
	return out
}

// Given a gRPC Canary, the router makes grpc listeners and a grpcRoute with its timeout.
func TestMeshRouterGRPC(t *testing.T) {
	st := newStore(t)
	r := &MeshRouter{Store: st}
	cd := seedCanary()
	cd.Spec.Service.PortName = "grpc"
	cd.Spec.Service.Timeout = "15s"
	if err := r.Initialize(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
	vr := apexRouter(t, st)
	route := vr.Spec.Routes[0]
	if vr.Spec.Listeners[0].PortMapping.Protocol != "grpc" || route.GRPCRoute == nil || route.HTTPRoute != nil ||
		route.GRPCRoute.Timeout.PerRequest.Value != 15000 {
		t.Errorf("router %+v", vr.Spec)
	}
}

// Given the apex router, A/B matches become routes ahead of the weighted one that send
// matching requests (a cookie through the cookie header) to the canary; weights and
// matches survive a re-initialisation after a spec change; an empty match removes them.
func TestMeshRouterMatchAndWeights(t *testing.T) {
	st := newStore(t)
	r := &MeshRouter{Store: st}
	ctx := context.Background()
	cd := seedCanary()
	if err := r.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if err := r.SetWeights(ctx, cd, SetWeights{Primary: 70, Canary: 30}); err != nil {
		t.Fatal(err)
	}
	match := []v1alpha1.HTTPMatchRequest{
		{Headers: map[string]v1alpha1.StringMatch{"x-canary": {Exact: "insider"}}},
		{Headers: map[string]v1alpha1.StringMatch{"cookie": {Regex: "^(.*?;)?(canary=always)(;.*)?$"}}},
	}
	if err := r.SetMatch(ctx, cd, match); err != nil {
		t.Fatal(err)
	}
	cd.Spec.Analysis.Match = match
	cd.Spec.Service.Timeout = "5s"
	if err := r.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	vr := apexRouter(t, st)
	if len(vr.Spec.Routes) != 3 {
		t.Fatalf("routes %+v", vr.Spec.Routes)
	}
	first, second, main := vr.Spec.Routes[0], vr.Spec.Routes[1], vr.Spec.Routes[2]
	if first.Name != "podinfo-match" || *first.Priority != 0 || first.HTTPRoute.Match.Headers[0].Name != "x-canary" ||
		*first.HTTPRoute.Match.Headers[0].Match.Exact != "insider" || first.HTTPRoute.Action.WeightedTargets[1].Weight != 100 ||
		first.HTTPRoute.Timeout.PerRequest.Value != 5000 {
		t.Errorf("first match route %+v", first.HTTPRoute)
	}
	if second.Name != "podinfo-match-1" || *second.Priority != 1 || second.HTTPRoute.Match.Headers[0].Name != "cookie" ||
		*second.HTTPRoute.Match.Headers[0].Match.Regex != "^(.*?;)?(canary=always)(;.*)?$" {
		t.Errorf("cookie match route %+v", second.HTTPRoute)
	}
	if main.Name != "podinfo-route" || main.Priority != nil || main.HTTPRoute.Timeout.PerRequest.Value != 5000 {
		t.Errorf("weighted route %+v", main)
	}
	if w := main.HTTPRoute.Action.WeightedTargets; w[0].Weight != 70 || w[1].Weight != 30 {
		t.Errorf("weights after re-initialisation %+v, want 70/30 kept", w)
	}
	if err := r.SetMatch(ctx, cd, nil); err != nil {
		t.Fatal(err)
	}
	if routes := apexRouter(t, st).Spec.Routes; len(routes) != 1 || routes[0].Name != "podinfo-route" {
		t.Errorf("routes after removing the match: %+v", routes)
	}
}

// Given mirroring, the weighted route mirrors mirrorWeight percent to the canary's node
// (a Canarymesh route extension) and the router validates; weights without a mirror
// remove it. A gRPC Canary cannot mirror: its weights are still set and the error says so.
func TestMeshRouterMirror(t *testing.T) {
	st := newStore(t)
	r := &MeshRouter{Store: st}
	ctx := context.Background()
	cd := seedCanary()
	if err := r.SetWeights(ctx, cd, SetWeights{Primary: 100, Mirror: true, MirrorWeight: 40}); err != nil {
		t.Fatal(err)
	}
	main := apexRouter(t, st).Spec.Routes[0].HTTPRoute
	if m := main.Action.Mirror; m == nil || m.VirtualNodeRef.Name != "podinfo-canary" || m.Percent != 40 {
		t.Fatalf("mirror %+v", m)
	}
	cd.Spec.Service.Timeout = "5s" // a re-initialisation keeps the mirror
	if err := r.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if m := apexRouter(t, st).Spec.Routes[0].HTTPRoute.Action.Mirror; m == nil || m.Percent != 40 {
		t.Errorf("mirror after re-initialisation %+v", m)
	}
	if err := r.SetWeights(ctx, cd, SetWeights{Primary: 90, Canary: 10}); err != nil {
		t.Fatal(err)
	}
	if m := apexRouter(t, st).Spec.Routes[0].HTTPRoute.Action.Mirror; m != nil {
		t.Errorf("mirror kept after weights without one: %+v", m)
	}

	gst := newStore(t)
	g := seedCanary()
	g.Spec.Service.PortName = "grpc"
	err := (&MeshRouter{Store: gst}).SetWeights(ctx, g, SetWeights{Primary: 80, Canary: 20, Mirror: true, MirrorWeight: 100})
	if !errors.Is(err, ErrMirrorUnsupported) {
		t.Fatalf("gRPC mirror: err = %v, want ErrMirrorUnsupported", err)
	}
	if w := apexRouter(t, gst).Spec.Routes[0].GRPCRoute.Action.WeightedTargets; w[0].Weight != 80 || w[1].Weight != 20 {
		t.Errorf("gRPC weights %+v, want 80/20 set anyway", w)
	}
}

// Given session affinity, the canary target hands out the canary cookie and the primary
// target the primary cookie (Max-Age one interval), and sticky routes send requests with
// either cookie to its side; once the canary's weight is zero, the previous cookie's
// route expires it. Everything survives a re-initialisation.
func TestMeshRouterSessionAffinity(t *testing.T) {
	st := newStore(t)
	r := &MeshRouter{Store: st}
	ctx := context.Background()
	cd := seedCanary()
	cd.Spec.Analysis.Interval = "30s"
	cd.Spec.Analysis.SessionAffinity = &v1alpha1.SessionAffinity{CookieName: "flagger-cookie", PrimaryCookieName: "primary-cookie",
		MaxAge: 600, SameSite: "Lax", Path: "/"}
	aff := &Affinity{Canary: "flagger-cookie=c1", Primary: "primary-cookie=p1"}
	if err := r.SetWeights(ctx, cd, SetWeights{Primary: 80, Canary: 20, Affinity: aff}); err != nil {
		t.Fatal(err)
	}
	cd.Spec.Service.Timeout = "5s"
	if err := r.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	routes := apexRouter(t, st).Spec.Routes
	if len(routes) != 3 {
		t.Fatalf("routes %+v", routes)
	}
	sc, sp, main := routes[0], routes[1], routes[2]
	if sc.Name != "podinfo-route-sticky-canary" || *sc.Priority != 0 ||
		*sc.HTTPRoute.Match.Headers[0].Match.Regex != cookieRegex("flagger-cookie", "c1") ||
		sc.HTTPRoute.Action.WeightedTargets[1].Weight != 100 || sc.HTTPRoute.Action.WeightedTargets[0].Weight != 0 {
		t.Errorf("sticky canary route %+v", sc.HTTPRoute)
	}
	if sp.Name != "podinfo-route-sticky-primary" || *sp.Priority != 1 ||
		*sp.HTTPRoute.Match.Headers[0].Match.Regex != cookieRegex("primary-cookie", "p1") ||
		sp.HTTPRoute.Action.WeightedTargets[0].Weight != 100 {
		t.Errorf("sticky primary route %+v", sp.HTTPRoute)
	}
	ts := main.HTTPRoute.Action.WeightedTargets
	want := v1alpha1.ResponseCookie{Name: "flagger-cookie", Value: "c1", MaxAge: 600, SameSite: "Lax", Path: "/"}
	if len(ts[1].ResponseCookies) != 1 || ts[1].ResponseCookies[0] != want {
		t.Errorf("canary target cookies %+v, want %+v", ts[1].ResponseCookies, want)
	}
	if len(ts[0].ResponseCookies) != 1 || ts[0].ResponseCookies[0].Name != "primary-cookie" || ts[0].ResponseCookies[0].MaxAge != 30 {
		t.Errorf("primary target cookies %+v, want primary-cookie for one interval (30s)", ts[0].ResponseCookies)
	}

	prev := &Affinity{Previous: "flagger-cookie=c1"}
	if err := r.SetWeights(ctx, cd, SetWeights{Primary: 100, Affinity: prev}); err != nil {
		t.Fatal(err)
	}
	routes = apexRouter(t, st).Spec.Routes
	if len(routes) != 2 || routes[0].Name != "podinfo-route-sticky-previous" {
		t.Fatalf("routes after promotion %+v", routes)
	}
	pr := routes[0].HTTPRoute
	if *pr.Match.Headers[0].Match.Regex != cookieRegex("flagger-cookie", "c1") || pr.Action.WeightedTargets[0].Weight != 100 ||
		pr.Action.WeightedTargets[0].ResponseCookies[0].MaxAge != -1 {
		t.Errorf("previous-cookie route %+v", pr)
	}
	for _, tgt := range routes[1].HTTPRoute.Action.WeightedTargets {
		if len(tgt.ResponseCookies) != 0 {
			t.Errorf("weighted route still hands out %+v", tgt.ResponseCookies)
		}
	}
	if err := r.SetWeights(ctx, cd, SetWeights{Primary: 100}); err != nil {
		t.Fatal(err)
	}
	if routes = apexRouter(t, st).Spec.Routes; len(routes) != 1 {
		t.Errorf("routes without affinity %+v", routes)
	}
}

// Objects another Canary made are not taken over; unowned ones are adopted.
func TestMeshRouterOwnership(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	vs := &v1alpha1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-canary", Namespace: "demo",
		Annotations: map[string]string{AnnotationOwner: "Canary/demo/other"}}}
	if _, err := st.Create(ctx, vs); err != nil {
		t.Fatal(err)
	}
	err := (&MeshRouter{Store: st}).Initialize(ctx, seedCanary())
	if err == nil || !strings.Contains(err.Error(), "belongs to Canary/demo/other") {
		t.Fatalf("err = %v, want a refusal naming the owner", err)
	}
	o, _ := st.Get(ctx, store.Key{Kind: "VirtualService", Namespace: "demo", Name: "podinfo-canary"})
	o.SetAnnotations(nil)
	if _, err := st.Update(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := (&MeshRouter{Store: st}).Initialize(ctx, seedCanary()); err != nil {
		t.Fatalf("an unowned object is adopted: %v", err)
	}
}

// The virtual nodes select on the label the target's pods carry: a Workload's own
// labels with <target>-primary for the primary, or what Selector says (a Deployment
// selected by name: web, whose primary's pods carry name: web-primary).
func TestMeshRouterNodeSelectors(t *testing.T) {
	ctx := context.Background()
	selects := func(t *testing.T, st store.Store, node string) map[string]string {
		t.Helper()
		o, err := st.Get(ctx, store.Key{Kind: "VirtualNode", Namespace: "demo", Name: node})
		if err != nil {
			t.Fatal(err)
		}
		return o.(*v1alpha1.VirtualNode).Spec.PodSelector.MatchLabels
	}
	for _, tc := range []struct {
		name             string
		selector         func(context.Context, *v1alpha1.Canary) (string, string, string, error)
		primary, canaryL map[string]string
	}{
		{name: "no workload: app and the target's name",
			primary: map[string]string{"app": "podinfo-primary"}, canaryL: map[string]string{"app": "podinfo"}},
		{name: "a Deployment's selector label",
			selector: func(context.Context, *v1alpha1.Canary) (string, string, string, error) {
				return "name", "web", "web-primary", nil
			},
			primary: map[string]string{"name": "web-primary"}, canaryL: map[string]string{"name": "web"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			r := &MeshRouter{Store: st, Selector: tc.selector}
			if err := r.Initialize(ctx, seedCanary()); err != nil {
				t.Fatal(err)
			}
			if got := selects(t, st, "podinfo-primary"); !maps.Equal(got, tc.primary) {
				t.Errorf("primary node selects %v, want %v", got, tc.primary)
			}
			if got := selects(t, st, "podinfo-canary"); !maps.Equal(got, tc.canaryL) {
				t.Errorf("canary node selects %v, want %v", got, tc.canaryL)
			}
		})
	}
	// A Workload without app, name or app.kubernetes.io/name: nothing could select its
	// instances, so the mesh is not made and the reason names the missing label.
	st := newStore(t)
	bare := &v1alpha1.Workload{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "demo"},
		Spec: v1alpha1.WorkloadSpec{Command: []string{"demo-app"}}}
	bare.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Workload"))
	if _, err := st.Create(ctx, bare); err != nil {
		t.Fatal(err)
	}
	err := (&MeshRouter{Store: st}).Initialize(ctx, seedCanary())
	if err == nil || !strings.Contains(err.Error(), "spec.labels") || !strings.Contains(err.Error(), "app: podinfo") {
		t.Errorf("Initialize with a target Workload without selector labels: %v", err)
	}
	if _, gerr := st.Get(ctx, store.Key{Kind: "VirtualNode", Namespace: "demo", Name: "podinfo-canary"}); !errors.Is(gerr, store.ErrNotFound) {
		t.Errorf("a canary node was made for a target nothing can select: %v", gerr)
	}

	st = newStore(t)
	failing := &MeshRouter{Store: st, Selector: func(context.Context, *v1alpha1.Canary) (string, string, string, error) {
		return "", "", "", ErrTargetNotFound
	}}
	if err := failing.Initialize(ctx, seedCanary()); !errors.Is(err, ErrTargetNotFound) {
		t.Errorf("Initialize with a missing target: %v", err)
	}
}
