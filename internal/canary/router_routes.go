package canary

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// routes builds the apex VirtualRouter's routes as Flagger's App Mesh router does: one
// weighted route to the primary and canary virtual nodes, with the retry policy and
// timeout of spec.service, and, for A/B testing, one route per match, ahead of it, that
// sends the matching requests to the canary.
type routes struct {
	grpc            bool
	primary, canary string // virtual node names
	main, matchName string // route names
	retry           *v1alpha1.HTTPRetryPolicy
	timeout         *v1alpha1.Duration
}

// newRoutes reads the route settings of a Canary.
func newRoutes(cd *v1alpha1.Canary) (*routes, error) {
	apex, primary, canary := cd.GetServiceNames()
	rt := &routes{grpc: protocol(cd) == v1alpha1.PortProtocolGRPC, primary: primary, canary: canary,
		main: apex + "-route", matchName: apex + "-match"}
	s := cd.Spec.Service
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil {
			return nil, fmt.Errorf("spec.service.timeout: %w", err)
		}
		rt.timeout = millis(d)
	}
	if s.Retries != nil {
		p, err := retryPolicy(s.Retries, rt.timeout)
		if err != nil {
			return nil, err
		}
		rt.retry = p
	}
	return rt, nil
}

// protocol is the listener protocol of the Canary's port: grpc or http2 when the port
// name says so, http otherwise.
func protocol(cd *v1alpha1.Canary) v1alpha1.PortProtocol {
	switch strings.ToLower(cd.Spec.Service.PortName) {
	case "grpc":
		return v1alpha1.PortProtocolGRPC
	case "http2":
		return v1alpha1.PortProtocolHTTP2
	}
	return v1alpha1.PortProtocolHTTP
}

func millis(d time.Duration) *v1alpha1.Duration {
	return &v1alpha1.Duration{Unit: v1alpha1.DurationUnitMS, Value: d.Milliseconds()}
}

// retryPolicy maps spec.service.retries (Envoy's retryOn names) onto App Mesh's: HTTP
// events as they are (5xx as server-error), connect-failure as the TCP connection-error.
func retryPolicy(r *v1alpha1.HTTPRetry, timeout *v1alpha1.Duration) (*v1alpha1.HTTPRetryPolicy, error) {
	p := &v1alpha1.HTTPRetryPolicy{MaxRetries: int64(r.Attempts)}
	switch {
	case r.PerTryTimeout != "":
		d, err := time.ParseDuration(r.PerTryTimeout)
		if err != nil {
			return nil, fmt.Errorf("spec.service.retries.perTryTimeout: %w", err)
		}
		p.PerRetryTimeout = *millis(d)
	case timeout != nil:
		p.PerRetryTimeout = *timeout
	default:
		p.PerRetryTimeout = *millis(15 * time.Second)
	}
	on := r.RetryOn
	if strings.TrimSpace(on) == "" {
		on = "server-error,client-error,gateway-error"
	}
	for _, ev := range strings.Split(on, ",") {
		switch ev = strings.TrimSpace(ev); ev {
		case "gateway-error", "client-error", "server-error", "stream-error":
			p.HTTPRetryEvents = appendNew(p.HTTPRetryEvents, v1alpha1.HTTPRetryPolicyEvent(ev))
		case "5xx":
			p.HTTPRetryEvents = appendNew(p.HTTPRetryEvents, "server-error")
		case "connect-failure", "connection-error":
			p.TCPRetryEvents = appendNew(p.TCPRetryEvents, "connection-error")
		case "":
		default:
			return nil, fmt.Errorf("spec.service.retries.retryOn: %q has no App Mesh equivalent (gateway-error, client-error, server-error, stream-error, 5xx, connect-failure)", ev)
		}
	}
	return p, nil
}

func appendNew[T comparable](l []T, v T) []T {
	for _, x := range l {
		if x == v {
			return l
		}
	}
	return append(l, v)
}

func (rt *routes) targets(primaryW, canaryW int64) []v1alpha1.WeightedTarget {
	return []v1alpha1.WeightedTarget{
		{VirtualNodeRef: &v1alpha1.VirtualNodeReference{Name: rt.primary}, Weight: primaryW},
		{VirtualNodeRef: &v1alpha1.VirtualNodeReference{Name: rt.canary}, Weight: canaryW},
	}
}

// mainRoute is the weighted route.
func (rt *routes) mainRoute(primaryW, canaryW int64) v1alpha1.Route {
	r := v1alpha1.Route{Name: rt.main}
	if rt.grpc {
		r.GRPCRoute = rt.grpcRoute(nil, rt.targets(primaryW, canaryW))
		return r
	}
	slash := "/"
	r.HTTPRoute = &v1alpha1.HTTPRoute{Match: v1alpha1.HTTPRouteMatch{Prefix: &slash},
		Action: v1alpha1.HTTPRouteAction{WeightedTargets: rt.targets(primaryW, canaryW)}}
	rt.policies(r.HTTPRoute)
	return r
}

func (rt *routes) policies(h *v1alpha1.HTTPRoute) {
	if rt.retry != nil {
		h.RetryPolicy = rt.retry.DeepCopy()
	}
	if rt.timeout != nil {
		h.Timeout = &v1alpha1.HTTPTimeout{PerRequest: rt.timeout.DeepCopy()}
	}
}

func (rt *routes) grpcRoute(md []v1alpha1.GRPCRouteMetadata, ts []v1alpha1.WeightedTarget) *v1alpha1.GRPCRoute {
	g := &v1alpha1.GRPCRoute{Match: v1alpha1.GRPCRouteMatch{Metadata: md}, Action: v1alpha1.GRPCRouteAction{WeightedTargets: ts}}
	if rt.retry != nil {
		g.RetryPolicy = &v1alpha1.GRPCRetryPolicy{HTTPRetryEvents: rt.retry.HTTPRetryEvents, TCPRetryEvents: rt.retry.TCPRetryEvents,
			MaxRetries: rt.retry.MaxRetries, PerRetryTimeout: rt.retry.PerRetryTimeout}
	}
	if rt.timeout != nil {
		g.Timeout = &v1alpha1.GRPCTimeout{PerRequest: rt.timeout.DeepCopy()}
	}
	return g
}

// matchRoutes are the A/B routes, one per match (a request matching any of them goes
// to the canary), ordered by priority ahead of the weighted route.
func (rt *routes) matchRoutes(match []v1alpha1.HTTPMatchRequest) ([]v1alpha1.Route, error) {
	out := make([]v1alpha1.Route, 0, len(match))
	for i := range match {
		name := rt.matchName
		if i > 0 {
			name = fmt.Sprintf("%s-%d", rt.matchName, i)
		}
		prio := int64(i)
		r := v1alpha1.Route{Name: name, Priority: &prio}
		ts := rt.targets(0, 100)
		if rt.grpc {
			r.GRPCRoute = rt.grpcRoute(metadataMatches(match[i]), ts)
		} else {
			m, err := httpMatch(match[i])
			if err != nil {
				return nil, fmt.Errorf("spec.analysis.match[%d]: %w", i, err)
			}
			r.HTTPRoute = &v1alpha1.HTTPRoute{Match: m, Action: v1alpha1.HTTPRouteAction{WeightedTargets: ts}}
			rt.policies(r.HTTPRoute)
		}
		out = append(out, r)
	}
	return out, nil
}

// isMatchRoute tells the A/B routes from the others.
func (rt *routes) isMatchRoute(name string) bool {
	return name == rt.matchName || strings.HasPrefix(name, rt.matchName+"-")
}

// httpMatch turns a Flagger match (Istio's shape) into an App Mesh route match. Cookies
// are matched through the cookie header, as in Flagger's A/B examples.
func httpMatch(m v1alpha1.HTTPMatchRequest) (v1alpha1.HTTPRouteMatch, error) {
	var out v1alpha1.HTTPRouteMatch
	switch u := m.URI; {
	case u == nil:
		p := "/"
		out.Prefix = &p
	case u.Exact != "":
		out.Path = &v1alpha1.HTTPPathMatch{Exact: &u.Exact}
	case u.Regex != "":
		out.Path = &v1alpha1.HTTPPathMatch{Regex: &u.Regex}
	case u.Suffix != "":
		re := ".*" + regexp.QuoteMeta(u.Suffix)
		out.Path = &v1alpha1.HTTPPathMatch{Regex: &re}
	default:
		p := u.Prefix
		if p == "" {
			p = "/"
		}
		out.Prefix = &p
	}
	if m.Method != nil && m.Method.Exact != "" {
		method := strings.ToUpper(m.Method.Exact)
		out.Method = &method
	}
	if m.Scheme != nil && m.Scheme.Exact != "" {
		scheme := m.Scheme.Exact
		out.Scheme = &scheme
	}
	out.Headers = append(headerMatches(m.Headers, false), headerMatches(m.WithoutHeaders, true)...)
	for _, name := range sortedKeys(m.QueryParams) {
		v := m.QueryParams[name]
		if v.Exact == "" {
			return out, fmt.Errorf("queryParams.%s: only exact matches of query parameters are supported", name)
		}
		out.QueryParameters = append(out.QueryParameters, v1alpha1.HTTPQueryParameters{Name: name, Match: &v1alpha1.QueryMatchMethod{Exact: &v.Exact}})
	}
	if len(out.Headers) == 0 {
		out.Headers = nil
	}
	return out, nil
}

func headerMatches(h map[string]v1alpha1.StringMatch, invert bool) []v1alpha1.HTTPRouteHeader {
	var out []v1alpha1.HTTPRouteHeader
	for _, name := range sortedKeys(h) {
		hm := headerMethod(h[name])
		rh := v1alpha1.HTTPRouteHeader{Name: name, Match: &hm}
		if invert {
			t := true
			rh.Invert = &t
		}
		out = append(out, rh)
	}
	return out
}

func headerMethod(s v1alpha1.StringMatch) v1alpha1.HeaderMatchMethod {
	switch {
	case s.Exact != "":
		return v1alpha1.HeaderMatchMethod{Exact: &s.Exact}
	case s.Prefix != "":
		return v1alpha1.HeaderMatchMethod{Prefix: &s.Prefix}
	case s.Suffix != "":
		return v1alpha1.HeaderMatchMethod{Suffix: &s.Suffix}
	}
	re := s.Regex
	if re == "" {
		re = ".*"
	}
	return v1alpha1.HeaderMatchMethod{Regex: &re}
}

// metadataMatches are a match's headers as gRPC metadata.
func metadataMatches(m v1alpha1.HTTPMatchRequest) []v1alpha1.GRPCRouteMetadata {
	var out []v1alpha1.GRPCRouteMetadata
	for _, h := range headerMatches(m.Headers, false) {
		hm := h.Match
		out = append(out, v1alpha1.GRPCRouteMetadata{Name: h.Name, Match: &v1alpha1.GRPCRouteMetadataMatchMethod{
			Exact: hm.Exact, Prefix: hm.Prefix, Suffix: hm.Suffix, Regex: hm.Regex}})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// setWeights sets the weights of the primary and canary targets of the weighted route,
// and reports whether anything changed; a router without the route gets it back.
func (rt *routes) setWeights(vr *v1alpha1.VirtualRouter, primaryW, canaryW int64) bool {
	for i := range vr.Spec.Routes {
		r := &vr.Spec.Routes[i]
		if r.Name != rt.main {
			continue
		}
		want := rt.mainRoute(primaryW, canaryW)
		if weightsOf(r) == nil {
			*r = want
			return true
		}
		changed := false
		for j := range weightsOf(r) {
			t := &weightsOf(r)[j]
			w := t.Weight
			switch {
			case t.VirtualNodeRef != nil && t.VirtualNodeRef.Name == rt.primary:
				w = primaryW
			case t.VirtualNodeRef != nil && t.VirtualNodeRef.Name == rt.canary:
				w = canaryW
			}
			if t.Weight != w {
				t.Weight, changed = w, true
			}
		}
		return changed
	}
	vr.Spec.Routes = append(vr.Spec.Routes, rt.mainRoute(primaryW, canaryW))
	return true
}

// weightsOf returns the weighted targets of a route, whatever its kind.
func weightsOf(r *v1alpha1.Route) []v1alpha1.WeightedTarget {
	switch {
	case r.HTTPRoute != nil:
		return r.HTTPRoute.Action.WeightedTargets
	case r.HTTP2Route != nil:
		return r.HTTP2Route.Action.WeightedTargets
	case r.GRPCRoute != nil:
		return r.GRPCRoute.Action.WeightedTargets
	case r.TCPRoute != nil:
		return r.TCPRoute.Action.WeightedTargets
	}
	return nil
}

// currentWeights reads the weights of the weighted route, primary 100 when there is none.
func (rt *routes) currentWeights(vr *v1alpha1.VirtualRouter) (primaryW, canaryW int64) {
	primaryW = 100
	for i := range vr.Spec.Routes {
		r := &vr.Spec.Routes[i]
		if r.Name != rt.main {
			continue
		}
		for _, t := range weightsOf(r) {
			if t.VirtualNodeRef == nil {
				continue
			}
			switch t.VirtualNodeRef.Name {
			case rt.primary:
				primaryW = t.Weight
			case rt.canary:
				canaryW = t.Weight
			}
		}
	}
	return primaryW, canaryW
}

// keepMatch gives next the A/B routes cur has, rebuilt from the Canary's match so that
// they follow a change of its retries or timeout.
func (rt *routes) keepMatch(cur, next *v1alpha1.VirtualRouter, cd *v1alpha1.Canary) error {
	has := false
	for _, r := range cur.Spec.Routes {
		has = has || rt.isMatchRoute(r.Name)
	}
	an := cd.GetAnalysis()
	if !has || an == nil || len(an.Match) == 0 {
		return nil
	}
	match, err := rt.matchRoutes(an.Match)
	if err != nil {
		return err
	}
	next.Spec.Routes = append(match, next.Spec.Routes...)
	return nil
}

// Session affinity and mirroring on the apex router (Canarymesh route extensions).

// stickyRoutes name the routes session affinity adds ahead of the weighted route.
func (rt *routes) stickyName(kind string) string { return rt.main + "-sticky-" + kind }

// isStickyRoute tells the session-affinity routes from the others.
func (rt *routes) isStickyRoute(name string) bool {
	return strings.HasPrefix(name, rt.main+"-sticky-")
}

// shape gives the weighted route the traffic of w: weights, the mirror to the canary
// and the session-affinity cookies its targets hand out; and puts the session-affinity
// routes ahead of it. It reports whether anything changed; ErrMirrorUnsupported comes
// with the rest done when a gRPC route was asked to mirror.
func (rt *routes) shape(vr *v1alpha1.VirtualRouter, w SetWeights, cd *v1alpha1.Canary) (bool, error) {
	before := vr.Spec.DeepCopy()
	rt.setWeights(vr, int64(w.Primary), int64(w.Canary))
	main := rt.mainOf(vr)
	if main == nil {
		return false, fmt.Errorf("the weighted route %s is missing", rt.main)
	}
	var unsupported error
	switch {
	case main.HTTPRoute != nil:
		rt.extend(main.HTTPRoute, w, cd)
	case w.Mirror:
		unsupported = ErrMirrorUnsupported
	}
	var keep []v1alpha1.Route
	for _, r := range vr.Spec.Routes {
		if !rt.isStickyRoute(r.Name) {
			keep = append(keep, r)
		}
	}
	if main.HTTPRoute != nil {
		sticky := rt.stickyRoutes(w, cd, main.HTTPRoute)
		keep = append(sticky, keep...)
	}
	vr.Spec.Routes = keep
	return !equality.Semantic.DeepEqual(before, &vr.Spec), unsupported
}

// ErrMirrorUnsupported: the Canary's routes cannot mirror (gRPC; mirrors are HTTP route
// extensions). The weights are set; nothing is mirrored.
var ErrMirrorUnsupported = errors.New("gRPC routes cannot mirror traffic; only HTTP routes can")

func (rt *routes) mainOf(vr *v1alpha1.VirtualRouter) *v1alpha1.Route {
	for i := range vr.Spec.Routes {
		if vr.Spec.Routes[i].Name == rt.main {
			return &vr.Spec.Routes[i]
		}
	}
	return nil
}

// extend sets the mirror and the targets' cookies of the weighted route.
func (rt *routes) extend(h *v1alpha1.HTTPRoute, w SetWeights, cd *v1alpha1.Canary) {
	h.Action.Mirror = nil
	if w.Mirror && w.MirrorWeight > 0 {
		h.Action.Mirror = &v1alpha1.RouteMirror{VirtualNodeRef: v1alpha1.VirtualNodeReference{Name: rt.canary},
			Percent: int64(min(w.MirrorWeight, 100))}
	}
	for i := range h.Action.WeightedTargets {
		t := &h.Action.WeightedTargets[i]
		t.ResponseCookies = nil
		if t.VirtualNodeRef == nil || w.Affinity == nil {
			continue
		}
		switch t.VirtualNodeRef.Name {
		case rt.canary:
			if c, ok := affinityCookie(cd, w.Affinity.Canary, canaryMaxAge(cd)); ok {
				t.ResponseCookies = []v1alpha1.ResponseCookie{c}
			}
		case rt.primary:
			if c, ok := affinityCookie(cd, w.Affinity.Primary, int64(cd.GetAnalysisInterval()/time.Second)); ok {
				t.ResponseCookies = []v1alpha1.ResponseCookie{c}
			}
		}
	}
}

// stickyRoutes are the session-affinity routes, as Flagger makes them: requests with
// the canary cookie go to the canary, those with the primary cookie to the primary, and
// those with the previous release's cookie take the weighted route's targets while their
// responses expire that cookie.
func (rt *routes) stickyRoutes(w SetWeights, cd *v1alpha1.Canary, main *v1alpha1.HTTPRoute) []v1alpha1.Route {
	a := w.Affinity
	if a == nil {
		return nil
	}
	var out []v1alpha1.Route
	add := func(kind, cookie string, targets []v1alpha1.WeightedTarget) {
		name, value, ok := strings.Cut(cookie, "=")
		if !ok || name == "" {
			return
		}
		re := cookieRegex(name, value)
		prio := int64(len(out))
		slash := "/"
		h := &v1alpha1.HTTPRoute{Match: v1alpha1.HTTPRouteMatch{Prefix: &slash, Headers: []v1alpha1.HTTPRouteHeader{
			{Name: "cookie", Match: &v1alpha1.HeaderMatchMethod{Regex: &re}}}},
			Action: v1alpha1.HTTPRouteAction{WeightedTargets: targets}}
		rt.policies(h)
		out = append(out, v1alpha1.Route{Name: rt.stickyName(kind), Priority: &prio, HTTPRoute: h})
	}
	if a.Canary != "" {
		add("canary", a.Canary, rt.targets(0, 100))
	}
	if a.Primary != "" {
		add("primary", a.Primary, rt.targets(100, 0))
	}
	if a.Canary == "" && a.Previous != "" {
		ts := rt.targets(int64(w.Primary), int64(w.Canary))
		if c, ok := affinityCookie(cd, a.Previous, -1); ok {
			for i := range ts {
				ts[i].ResponseCookies = []v1alpha1.ResponseCookie{c}
			}
		}
		add("previous", a.Previous, ts)
	}
	return out
}

// cookieRegex matches a Cookie header (or several, joined with commas) that carries
// NAME=VALUE among its pairs.
func cookieRegex(name, value string) string {
	return `(.*[;,] *)?` + regexp.QuoteMeta(name) + `=` + regexp.QuoteMeta(value) + `( *[;,].*)?`
}

// affinityCookie is a "NAME=VALUE" cookie with spec.analysis.sessionAffinity's
// attributes and the given Max-Age.
func affinityCookie(cd *v1alpha1.Canary, cookie string, maxAge int64) (v1alpha1.ResponseCookie, bool) {
	name, value, ok := strings.Cut(cookie, "=")
	an := cd.GetAnalysis()
	if !ok || name == "" || an == nil || an.SessionAffinity == nil {
		return v1alpha1.ResponseCookie{}, false
	}
	sa := an.SessionAffinity
	return v1alpha1.ResponseCookie{Name: name, Value: value, MaxAge: maxAge, Path: sa.Path, Domain: sa.Domain,
		SameSite: sa.SameSite, Secure: sa.Secure, HTTPOnly: sa.HTTPOnly, Partitioned: sa.Partitioned}, true
}

func canaryMaxAge(cd *v1alpha1.Canary) int64 {
	return int64(cd.GetAnalysis().SessionAffinity.GetMaxAge() / time.Second)
}

// keepShape gives next the mirror, cookies and session-affinity routes cur has.
func (rt *routes) keepShape(cur, next *v1alpha1.VirtualRouter) {
	cm, nm := rt.mainOf(cur), rt.mainOf(next)
	if cm != nil && nm != nil && cm.HTTPRoute != nil && nm.HTTPRoute != nil {
		nm.HTTPRoute.Action.Mirror = cm.HTTPRoute.Action.Mirror.DeepCopy()
		for i := range nm.HTTPRoute.Action.WeightedTargets {
			t := &nm.HTTPRoute.Action.WeightedTargets[i]
			for _, c := range cm.HTTPRoute.Action.WeightedTargets {
				if t.VirtualNodeRef != nil && c.VirtualNodeRef != nil && c.VirtualNodeRef.Name == t.VirtualNodeRef.Name {
					t.ResponseCookies = append([]v1alpha1.ResponseCookie(nil), c.ResponseCookies...)
				}
			}
		}
	}
	var sticky []v1alpha1.Route
	for _, r := range cur.Spec.Routes {
		if rt.isStickyRoute(r.Name) {
			sticky = append(sticky, *r.DeepCopy())
		}
	}
	next.Spec.Routes = append(sticky, next.Spec.Routes...)
}
