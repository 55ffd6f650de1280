package v1alpha1

import (
	"math"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// VirtualRouter limits (App Mesh).
const (
	maxVirtualRouterListeners = 1
	maxWeightedTargets        = 10
	maxWeight                 = 100
	maxRouteNameLen           = 255
)

// Validate checks the VirtualRouter on its own; the virtual nodes its routes name need not
// exist.
func (vr *VirtualRouter) Validate() ErrorList {
	errs := validateMeta(vr, true)
	spec := field.NewPath("spec")
	checkAWSName(&errs, spec.Child("awsName"), vr.Spec.AWSName)
	lp := spec.Child("listeners")
	checkCount(&errs, lp, len(vr.Spec.Listeners), 0, maxVirtualRouterListeners)
	for i := range vr.Spec.Listeners {
		vr.Spec.Listeners[i].PortMapping.validate(&errs, lp.Index(i).Child("portMapping"), portProtocols)
	}
	names := map[string]int{}
	for i := range vr.Spec.Routes {
		r := &vr.Spec.Routes[i]
		rp := spec.Child("routes").Index(i)
		r.validate(&errs, rp)
		if j, dup := names[r.Name]; dup && r.Name != "" {
			errs = append(errs, Invalid(rp.Child("name"), "%q is also the name of spec.routes[%d]", r.Name, j))
		} else {
			names[r.Name] = i
		}
	}
	return errs
}

func (r *Route) validate(errs *ErrorList, p *field.Path) {
	checkRequiredString(errs, p.Child("name"), r.Name, maxRouteNameLen)
	checkExactlyOne(errs, p, []string{"grpcRoute", "httpRoute", "http2Route", "tcpRoute"},
		r.GRPCRoute != nil, r.HTTPRoute != nil, r.HTTP2Route != nil, r.TCPRoute != nil)
	checkPriority(errs, p.Child("priority"), r.Priority)
	r.HTTPRoute.validate(errs, p.Child("httpRoute"))
	r.HTTP2Route.validate(errs, p.Child("http2Route"))
	r.GRPCRoute.validate(errs, p.Child("grpcRoute"))
	r.TCPRoute.validate(errs, p.Child("tcpRoute"))
}

func (r *HTTPRoute) validate(errs *ErrorList, p *field.Path) {
	if r == nil {
		return
	}
	m, mp := &r.Match, p.Child("match")
	checkExactlyOne(errs, mp, []string{"prefix", "path"}, m.Prefix != nil, m.Path != nil)
	checkPathPrefix(errs, mp.Child("prefix"), m.Prefix)
	m.Path.validate(errs, mp.Child("path"))
	validateHeaderMatches(errs, mp.Child("headers"), m.Headers)
	validateQueryMatches(errs, mp.Child("queryParameters"), m.QueryParameters)
	checkMethod(errs, mp.Child("method"), m.Method)
	if m.Scheme != nil {
		checkOneOf(errs, mp.Child("scheme"), *m.Scheme, "http", "https")
	}
	checkOptionalPort(errs, mp.Child("port"), m.Port)
	validateWeightedTargets(errs, p.Child("action", "weightedTargets"), r.Action.WeightedTargets)
	validateResponseCookies(errs, p.Child("action", "weightedTargets"), r.Action.WeightedTargets)
	r.Action.Mirror.validate(errs, p.Child("action", "mirror"))
	if rp := r.RetryPolicy; rp != nil {
		pp := p.Child("retryPolicy")
		checkAnyRetryEvents(errs, pp, []string{"httpRetryEvents", "tcpRetryEvents"}, len(rp.HTTPRetryEvents), len(rp.TCPRetryEvents))
		checkRetryEvents(errs, pp.Child("httpRetryEvents"), rp.HTTPRetryEvents, maxHTTPRetryEvents, httpRetryEvents)
		checkRetryEvents(errs, pp.Child("tcpRetryEvents"), rp.TCPRetryEvents, maxTCPRetryEvents, tcpRetryEvents)
		checkRetryBudget(errs, pp, rp.MaxRetries, &rp.PerRetryTimeout)
	}
	r.Timeout.validate(errs, p.Child("timeout"))
}

func (r *GRPCRoute) validate(errs *ErrorList, p *field.Path) {
	if r == nil {
		return
	}
	m, mp := &r.Match, p.Child("match")
	checkOptionalString(errs, mp.Child("methodName"), m.MethodName, maxMatchNameLen)
	checkNonEmpty(errs, mp.Child("serviceName"), m.ServiceName)
	if m.MethodName != nil && m.ServiceName == nil {
		*errs = append(*errs, Invalid(mp.Child("serviceName"), "is required when methodName is set"))
	}
	validateMetadataMatches(errs, mp.Child("metadata"), m.Metadata)
	checkOptionalPort(errs, mp.Child("port"), m.Port)
	validateWeightedTargets(errs, p.Child("action", "weightedTargets"), r.Action.WeightedTargets)
	validateNoHTTPExtensions(errs, p.Child("action", "weightedTargets"), r.Action.WeightedTargets)
	if rp := r.RetryPolicy; rp != nil {
		pp := p.Child("retryPolicy")
		checkAnyRetryEvents(errs, pp, []string{"grpcRetryEvents", "httpRetryEvents", "tcpRetryEvents"},
			len(rp.GRPCRetryEvents), len(rp.HTTPRetryEvents), len(rp.TCPRetryEvents))
		checkRetryEvents(errs, pp.Child("grpcRetryEvents"), rp.GRPCRetryEvents, maxGRPCRetryEvents, grpcRetryEvents)
		checkRetryEvents(errs, pp.Child("httpRetryEvents"), rp.HTTPRetryEvents, maxHTTPRetryEvents, httpRetryEvents)
		checkRetryEvents(errs, pp.Child("tcpRetryEvents"), rp.TCPRetryEvents, maxTCPRetryEvents, tcpRetryEvents)
		checkRetryBudget(errs, pp, rp.MaxRetries, &rp.PerRetryTimeout)
	}
	r.Timeout.validate(errs, p.Child("timeout"))
}

func (r *TCPRoute) validate(errs *ErrorList, p *field.Path) {
	if r == nil {
		return
	}
	if r.Match != nil {
		checkOptionalPort(errs, p.Child("match", "port"), r.Match.Port)
	}
	validateWeightedTargets(errs, p.Child("action", "weightedTargets"), r.Action.WeightedTargets)
	validateNoHTTPExtensions(errs, p.Child("action", "weightedTargets"), r.Action.WeightedTargets)
	r.Timeout.validate(errs, p.Child("timeout"))
}

// validateWeightedTargets checks 1 to 10 targets, each naming one virtual node with a
// weight of 0 to 100.
func validateWeightedTargets(errs *ErrorList, p *field.Path, targets []WeightedTarget) {
	checkCount(errs, p, len(targets), 1, maxWeightedTargets)
	for i, t := range targets {
		tp := p.Index(i)
		checkExactlyOne(errs, tp, []string{"virtualNodeRef", "virtualNodeARN"}, t.VirtualNodeRef != nil, t.VirtualNodeARN != nil)
		if t.VirtualNodeRef != nil {
			checkRefName(errs, tp.Child("virtualNodeRef"), t.VirtualNodeRef.Name)
		}
		checkNonEmpty(errs, tp.Child("virtualNodeARN"), t.VirtualNodeARN)
		checkRange(errs, tp.Child("weight"), t.Weight, 0, maxWeight)
		checkOptionalPort(errs, tp.Child("port"), t.Port)
	}
}

// validateResponseCookies checks the cookies of an HTTP route's targets. Other routes
// refuse them in validateNoHTTPExtensions.
func validateResponseCookies(errs *ErrorList, p *field.Path, targets []WeightedTarget) {
	for i, t := range targets {
		cp := p.Index(i).Child("responseCookies")
		checkCount(errs, cp, len(t.ResponseCookies), 0, maxResponseCookies)
		seen := map[string]bool{}
		for j := range t.ResponseCookies {
			c := &t.ResponseCookies[j]
			c.validate(errs, cp.Index(j))
			if seen[c.Name] {
				*errs = append(*errs, Invalid(cp.Index(j).Child("name"), "%q is set twice on the same target", c.Name))
			}
			seen[c.Name] = true
		}
	}
}

// maxResponseCookies bounds the cookies of one target.
const maxResponseCookies = 4

func (c *ResponseCookie) validate(errs *ErrorList, p *field.Path) {
	switch {
	case c.Name == "":
		*errs = append(*errs, Required(p.Child("name")))
	case !isCookieToken(c.Name):
		*errs = append(*errs, Invalid(p.Child("name"), "%q is not a cookie name (an HTTP token)", c.Name))
	}
	if !isCookieValue(c.Value) {
		*errs = append(*errs, Invalid(p.Child("value"), "%q has characters a cookie value cannot carry (quote, semicolon, comma, backslash, space or control)", c.Value))
	}
	if c.SameSite != "" {
		checkOneOf(errs, p.Child("sameSite"), c.SameSite, "Strict", "Lax", "None")
	}
	for _, a := range []struct{ name, v string }{{"path", c.Path}, {"domain", c.Domain}} {
		if strings.ContainsAny(a.v, ";\r\n") || !isCookieValueLoose(a.v) {
			*errs = append(*errs, Invalid(p.Child(a.name), "%q cannot be a cookie attribute (no semicolons or control characters)", a.v))
		}
	}
}

func (m *RouteMirror) validate(errs *ErrorList, p *field.Path) {
	if m == nil {
		return
	}
	checkRefName(errs, p.Child("virtualNodeRef"), m.VirtualNodeRef.Name)
	checkOptionalPort(errs, p.Child("port"), m.Port)
	checkRange(errs, p.Child("percent"), m.Percent, 1, 100)
}

// validateNoHTTPExtensions refuses the HTTP-only extensions on gRPC and TCP routes.
func validateNoHTTPExtensions(errs *ErrorList, p *field.Path, targets []WeightedTarget) {
	for i, t := range targets {
		if len(t.ResponseCookies) > 0 {
			*errs = append(*errs, Invalid(p.Index(i).Child("responseCookies"), "cookies can be set on httpRoute and http2Route targets only"))
		}
	}
}

// isCookieToken reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func isCookieToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// isCookieValue reports whether s is a cookie-octet string (RFC 6265 section 4.1.1).
func isCookieValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}

// isCookieValueLoose reports whether s has no control characters.
func isCookieValueLoose(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// checkAnyRetryEvents wants at least one retry event of some kind, as App Mesh does: a
// policy that retries nothing is a mistake.
func checkAnyRetryEvents(errs *ErrorList, p *field.Path, names []string, counts ...int) {
	for _, n := range counts {
		if n > 0 {
			return
		}
	}
	*errs = append(*errs, Invalid(p, "at least one of %s is required", strings.Join(names, ", ")))
}

// checkRetryEvents checks a list of up to max events, each from allowed and listed once.
func checkRetryEvents[E ~string](errs *ErrorList, p *field.Path, events []E, max int, allowed []string) {
	if events == nil {
		return
	}
	checkCount(errs, p, len(events), 1, max)
	seen := map[E]bool{}
	for i, e := range events {
		checkOneOf(errs, p.Index(i), string(e), allowed...)
		if seen[e] {
			*errs = append(*errs, Invalid(p.Index(i), "%q is listed twice", string(e)))
		}
		seen[e] = true
	}
}

func checkRetryBudget(errs *ErrorList, p *field.Path, maxRetries int64, perRetry *Duration) {
	checkRange(errs, p.Child("maxRetries"), maxRetries, 0, math.MaxInt64)
	perRetry.validateRequired(errs, p.Child("perRetryTimeout"))
}
