package v1alpha1

import (
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MinAnalysisInterval is the shortest analysis interval accepted. Flagger silently raises
// anything below 10s; here a short interval is allowed for demos and tests, and one below
// this is refused rather than changed.
const MinAnalysisInterval = time.Second

var (
	canaryProviders = []string{ProviderCanarymesh, ProviderAppMesh, ProviderAppMeshV1beta2}
	// flaggerOnlyProviders are Flagger's other traffic providers: known names, each of
	// which needs a mesh or ingress this mesh replaces.
	flaggerOnlyProviders = []string{"apisix", "contour", "gatewayapi:v1", "gatewayapi:v1beta1", "gloo",
		"istio", "knative", "kubernetes", "kuma", "linkerd", "nginx", "osm", "skipper",
		"smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3", "traefik"}
	targetKinds     = []string{TargetKindDeployment, TargetKindDaemonSet, TargetKindService, TargetKindWorkload}
	autoscalerKinds = []string{"HorizontalPodAutoscaler", "ScaledObject"}
)

// Validate checks the Canary on its own; references to its target, templates and alert
// providers are resolved by the controller, not here.
func (c *Canary) Validate() ErrorList {
	errs := validateMeta(c, true)
	spec := field.NewPath("spec")
	s := &c.Spec

	if s.Provider != "" && !slices.Contains(canaryProviders, s.Provider) {
		if slices.Contains(flaggerOnlyProviders, s.Provider) {
			errs = append(errs, Invalid(spec.Child("provider"), "%q is a Flagger provider this mesh does not drive; expected one of %s",
				s.Provider, strings.Join(canaryProviders, ", ")))
		} else {
			checkOneOf(&errs, spec.Child("provider"), s.Provider, canaryProviders...)
		}
	}
	if s.MetricsServer != "" {
		checkWebURL(&errs, spec.Child("metricsServer"), s.MetricsServer)
	}
	validateTargetRef(&errs, spec.Child("targetRef"), &s.TargetRef)
	if r := s.AutoscalerRef; r != nil {
		validateAutoscalerRef(&errs, spec.Child("autoscalerRef"), r)
	}
	if r := s.IngressRef; r != nil && r.Name == "" {
		errs = append(errs, Required(spec.Child("ingressRef", "name")))
	}
	if r := s.RouteRef; r != nil && r.Name == "" {
		errs = append(errs, Required(spec.Child("routeRef", "name")))
	}
	if r := s.UpstreamRef; r != nil && r.Name == "" {
		errs = append(errs, Required(spec.Child("upstreamRef", "name")))
	}
	validateCanaryService(&errs, spec.Child("service"), &s.Service)
	if p := s.ProgressDeadlineSeconds; p != nil {
		checkRange(&errs, spec.Child("progressDeadlineSeconds"), int64(*p), 1, math.MaxInt32)
	}
	switch {
	case s.Analysis != nil && s.CanaryAnalysis != nil:
		errs = append(errs, Invalid(spec.Child("canaryAnalysis"), "is the older name of spec.analysis: set only one of them"))
	case s.Analysis != nil:
		validateAnalysis(&errs, spec.Child("analysis"), s.Analysis)
	case s.CanaryAnalysis != nil:
		validateAnalysis(&errs, spec.Child("canaryAnalysis"), s.CanaryAnalysis)
	default:
		errs = append(errs, Required(spec.Child("analysis")))
	}
	return errs
}

func validateTargetRef(errs *ErrorList, p *field.Path, r *LocalObjectReference) {
	if r.Name == "" {
		*errs = append(*errs, Required(p.Child("name")))
	} else if msg := isDNS1123Subdomain(r.Name); msg != "" {
		*errs = append(*errs, Invalid(p.Child("name"), "%q %s", r.Name, msg))
	}
	if r.Kind == "" {
		*errs = append(*errs, Required(p.Child("kind")))
	} else {
		checkOneOf(errs, p.Child("kind"), r.Kind, targetKinds...)
	}
}

func validateAutoscalerRef(errs *ErrorList, p *field.Path, r *AutoscalerReference) {
	if r.Name == "" {
		*errs = append(*errs, Required(p.Child("name")))
	}
	if r.Kind != "" {
		checkOneOf(errs, p.Child("kind"), r.Kind, autoscalerKinds...)
	}
	if rep := r.PrimaryScalerReplicas; rep != nil {
		rp := p.Child("primaryScalerReplicas")
		if rep.MinReplicas != nil {
			checkRange(errs, rp.Child("minReplicas"), int64(*rep.MinReplicas), 1, math.MaxInt32)
		}
		if rep.MaxReplicas != nil {
			checkRange(errs, rp.Child("maxReplicas"), int64(*rep.MaxReplicas), 1, math.MaxInt32)
		}
		if rep.MinReplicas != nil && rep.MaxReplicas != nil && *rep.MinReplicas > *rep.MaxReplicas {
			*errs = append(*errs, Invalid(rp.Child("minReplicas"), "%d is above maxReplicas %d", *rep.MinReplicas, *rep.MaxReplicas))
		}
	}
}

func validateCanaryService(errs *ErrorList, p *field.Path, s *CanaryService) {
	if s.Port == 0 {
		*errs = append(*errs, Required(p.Child("port")))
	} else {
		checkRange(errs, p.Child("port"), int64(s.Port), 1, 65535)
	}
	if tp := s.TargetPort; tp != nil {
		if tp.Type == intstr.Int {
			checkRange(errs, p.Child("targetPort"), int64(tp.IntVal), 1, 65535)
		} else if msgs := validation.IsValidPortName(tp.StrVal); len(msgs) > 0 {
			*errs = append(*errs, Invalid(p.Child("targetPort"), "%q %s", tp.StrVal, strings.Join(msgs, "; ")))
		}
	}
	if s.TrafficDistribution != "" {
		checkOneOf(errs, p.Child("trafficDistribution"), s.TrafficDistribution, "PreferClose", "PreferSameZone", "PreferSameNode")
	}
	checkGoDuration(errs, p.Child("timeout"), s.Timeout)
	checkGoDuration(errs, p.Child("backendTimeout"), s.BackendTimeout)
	if r := s.Retries; r != nil {
		checkRange(errs, p.Child("retries", "attempts"), int64(r.Attempts), 0, math.MaxInt32)
		checkGoDuration(errs, p.Child("retries", "perTryTimeout"), r.PerTryTimeout)
	}
	for i := range s.Match {
		validateHTTPMatch(errs, p.Child("match").Index(i), &s.Match[i], false)
	}
	if cp := s.CorsPolicy; cp != nil {
		checkGoDuration(errs, p.Child("corsPolicy", "maxAge"), cp.MaxAge)
		for i := range cp.AllowOrigins {
			validateStringMatch(errs, p.Child("corsPolicy", "allowOrigins").Index(i), &cp.AllowOrigins[i], true)
		}
	}
	for i, g := range s.GatewayRefs {
		gp := p.Child("gatewayRefs").Index(i)
		if g.Name == "" {
			*errs = append(*errs, Required(gp.Child("name")))
		}
		if g.Port != nil {
			checkRange(errs, gp.Child("port"), int64(*g.Port), 1, 65535)
		}
	}
	for i, m := range s.Mirror {
		bp := p.Child("mirror").Index(i).Child("backendRef")
		if m.BackendRef.Name == "" {
			*errs = append(*errs, Required(bp.Child("name")))
		}
		if m.BackendRef.Port != nil {
			checkRange(errs, bp.Child("port"), int64(*m.BackendRef.Port), 1, 65535)
		}
	}
}

// validateHTTPMatch checks one match request. In A/B testing (strict) a match must say
// something and each string match must use exactly one way of matching; elsewhere an
// empty string match means "present", as in Istio.
func validateHTTPMatch(errs *ErrorList, p *field.Path, m *HTTPMatchRequest, strict bool) {
	if strict && m.URI == nil && m.Scheme == nil && m.Method == nil && m.Authority == nil &&
		len(m.Headers) == 0 && len(m.QueryParams) == 0 && len(m.WithoutHeaders) == 0 &&
		len(m.SourceLabels) == 0 && m.SourceNamespace == "" && m.Port == 0 && len(m.Gateways) == 0 {
		*errs = append(*errs, Invalid(p, "matches every request: set headers, queryParams, uri or another condition"))
		return
	}
	for _, f := range []struct {
		name string
		m    *StringMatch
	}{{"uri", m.URI}, {"scheme", m.Scheme}, {"method", m.Method}, {"authority", m.Authority}} {
		if f.m != nil {
			validateStringMatch(errs, p.Child(f.name), f.m, strict)
		}
	}
	for _, group := range []struct {
		name string
		m    map[string]StringMatch
	}{{"headers", m.Headers}, {"queryParams", m.QueryParams}, {"withoutHeaders", m.WithoutHeaders}} {
		for _, k := range slices.Sorted(maps.Keys(group.m)) {
			sm := group.m[k]
			validateStringMatch(errs, p.Child(group.name).Key(k), &sm, strict)
		}
	}
}

// validateStringMatch checks that at most one (exactly one when strict) of exact,
// prefix, suffix and regex is set and that a regex compiles as RE2.
func validateStringMatch(errs *ErrorList, p *field.Path, m *StringMatch, strict bool) {
	var set []string
	for _, f := range []struct{ name, v string }{{"exact", m.Exact}, {"prefix", m.Prefix}, {"suffix", m.Suffix}, {"regex", m.Regex}} {
		if f.v != "" {
			set = append(set, f.name)
		}
	}
	switch {
	case len(set) > 1:
		*errs = append(*errs, Invalid(p, "sets %s: set exactly one of exact, prefix, suffix, regex", strings.Join(set, " and ")))
	case len(set) == 0 && strict:
		*errs = append(*errs, Invalid(p, "sets nothing: set exactly one of exact, prefix, suffix, regex"))
	}
	if m.Regex != "" {
		if _, err := regexp.Compile(m.Regex); err != nil {
			*errs = append(*errs, Invalid(p.Child("regex"), "%q does not compile: %v", m.Regex, err))
		}
	}
}

func validateAnalysis(errs *ErrorList, p *field.Path, a *CanaryAnalysis) {
	if d, ok := checkGoDuration(errs, p.Child("interval"), a.Interval); ok && a.Interval != "" && d < MinAnalysisInterval {
		*errs = append(*errs, Invalid(p.Child("interval"), "%s is below %s", d, MinAnalysisInterval))
	}
	checkRange(errs, p.Child("iterations"), int64(a.Iterations), 0, math.MaxInt32)
	checkRange(errs, p.Child("threshold"), int64(a.Threshold), 0, math.MaxInt32)
	checkRange(errs, p.Child("maxWeight"), int64(a.MaxWeight), 0, 100)
	checkRange(errs, p.Child("stepWeight"), int64(a.StepWeight), 0, 100)
	checkRange(errs, p.Child("stepWeightPromotion"), int64(a.StepWeightPromotion), 0, 100)
	checkRange(errs, p.Child("mirrorWeight"), int64(a.MirrorWeight), 0, 100)
	for i, w := range a.StepWeights {
		wp := p.Child("stepWeights").Index(i)
		checkRange(errs, wp, int64(w), 0, 100)
		if i > 0 && w <= a.StepWeights[i-1] {
			*errs = append(*errs, Invalid(wp, "%d is not above the previous step %d: steps must increase", w, a.StepWeights[i-1]))
		}
	}
	if a.PrimaryReadyThreshold != nil {
		checkRange(errs, p.Child("primaryReadyThreshold"), int64(*a.PrimaryReadyThreshold), 0, 100)
	}
	if a.CanaryReadyThreshold != nil {
		checkRange(errs, p.Child("canaryReadyThreshold"), int64(*a.CanaryReadyThreshold), 0, 100)
	}
	validateStrategy(errs, p, a)
	if a.NoData != "" {
		checkOneOf(errs, p.Child("noData"), string(a.NoData), string(NoDataFail), string(NoDataSkip), string(NoDataWait))
	}
	for i := range a.Match {
		validateHTTPMatch(errs, p.Child("match").Index(i), &a.Match[i], true)
	}
	if sa := a.SessionAffinity; sa != nil {
		sp := p.Child("sessionAffinity")
		if sa.CookieName == "" {
			*errs = append(*errs, Required(sp.Child("cookieName")))
		}
		checkRange(errs, sp.Child("maxAge"), int64(sa.MaxAge), 0, math.MaxInt32)
		if sa.SameSite != "" {
			checkOneOf(errs, sp.Child("sameSite"), sa.SameSite, "Strict", "Lax", "None")
		}
	}
	validateMetrics(errs, p.Child("metrics"), a.Metrics)
	validateWebhooks(errs, p.Child("webhooks"), a.Webhooks)
	validateAlerts(errs, p.Child("alerts"), a.Alerts)
}

// validateStrategy checks that the fields select exactly one strategy (as Flagger's
// schema does) and that mirroring and session affinity fit it.
func validateStrategy(errs *ErrorList, p *field.Path, a *CanaryAnalysis) {
	var set []string
	if a.StepWeight > 0 {
		set = append(set, "stepWeight")
	}
	if len(a.StepWeights) > 0 {
		set = append(set, "stepWeights")
	}
	if a.Iterations > 0 {
		set = append(set, "iterations")
	}
	switch {
	case len(set) == 0:
		*errs = append(*errs, Invalid(p, "selects no strategy: set stepWeight or stepWeights (canary release) or iterations (A/B testing, blue/green)"))
	case len(set) > 1:
		*errs = append(*errs, Invalid(p, "sets %s: set only one of stepWeight, stepWeights, iterations", strings.Join(set, " and ")))
	}
	strategy := a.Strategy()
	if a.Mirror && strategy == StrategyABTesting {
		*errs = append(*errs, Invalid(p.Child("mirror"), "mirroring is for a canary release (stepWeight, stepWeights) or blue/green (iterations without match), not A/B testing"))
	}
	if a.MirrorWeight > 0 && !a.Mirror {
		*errs = append(*errs, Invalid(p.Child("mirrorWeight"), "%d has no effect without mirror: true", a.MirrorWeight))
	}
	if a.SessionAffinity != nil && len(set) > 0 && strategy != StrategyCanary {
		*errs = append(*errs, Invalid(p.Child("sessionAffinity"), "needs a canary release: set stepWeight or stepWeights"))
	}
}

func validateMetrics(errs *ErrorList, p *field.Path, metrics []CanaryMetric) {
	seen := map[string]int{}
	for i := range metrics {
		m := &metrics[i]
		mp := p.Index(i)
		switch {
		case m.Name == "":
			*errs = append(*errs, Required(mp.Child("name")))
		case seenBefore(seen, m.Name, i):
			*errs = append(*errs, Invalid(mp.Child("name"), "%q is also the name of %s", m.Name, p.Index(seen[m.Name])))
		}
		switch {
		case m.TemplateRef != nil && m.Query != "":
			*errs = append(*errs, Invalid(mp.Child("query"), "set templateRef or query, not both"))
		case m.TemplateRef != nil:
			if m.TemplateRef.Name == "" {
				*errs = append(*errs, Required(mp.Child("templateRef", "name")))
			}
		case m.Query == "" && m.Name != "" && m.Name != MetricRequestSuccessRate && m.Name != MetricRequestDuration:
			*errs = append(*errs, Invalid(mp.Child("name"), "%q is not a built-in metric (%s, %s): set templateRef or query",
				m.Name, MetricRequestSuccessRate, MetricRequestDuration))
		}
		if d, ok := checkGoDuration(errs, mp.Child("interval"), m.Interval); ok && m.Interval != "" && d == 0 {
			*errs = append(*errs, Invalid(mp.Child("interval"), "must be above 0"))
		}
		switch r := m.ThresholdRange; {
		case r == nil && m.Threshold == 0:
			*errs = append(*errs, Invalid(mp.Child("thresholdRange"), "is required: a check needs a min, a max or both"))
		case r == nil:
		case r.Min == nil && r.Max == nil:
			*errs = append(*errs, Invalid(mp.Child("thresholdRange"), "sets neither min nor max"))
		case r.Min != nil && r.Max != nil && *r.Min > *r.Max:
			*errs = append(*errs, Invalid(mp.Child("thresholdRange"), "min %g is above max %g", *r.Min, *r.Max))
		}
	}
}

func validateWebhooks(errs *ErrorList, p *field.Path, hooks []CanaryWebhook) {
	seen := map[string]int{}
	allowed := make([]string, len(WebhookTypes))
	for i, t := range WebhookTypes {
		allowed[i] = string(t)
	}
	for i := range hooks {
		w := &hooks[i]
		wp := p.Index(i)
		switch {
		case w.Name == "":
			*errs = append(*errs, Required(wp.Child("name")))
		case seenBefore(seen, w.Name, i):
			*errs = append(*errs, Invalid(wp.Child("name"), "%q is also the name of %s", w.Name, p.Index(seen[w.Name])))
		}
		if w.Type != "" {
			checkOneOf(errs, wp.Child("type"), string(w.Type), allowed...)
		}
		if w.URL == "" {
			*errs = append(*errs, Required(wp.Child("url")))
		} else {
			checkWebURL(errs, wp.Child("url"), w.URL)
		}
		if d, ok := checkGoDuration(errs, wp.Child("timeout"), w.Timeout); ok && w.Timeout != "" && d == 0 {
			*errs = append(*errs, Invalid(wp.Child("timeout"), "must be above 0"))
		}
		checkRange(errs, wp.Child("retries"), int64(w.Retries), 0, math.MaxInt32)
	}
}

func validateAlerts(errs *ErrorList, p *field.Path, alerts []CanaryAlert) {
	for i, a := range alerts {
		ap := p.Index(i)
		if a.Name == "" {
			*errs = append(*errs, Required(ap.Child("name")))
		}
		if a.Severity != "" {
			checkOneOf(errs, ap.Child("severity"), string(a.Severity),
				string(AlertSeverityInfo), string(AlertSeverityWarn), string(AlertSeverityError))
		}
		if a.ProviderRef.Name == "" {
			*errs = append(*errs, Required(ap.Child("providerRef", "name")))
		}
	}
}

// checkGoDuration appends an error unless s is empty or a non-negative Go duration, and
// returns the parsed duration.
func checkGoDuration(errs *ErrorList, p *field.Path, s string) (time.Duration, bool) {
	if s == "" {
		return 0, true
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		*errs = append(*errs, Invalid(p, "%q is not a duration such as 30s, 1m or 1h30m", s))
		return 0, false
	case d < 0:
		*errs = append(*errs, Invalid(p, "%q is negative", s))
		return 0, false
	}
	return d, true
}

// checkWebURL appends an error unless s is an absolute http or https URL with a host.
func checkWebURL(errs *ErrorList, p *field.Path, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		*errs = append(*errs, Invalid(p, "%q is not an absolute http or https URL", s))
	}
}

// seenBefore records name at index i and reports whether an earlier index had it.
func seenBefore(seen map[string]int, name string, i int) bool {
	if _, ok := seen[name]; ok {
		return true
	}
	seen[name] = i
	return false
}
