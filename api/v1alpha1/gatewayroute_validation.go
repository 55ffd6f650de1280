package v1alpha1

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxHostnameLen is the longest host name a gateway route matches (DNS's limit).
const maxHostnameLen = 253

// Validate checks the GatewayRoute on its own; the virtual services it targets and the
// gateway it attaches to need not exist.
func (gr *GatewayRoute) Validate() ErrorList {
	errs := validateMeta(gr, true)
	spec := field.NewPath("spec")
	s := &gr.Spec
	checkAWSName(&errs, spec.Child("awsName"), s.AWSName)
	checkPriority(&errs, spec.Child("priority"), s.Priority)
	checkExactlyOne(&errs, spec, []string{"grpcRoute", "httpRoute", "http2Route"},
		s.GRPCRoute != nil, s.HTTPRoute != nil, s.HTTP2Route != nil)
	s.GRPCRoute.validate(&errs, spec.Child("grpcRoute"))
	s.HTTPRoute.validate(&errs, spec.Child("httpRoute"))
	s.HTTP2Route.validate(&errs, spec.Child("http2Route"))
	return errs
}

func (r *HTTPGatewayRoute) validate(errs *ErrorList, p *field.Path) {
	if r == nil {
		return
	}
	m, mp := &r.Match, p.Child("match")
	if m.Prefix == nil && m.Path == nil && m.Hostname == nil {
		*errs = append(*errs, Invalid(mp, "at least one of prefix, path, hostname is required"))
	}
	checkAtMostOne(errs, mp, []string{"prefix", "path"}, m.Prefix != nil, m.Path != nil)
	checkPathPrefix(errs, mp.Child("prefix"), m.Prefix)
	m.Path.validate(errs, mp.Child("path"))
	m.Hostname.validate(errs, mp.Child("hostname"))
	validateHeaderMatches(errs, mp.Child("headers"), m.Headers)
	validateQueryMatches(errs, mp.Child("queryParameters"), m.QueryParameters)
	checkMethod(errs, mp.Child("method"), m.Method)
	checkOptionalPort(errs, mp.Child("port"), m.Port)
	ap := p.Child("action")
	r.Action.Target.validate(errs, ap.Child("target"))
	r.Action.Rewrite.validate(errs, ap.Child("rewrite"))
}

func (r *GRPCGatewayRoute) validate(errs *ErrorList, p *field.Path) {
	if r == nil {
		return
	}
	m, mp := &r.Match, p.Child("match")
	if m.ServiceName == nil && m.Hostname == nil {
		*errs = append(*errs, Invalid(mp, "at least one of serviceName, hostname is required"))
	}
	checkNonEmpty(errs, mp.Child("serviceName"), m.ServiceName)
	m.Hostname.validate(errs, mp.Child("hostname"))
	validateMetadataMatches(errs, mp.Child("metadata"), m.Metadata)
	checkOptionalPort(errs, mp.Child("port"), m.Port)
	ap := p.Child("action")
	r.Action.Target.validate(errs, ap.Child("target"))
	if rw := r.Action.Rewrite; rw != nil {
		rw.Hostname.validate(errs, ap.Child("rewrite", "hostname"))
	}
}

func (h *GatewayRouteHostnameMatch) validate(errs *ErrorList, p *field.Path) {
	if h == nil {
		return
	}
	checkExactlyOne(errs, p, []string{"exact", "suffix"}, h.Exact != nil, h.Suffix != nil)
	checkOptionalString(errs, p.Child("exact"), h.Exact, maxHostnameLen)
	checkOptionalString(errs, p.Child("suffix"), h.Suffix, maxHostnameLen)
}

func (t *GatewayRouteTarget) validate(errs *ErrorList, p *field.Path) {
	vp := p.Child("virtualService")
	vs := &t.VirtualService
	checkExactlyOne(errs, vp, []string{"virtualServiceRef", "virtualServiceARN"}, vs.VirtualServiceRef != nil, vs.VirtualServiceARN != nil)
	if vs.VirtualServiceRef != nil {
		checkRefName(errs, vp.Child("virtualServiceRef"), vs.VirtualServiceRef.Name)
	}
	checkNonEmpty(errs, vp.Child("virtualServiceARN"), vs.VirtualServiceARN)
	checkOptionalPort(errs, p.Child("port"), t.Port)
}

func (h *GatewayRouteHostnameRewrite) validate(errs *ErrorList, p *field.Path) {
	if h != nil && h.DefaultTargetHostname != nil {
		checkOneOf(errs, p.Child("defaultTargetHostname"), *h.DefaultTargetHostname, RewriteEnabled, RewriteDisabled)
	}
}

func (rw *HTTPGatewayRouteRewrite) validate(errs *ErrorList, p *field.Path) {
	if rw == nil {
		return
	}
	if rw.Prefix == nil && rw.Path == nil && rw.Hostname == nil {
		*errs = append(*errs, Invalid(p, "at least one of prefix, path, hostname is required"))
	}
	checkAtMostOne(errs, p, []string{"prefix", "path"}, rw.Prefix != nil, rw.Path != nil)
	if px := rw.Prefix; px != nil {
		pp := p.Child("prefix")
		checkAtMostOne(errs, pp, []string{"defaultPrefix", "value"}, px.DefaultPrefix != nil, px.Value != nil)
		if px.DefaultPrefix != nil {
			checkOneOf(errs, pp.Child("defaultPrefix"), *px.DefaultPrefix, RewriteEnabled, RewriteDisabled)
		}
		checkOptionalString(errs, pp.Child("value"), px.Value, maxMatchValueLen)
		if v := px.Value; v != nil && *v != "" && (!strings.HasPrefix(*v, "/") || !strings.HasSuffix(*v, "/")) {
			*errs = append(*errs, Invalid(pp.Child("value"), "%q does not start and end with \"/\"", *v))
		}
	}
	if pa := rw.Path; pa != nil {
		if pa.Exact == nil {
			*errs = append(*errs, Required(p.Child("path", "exact")))
		}
		checkOptionalString(errs, p.Child("path", "exact"), pa.Exact, maxMatchValueLen)
	}
	rw.Hostname.validate(errs, p.Child("hostname"))
}
