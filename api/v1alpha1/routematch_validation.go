package v1alpha1

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation of request matching shared by VirtualRouter routes and GatewayRoutes. Regular
// expressions are compiled with Go's regexp package (RE2 syntax), the engine the proxy
// matches with.

// validateValueMatch checks a header or metadata match method: exactly one of its kinds,
// each value 1 to 255 characters, a regex that compiles, a range whose end is above its
// start.
func validateValueMatch(errs *ErrorList, p *field.Path, exact, prefix, regex, suffix *string, rng *MatchRange) {
	checkExactlyOne(errs, p, []string{"exact", "prefix", "range", "regex", "suffix"},
		exact != nil, prefix != nil, rng != nil, regex != nil, suffix != nil)
	checkOptionalString(errs, p.Child("exact"), exact, maxMatchValueLen)
	checkOptionalString(errs, p.Child("prefix"), prefix, maxMatchValueLen)
	checkOptionalString(errs, p.Child("suffix"), suffix, maxMatchValueLen)
	checkOptionalString(errs, p.Child("regex"), regex, maxMatchValueLen)
	if regex != nil && *regex != "" {
		checkRegexp(errs, p.Child("regex"), *regex)
	}
	if rng != nil && rng.End <= rng.Start {
		*errs = append(*errs, Invalid(p.Child("range", "end"), "%d is not above start %d", rng.End, rng.Start))
	}
}

// validateHeaderMatches checks 1 to 10 header matches.
func validateHeaderMatches(errs *ErrorList, p *field.Path, headers []HTTPRouteHeader) {
	if headers == nil {
		return
	}
	checkCount(errs, p, len(headers), 1, maxHeaderMatches)
	for i, h := range headers {
		hp := p.Index(i)
		checkRequiredString(errs, hp.Child("name"), h.Name, maxMatchNameLen)
		if m := h.Match; m != nil {
			validateValueMatch(errs, hp.Child("match"), m.Exact, m.Prefix, m.Regex, m.Suffix, m.Range)
		}
	}
}

// validateMetadataMatches checks 1 to 10 gRPC metadata matches.
func validateMetadataMatches(errs *ErrorList, p *field.Path, metadata []GRPCRouteMetadata) {
	if metadata == nil {
		return
	}
	checkCount(errs, p, len(metadata), 1, maxMetadataMatches)
	for i, md := range metadata {
		mp := p.Index(i)
		checkRequiredString(errs, mp.Child("name"), md.Name, maxMatchNameLen)
		if m := md.Match; m != nil {
			validateValueMatch(errs, mp.Child("match"), m.Exact, m.Prefix, m.Regex, m.Suffix, m.Range)
		}
	}
}

// validateQueryMatches checks 1 to 10 query parameter matches; a match block, when given,
// carries its exact value.
func validateQueryMatches(errs *ErrorList, p *field.Path, params []HTTPQueryParameters) {
	if params == nil {
		return
	}
	checkCount(errs, p, len(params), 1, maxQueryMatches)
	for i, q := range params {
		qp := p.Index(i)
		if q.Name == "" {
			*errs = append(*errs, Required(qp.Child("name")))
		}
		if q.Match != nil && q.Match.Exact == nil {
			*errs = append(*errs, Required(qp.Child("match", "exact")))
		}
	}
}

func (m *HTTPPathMatch) validate(errs *ErrorList, p *field.Path) {
	if m == nil {
		return
	}
	checkExactlyOne(errs, p, []string{"exact", "regex"}, m.Exact != nil, m.Regex != nil)
	checkOptionalString(errs, p.Child("exact"), m.Exact, maxMatchValueLen)
	checkOptionalString(errs, p.Child("regex"), m.Regex, maxMatchValueLen)
	if m.Regex != nil && *m.Regex != "" {
		checkRegexp(errs, p.Child("regex"), *m.Regex)
	}
}

// checkPathPrefix wants a prefix that starts with "/", as App Mesh documents; "/" alone
// matches every path.
func checkPathPrefix(errs *ErrorList, p *field.Path, prefix *string) {
	if prefix != nil && !strings.HasPrefix(*prefix, "/") {
		*errs = append(*errs, Invalid(p, "%q does not start with \"/\"", *prefix))
	}
}

func checkMethod(errs *ErrorList, p *field.Path, method *string) {
	if method != nil {
		checkOneOf(errs, p, *method, httpMethods...)
	}
}
