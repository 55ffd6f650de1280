package mesh

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// routerRoutes compiles a virtual router's routes, in the order they are tried:
// priority (lower first; none after all), then declaration order.
func (b *build) routerRoutes(vr *v1alpha1.VirtualRouter) []snapshot.Route {
	id := objectID("VirtualRouter", vr.Namespace, vr.Name)
	out := make([]snapshot.Route, 0, len(vr.Spec.Routes))
	for i := range vr.Spec.Routes {
		rt := &vr.Spec.Routes[i]
		rb := routeBuild{build: b, id: id, ns: vr.Namespace, field: fmt.Sprintf("spec.routes[%d]", i)}
		r, ok := rb.route(rt)
		if !ok {
			continue
		}
		r.Name = key(vr.Namespace, vr.Name) + "/" + rt.Name
		r.Priority = priority(rt.Priority)
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority < out[j].Priority })
	return out
}

// routeBuild compiles one route of a router, or one gateway route.
type routeBuild struct {
	*build
	id    string // the object the route belongs to
	ns    string // its namespace, the default of references
	field string // the route's field path
}

func (rb *routeBuild) failf(field, format string, args ...any) {
	rb.fail(rb.id, rb.field+field, format, args...)
}

func (rb *routeBuild) route(rt *v1alpha1.Route) (snapshot.Route, bool) {
	n := len(rb.fails)
	var r snapshot.Route
	switch {
	case rt.HTTPRoute != nil:
		r = rb.httpRoute(".httpRoute", string(v1alpha1.PortProtocolHTTP), rt.HTTPRoute)
	case rt.HTTP2Route != nil:
		r = rb.httpRoute(".http2Route", string(v1alpha1.PortProtocolHTTP2), rt.HTTP2Route)
	case rt.GRPCRoute != nil:
		r = rb.grpcRoute(rt.GRPCRoute)
	case rt.TCPRoute != nil:
		r = rb.tcpRoute(rt.TCPRoute)
	default:
		rb.failf("", "no httpRoute, http2Route, grpcRoute or tcpRoute is set")
	}
	return r, len(rb.fails) == n
}

func (rb *routeBuild) httpRoute(f, protocol string, h *v1alpha1.HTTPRoute) snapshot.Route {
	m := h.Match
	r := snapshot.Route{Protocol: protocol, Match: snapshot.Match{
		Prefix:  deref(m.Prefix),
		Path:    rb.pathMatch(f+".match.path", m.Path),
		Method:  deref(m.Method),
		Scheme:  deref(m.Scheme),
		Headers: rb.headers(f+".match.headers", m.Headers),
		Query:   queryMatches(m.QueryParameters),
		Port:    port(m.Port),
	}}
	r.Targets = rb.targets(f+".action.weightedTargets", protocol, h.Action.WeightedTargets)
	if ts := h.Action.WeightedTargets; len(r.Targets) == len(ts) { // else the route failed
		for i := range r.Targets {
			r.Targets[i].SetCookies = setCookies(ts[i].ResponseCookies)
		}
	}
	r.Mirror = rb.mirror(f+".action.mirror", protocol, h.Action.Mirror)
	if p := h.RetryPolicy; p != nil {
		r.Retry = &snapshot.RetryPolicy{MaxRetries: int(p.MaxRetries), PerTryTimeout: duration(&p.PerRetryTimeout),
			HTTPEvents: eventStrings(p.HTTPRetryEvents), TCPEvents: eventStrings(p.TCPRetryEvents)}
	}
	r.Timeout = httpTimeout(h.Timeout)
	return r
}

func (rb *routeBuild) grpcRoute(g *v1alpha1.GRPCRoute) snapshot.Route {
	const f = ".grpcRoute"
	m := g.Match
	protocol := string(v1alpha1.PortProtocolGRPC)
	r := snapshot.Route{Protocol: protocol, Match: snapshot.Match{
		GRPCService: deref(m.ServiceName),
		GRPCMethod:  deref(m.MethodName),
		Metadata:    rb.metadata(f+".match.metadata", m.Metadata),
		Port:        port(m.Port),
	}}
	r.Targets = rb.targets(f+".action.weightedTargets", protocol, g.Action.WeightedTargets)
	if p := g.RetryPolicy; p != nil {
		r.Retry = &snapshot.RetryPolicy{MaxRetries: int(p.MaxRetries), PerTryTimeout: duration(&p.PerRetryTimeout),
			HTTPEvents: eventStrings(p.HTTPRetryEvents), TCPEvents: eventStrings(p.TCPRetryEvents),
			GRPCEvents: eventStrings(p.GRPCRetryEvents)}
	}
	if t := g.Timeout; t != nil {
		r.Timeout = timeouts(t.PerRequest, t.Idle)
	}
	return r
}

func (rb *routeBuild) tcpRoute(t *v1alpha1.TCPRoute) snapshot.Route {
	protocol := string(v1alpha1.PortProtocolTCP)
	r := snapshot.Route{Protocol: protocol}
	if t.Match != nil {
		r.Match.Port = port(t.Match.Port)
	}
	r.Targets = rb.targets(".tcpRoute.action.weightedTargets", protocol, t.Action.WeightedTargets)
	if t.Timeout != nil {
		r.Timeout = timeouts(nil, t.Timeout.Idle)
	}
	return r
}

// targets resolves weighted targets to clusters named after their virtual nodes.
func (rb *routeBuild) targets(f, protocol string, ts []v1alpha1.WeightedTarget) []snapshot.WeightedCluster {
	out := make([]snapshot.WeightedCluster, 0, len(ts))
	if len(ts) == 0 {
		rb.failf(f, "no weighted targets: the route sends its traffic nowhere")
	}
	for i, t := range ts {
		tf := fmt.Sprintf("%s[%d]", f, i)
		if t.VirtualNodeRef == nil {
			rb.failf(tf+".virtualNodeARN", "an ARN cannot be resolved outside AWS; use virtualNodeRef")
			continue
		}
		nk := refKey(t.VirtualNodeRef.Namespace, t.VirtualNodeRef.Name, rb.ns)
		vn, why := rb.c.ix.node(nk, rb.mesh)
		if vn == nil {
			rb.failf(tf+".virtualNodeRef", "%s", why)
			continue
		}
		out = append(out, snapshot.WeightedCluster{Cluster: nk, Weight: int(t.Weight), Port: port(t.Port)})
		rb.refs = append(rb.refs, clusterRef{node: vn, key: nk, protocol: protocol, port: port(t.Port)})
	}
	return out
}

// mirror resolves a route's mirror to the cluster of its virtual node (a Canarymesh
// extension).
func (rb *routeBuild) mirror(f, protocol string, m *v1alpha1.RouteMirror) *snapshot.Mirror {
	if m == nil {
		return nil
	}
	if m.Percent < 1 || m.Percent > 100 {
		rb.failf(f+".percent", "%d is not 1 to 100", m.Percent)
		return nil
	}
	nk := refKey(m.VirtualNodeRef.Namespace, m.VirtualNodeRef.Name, rb.ns)
	vn, why := rb.c.ix.node(nk, rb.mesh)
	if vn == nil {
		rb.failf(f+".virtualNodeRef", "%s", why)
		return nil
	}
	rb.refs = append(rb.refs, clusterRef{node: vn, key: nk, protocol: protocol, port: port(m.Port)})
	return &snapshot.Mirror{Cluster: nk, Port: port(m.Port), Percent: int(m.Percent)}
}

// setCookies renders a target's response cookies as Set-Cookie values (RFC 6265). A
// negative maxAge is written as given: the client drops the cookie at once.
func setCookies(cs []v1alpha1.ResponseCookie) []string {
	if len(cs) == 0 {
		return nil
	}
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		var b strings.Builder
		b.WriteString(c.Name)
		b.WriteByte('=')
		b.WriteString(c.Value)
		if c.Path != "" {
			b.WriteString("; Path=" + c.Path)
		}
		if c.Domain != "" {
			b.WriteString("; Domain=" + c.Domain)
		}
		if c.MaxAge != 0 {
			b.WriteString("; Max-Age=" + strconv.FormatInt(c.MaxAge, 10))
		}
		if c.HTTPOnly {
			b.WriteString("; HttpOnly")
		}
		if c.Secure {
			b.WriteString("; Secure")
		}
		if c.SameSite != "" {
			b.WriteString("; SameSite=" + c.SameSite)
		}
		if c.Partitioned {
			b.WriteString("; Partitioned")
		}
		out = append(out, b.String())
	}
	return out
}

func (rb *routeBuild) pathMatch(f string, p *v1alpha1.HTTPPathMatch) *snapshot.StringMatch {
	if p == nil || (p.Exact == nil && p.Regex == nil) {
		return nil
	}
	rb.checkRegex(f+".regex", p.Regex)
	return &snapshot.StringMatch{Exact: deref(p.Exact), Regex: deref(p.Regex)}
}

func (rb *routeBuild) headers(f string, hs []v1alpha1.HTTPRouteHeader) []snapshot.HeaderMatch {
	var out []snapshot.HeaderMatch
	for i, h := range hs {
		hm := snapshot.HeaderMatch{Name: h.Name, Invert: h.Invert != nil && *h.Invert}
		if m := h.Match; m != nil {
			rb.checkRegex(fmt.Sprintf("%s[%d].match.regex", f, i), m.Regex)
			hm.Exact, hm.Prefix, hm.Suffix, hm.Regex = clone(m.Exact), clone(m.Prefix), clone(m.Suffix), clone(m.Regex)
			hm.Range = matchRange(m.Range)
		}
		out = append(out, hm)
	}
	return out
}

func (rb *routeBuild) metadata(f string, ms []v1alpha1.GRPCRouteMetadata) []snapshot.HeaderMatch {
	var out []snapshot.HeaderMatch
	for i, md := range ms {
		hm := snapshot.HeaderMatch{Name: md.Name, Invert: md.Invert != nil && *md.Invert}
		if m := md.Match; m != nil {
			rb.checkRegex(fmt.Sprintf("%s[%d].match.regex", f, i), m.Regex)
			hm.Exact, hm.Prefix, hm.Suffix, hm.Regex = clone(m.Exact), clone(m.Prefix), clone(m.Suffix), clone(m.Regex)
			hm.Range = matchRange(m.Range)
		}
		out = append(out, hm)
	}
	return out
}

// checkRegex fails the route on a regular expression that RE2 does not accept.
func (rb *routeBuild) checkRegex(f string, re *string) {
	if re == nil {
		return
	}
	if _, err := regexp.Compile(*re); err != nil {
		rb.failf(f, "%q is not a valid regular expression (RE2): %v", *re, err)
	}
}

func queryMatches(qs []v1alpha1.HTTPQueryParameters) []snapshot.QueryMatch {
	var out []snapshot.QueryMatch
	for _, q := range qs {
		qm := snapshot.QueryMatch{Name: q.Name}
		if q.Match != nil {
			qm.Exact = clone(q.Match.Exact)
		}
		out = append(out, qm)
	}
	return out
}

func matchRange(r *v1alpha1.MatchRange) *snapshot.MatchRange {
	if r == nil {
		return nil
	}
	return &snapshot.MatchRange{Start: r.Start, End: r.End}
}

func httpTimeout(t *v1alpha1.HTTPTimeout) *snapshot.Timeouts {
	if t == nil {
		return nil
	}
	return timeouts(t.PerRequest, t.Idle)
}

func timeouts(perRequest, idle *v1alpha1.Duration) *snapshot.Timeouts {
	if perRequest == nil && idle == nil {
		return nil
	}
	return &snapshot.Timeouts{PerRequest: duration(perRequest), Idle: duration(idle)}
}

// duration converts App Mesh's {unit, value}; a unit other than s counts milliseconds.
func duration(d *v1alpha1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	if d.Unit == v1alpha1.DurationUnitS {
		return time.Duration(d.Value) * time.Second
	}
	return time.Duration(d.Value) * time.Millisecond
}

func eventStrings[E ~string](es []E) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e))
	}
	return out
}

func port(p *v1alpha1.PortNumber) int {
	if p == nil {
		return 0
	}
	return int(*p)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func clone(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}
