package v1alpha1

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// validationRule is one row of a validation table: a mutation of a valid baseline
// object and the error it must cause.
type validationRule[T any] struct {
	name   string
	mutate func(T)
	field  string
	msg    string
}

// runValidationRules checks that the baseline is valid and that each mutation of it
// yields an error at the expected field with the expected text.
func runValidationRules[T interface{ Validate() ErrorList }](t *testing.T, baseline func() T, rules []validationRule[T]) {
	t.Helper()
	if errs := baseline().Validate(); len(errs) > 0 {
		t.Fatalf("baseline is invalid: %v", errs)
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			obj := baseline()
			r.mutate(obj)
			errs := obj.Validate()
			for _, e := range errs {
				if e.Field == r.field && strings.Contains(e.Detail, r.msg) {
					return
				}
			}
			t.Errorf("want an error at %s containing %q, got %v", r.field, r.msg, errs)
		})
	}
}

func ptrOf[T any](v T) *T { return &v }

// validCanary is a canary release of a Workload with every list of the analysis used.
func validCanary() *Canary {
	return &Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "demo"},
		Spec: CanarySpec{
			Provider:  ProviderCanarymesh,
			TargetRef: LocalObjectReference{APIVersion: APIVersion, Kind: TargetKindWorkload, Name: "podinfo"},
			Service: CanaryService{
				Port:    9898,
				Retries: &HTTPRetry{Attempts: 3, PerTryTimeout: "1s", RetryOn: "gateway-error"},
			},
			Analysis: &CanaryAnalysis{
				Interval:   "10s",
				Threshold:  5,
				MaxWeight:  50,
				StepWeight: 10,
				Metrics: []CanaryMetric{
					{Name: MetricRequestSuccessRate, Interval: "1m", ThresholdRange: &CanaryThresholdRange{Min: ptrOf(99.0)}},
					{Name: "error-budget", TemplateRef: &CrossNamespaceObjectReference{Name: "budget"},
						ThresholdRange: &CanaryThresholdRange{Max: ptrOf(5.0)}},
				},
				Webhooks: []CanaryWebhook{
					{Name: "load-test", URL: "http://loadtester.demo/", Timeout: "5s"},
					{Name: "gate", Type: WebhookConfirmPromotion, URL: "https://gate.example.com/approve"},
				},
				Alerts: []CanaryAlert{{Name: "on-call", Severity: AlertSeverityError, ProviderRef: CrossNamespaceObjectReference{Name: "slack"}}},
			},
		},
	}
}

func TestCanaryValidate(t *testing.T) {
	type c = *Canary
	an := func(c c) *CanaryAnalysis { return c.Spec.Analysis }
	abTesting := func(c c) {
		an(c).StepWeight, an(c).MaxWeight, an(c).Iterations = 0, 0, 10
		an(c).Match = []HTTPMatchRequest{{Headers: map[string]StringMatch{"x-canary": {Exact: "insider"}}}}
	}
	runValidationRules(t, validCanary, []validationRule[c]{
		{"name required", func(c c) { c.Name = "" }, "metadata.name", "is required"},
		{"provider unknown", func(c c) { c.Spec.Provider = "envoy" }, "spec.provider", `"envoy" is not one of canarymesh, appmesh, appmesh:v1beta2`},
		{"provider of Flagger only", func(c c) { c.Spec.Provider = "istio" }, "spec.provider", "Flagger provider this mesh does not drive"},
		{"metricsServer not a URL", func(c c) { c.Spec.MetricsServer = "prometheus:9090" }, "spec.metricsServer", "not an absolute http or https URL"},
		{"targetRef name required", func(c c) { c.Spec.TargetRef.Name = "" }, "spec.targetRef.name", "is required"},
		{"targetRef name not DNS", func(c c) { c.Spec.TargetRef.Name = "Pod_Info" }, "spec.targetRef.name", "RFC 1123"},
		{"targetRef kind required", func(c c) { c.Spec.TargetRef.Kind = "" }, "spec.targetRef.kind", "is required"},
		{"targetRef kind unknown", func(c c) { c.Spec.TargetRef.Kind = "StatefulSet" }, "spec.targetRef.kind", `"StatefulSet" is not one of Deployment, DaemonSet, Service, Workload`},
		{"autoscalerRef name required", func(c c) { c.Spec.AutoscalerRef = &AutoscalerReference{Kind: "HorizontalPodAutoscaler"} }, "spec.autoscalerRef.name", "is required"},
		{"autoscalerRef kind unknown", func(c c) { c.Spec.AutoscalerRef = &AutoscalerReference{Kind: "VerticalPodAutoscaler", Name: "a"} }, "spec.autoscalerRef.kind", "is not one of HorizontalPodAutoscaler, ScaledObject"},
		{"primaryScalerReplicas min below 1", func(c c) {
			c.Spec.AutoscalerRef = &AutoscalerReference{Name: "a", PrimaryScalerReplicas: &ScalerReplicas{MinReplicas: ptrOf(int32(0))}}
		}, "spec.autoscalerRef.primaryScalerReplicas.minReplicas", "0 is below 1"},
		{"primaryScalerReplicas min above max", func(c c) {
			c.Spec.AutoscalerRef = &AutoscalerReference{Name: "a", PrimaryScalerReplicas: &ScalerReplicas{MinReplicas: ptrOf(int32(5)), MaxReplicas: ptrOf(int32(2))}}
		}, "spec.autoscalerRef.primaryScalerReplicas.minReplicas", "5 is above maxReplicas 2"},
		{"ingressRef name required", func(c c) { c.Spec.IngressRef = &LocalObjectReference{Kind: "Ingress"} }, "spec.ingressRef.name", "is required"},
		{"routeRef name required", func(c c) { c.Spec.RouteRef = &LocalObjectReference{} }, "spec.routeRef.name", "is required"},
		{"upstreamRef name required", func(c c) { c.Spec.UpstreamRef = &CrossNamespaceObjectReference{} }, "spec.upstreamRef.name", "is required"},
		{"service port required", func(c c) { c.Spec.Service.Port = 0 }, "spec.service.port", "is required"},
		{"service port above 65535", func(c c) { c.Spec.Service.Port = 70000 }, "spec.service.port", "70000 is above 65535"},
		{"targetPort number out of range", func(c c) { c.Spec.Service.TargetPort = ptrOf(intstr.FromInt32(0)) }, "spec.service.targetPort", "0 is below 1"},
		{"targetPort name invalid", func(c c) { c.Spec.Service.TargetPort = ptrOf(intstr.FromString("HTTP_PORT")) }, "spec.service.targetPort", `"HTTP_PORT"`},
		{"trafficDistribution unknown", func(c c) { c.Spec.Service.TrafficDistribution = "Nearest" }, "spec.service.trafficDistribution", "is not one of PreferClose, PreferSameZone, PreferSameNode"},
		{"service timeout not a duration", func(c c) { c.Spec.Service.Timeout = "15" }, "spec.service.timeout", `"15" is not a duration`},
		{"backendTimeout not a duration", func(c c) { c.Spec.Service.BackendTimeout = "soon" }, "spec.service.backendTimeout", "is not a duration"},
		{"retries attempts negative", func(c c) { c.Spec.Service.Retries.Attempts = -1 }, "spec.service.retries.attempts", "-1 is below 0"},
		{"retries perTryTimeout not a duration", func(c c) { c.Spec.Service.Retries.PerTryTimeout = "1 sec" }, "spec.service.retries.perTryTimeout", "is not a duration"},
		{"service match two ways", func(c c) {
			c.Spec.Service.Match = []HTTPMatchRequest{{URI: &StringMatch{Prefix: "/api", Regex: "^/api"}}}
		}, "spec.service.match[0].uri", "sets prefix and regex"},
		{"service match regex does not compile", func(c c) {
			c.Spec.Service.Match = []HTTPMatchRequest{{Headers: map[string]StringMatch{"user-agent": {Regex: "(chrome"}}}}
		}, "spec.service.match[0].headers[user-agent].regex", "does not compile"},
		{"corsPolicy maxAge not a duration", func(c c) { c.Spec.Service.CorsPolicy = &CorsPolicy{MaxAge: "1 day"} }, "spec.service.corsPolicy.maxAge", "is not a duration"},
		{"corsPolicy allowOrigins empty match", func(c c) { c.Spec.Service.CorsPolicy = &CorsPolicy{AllowOrigins: []StringMatch{{}}} }, "spec.service.corsPolicy.allowOrigins[0]", "sets nothing"},
		{"gatewayRefs name required", func(c c) { c.Spec.Service.GatewayRefs = []GatewayReference{{Namespace: "gw"}} }, "spec.service.gatewayRefs[0].name", "is required"},
		{"gatewayRefs port out of range", func(c c) { c.Spec.Service.GatewayRefs = []GatewayReference{{Name: "gw", Port: ptrOf(int32(0))}} }, "spec.service.gatewayRefs[0].port", "0 is below 1"},
		{"mirror backendRef name required", func(c c) { c.Spec.Service.Mirror = []HTTPRequestMirror{{}} }, "spec.service.mirror[0].backendRef.name", "is required"},
		{"mirror backendRef port out of range", func(c c) {
			c.Spec.Service.Mirror = []HTTPRequestMirror{{BackendRef: BackendObjectReference{Name: "b", Port: ptrOf(int32(65536))}}}
		}, "spec.service.mirror[0].backendRef.port", "65536 is above 65535"},
		{"progressDeadlineSeconds zero", func(c c) { c.Spec.ProgressDeadlineSeconds = ptrOf(int32(0)) }, "spec.progressDeadlineSeconds", "0 is below 1"},
		{"analysis required", func(c c) { c.Spec.Analysis = nil }, "spec.analysis", "is required"},
		{"analysis and canaryAnalysis both", func(c c) { c.Spec.CanaryAnalysis = &CanaryAnalysis{} }, "spec.canaryAnalysis", "set only one of them"},
		{"canaryAnalysis checked at its own path", func(c c) {
			c.Spec.CanaryAnalysis, c.Spec.Analysis = c.Spec.Analysis, nil
			c.Spec.CanaryAnalysis.StepWeight = 150
		}, "spec.canaryAnalysis.stepWeight", "150 is above 100"},
		{"interval not a duration", func(c c) { an(c).Interval = "1 minute" }, "spec.analysis.interval", `"1 minute" is not a duration`},
		{"interval negative", func(c c) { an(c).Interval = "-1m" }, "spec.analysis.interval", "is negative"},
		{"interval below the minimum", func(c c) { an(c).Interval = "500ms" }, "spec.analysis.interval", "500ms is below 1s"},
		{"iterations negative", func(c c) { an(c).Iterations = -1 }, "spec.analysis.iterations", "-1 is below 0"},
		{"threshold negative", func(c c) { an(c).Threshold = -1 }, "spec.analysis.threshold", "-1 is below 0"},
		{"maxWeight above 100", func(c c) { an(c).MaxWeight = 150 }, "spec.analysis.maxWeight", "150 is above 100"},
		{"stepWeight above 100", func(c c) { an(c).StepWeight = 101 }, "spec.analysis.stepWeight", "101 is above 100"},
		{"stepWeightPromotion above 100", func(c c) { an(c).StepWeightPromotion = 200 }, "spec.analysis.stepWeightPromotion", "200 is above 100"},
		{"mirrorWeight above 100", func(c c) { an(c).Mirror, an(c).MirrorWeight = true, 120 }, "spec.analysis.mirrorWeight", "120 is above 100"},
		{"stepWeights item above 100", func(c c) { an(c).StepWeight, an(c).StepWeights = 0, []int{10, 150} }, "spec.analysis.stepWeights[1]", "150 is above 100"},
		{"stepWeights not increasing", func(c c) { an(c).StepWeight, an(c).StepWeights = 0, []int{10, 30, 30} }, "spec.analysis.stepWeights[2]", "30 is not above the previous step 30"},
		{"primaryReadyThreshold above 100", func(c c) { an(c).PrimaryReadyThreshold = ptrOf(101) }, "spec.analysis.primaryReadyThreshold", "101 is above 100"},
		{"canaryReadyThreshold negative", func(c c) { an(c).CanaryReadyThreshold = ptrOf(-5) }, "spec.analysis.canaryReadyThreshold", "-5 is below 0"},
		{"no strategy", func(c c) { an(c).StepWeight = 0 }, "spec.analysis", "selects no strategy"},
		{"two strategies", func(c c) { an(c).Iterations = 10 }, "spec.analysis", "sets stepWeight and iterations"},
		{"mirror in A/B testing", func(c c) { abTesting(c); an(c).Mirror = true }, "spec.analysis.mirror", "not A/B testing"},
		{"mirrorWeight without mirror", func(c c) { an(c).MirrorWeight = 50 }, "spec.analysis.mirrorWeight", "no effect without mirror"},
		{"sessionAffinity outside a canary release", func(c c) {
			an(c).StepWeight, an(c).MaxWeight, an(c).Iterations = 0, 0, 10
			an(c).SessionAffinity = &SessionAffinity{CookieName: "flagger-cookie"}
		}, "spec.analysis.sessionAffinity", "needs a canary release"},
		{"sessionAffinity cookieName required", func(c c) { an(c).SessionAffinity = &SessionAffinity{} }, "spec.analysis.sessionAffinity.cookieName", "is required"},
		{"sessionAffinity maxAge negative", func(c c) { an(c).SessionAffinity = &SessionAffinity{CookieName: "c", MaxAge: -1} }, "spec.analysis.sessionAffinity.maxAge", "-1 is below 0"},
		{"sessionAffinity sameSite unknown", func(c c) { an(c).SessionAffinity = &SessionAffinity{CookieName: "c", SameSite: "strict"} }, "spec.analysis.sessionAffinity.sameSite", "is not one of Strict, Lax, None"},
		{"noData unknown", func(c c) { an(c).NoData = "pass" }, "spec.analysis.noData", `"pass" is not one of fail, skip, wait`},
		{"match empty", func(c c) { abTesting(c); an(c).Match = []HTTPMatchRequest{{}} }, "spec.analysis.match[0]", "matches every request"},
		{"match header sets nothing", func(c c) {
			abTesting(c)
			an(c).Match[0].Headers["x-canary"] = StringMatch{}
		}, "spec.analysis.match[0].headers[x-canary]", "sets nothing: set exactly one of exact, prefix, suffix, regex"},
		{"match header sets two ways", func(c c) {
			abTesting(c)
			an(c).Match[0].Headers["x-canary"] = StringMatch{Exact: "a", Suffix: "a"}
		}, "spec.analysis.match[0].headers[x-canary]", "sets exact and suffix"},
		{"match cookie regex does not compile", func(c c) {
			abTesting(c)
			an(c).Match[0].Headers["cookie"] = StringMatch{Regex: "^(.*?;)?(canary=always(;.*)?$"}
		}, "spec.analysis.match[0].headers[cookie].regex", "does not compile"},
		{"match queryParams checked", func(c c) {
			abTesting(c)
			an(c).Match[0].QueryParams = map[string]StringMatch{"canary": {}}
		}, "spec.analysis.match[0].queryParams[canary]", "sets nothing"},
		{"metric name required", func(c c) { an(c).Metrics[0].Name = "" }, "spec.analysis.metrics[0].name", "is required"},
		{"metric name repeated", func(c c) { an(c).Metrics[1].Name = MetricRequestSuccessRate }, "spec.analysis.metrics[1].name", "is also the name of spec.analysis.metrics[0]"},
		{"metric templateRef and query", func(c c) { an(c).Metrics[1].Query = "sum(up)" }, "spec.analysis.metrics[1].query", "set templateRef or query, not both"},
		{"metric templateRef name required", func(c c) { an(c).Metrics[1].TemplateRef.Name = "" }, "spec.analysis.metrics[1].templateRef.name", "is required"},
		{"metric not built in, without template or query", func(c c) { an(c).Metrics[1].TemplateRef = nil }, "spec.analysis.metrics[1].name", `"error-budget" is not a built-in metric (request-success-rate, request-duration)`},
		{"metric interval not a duration", func(c c) { an(c).Metrics[0].Interval = "1" }, "spec.analysis.metrics[0].interval", "is not a duration"},
		{"metric interval zero", func(c c) { an(c).Metrics[0].Interval = "0s" }, "spec.analysis.metrics[0].interval", "must be above 0"},
		{"metric threshold missing", func(c c) { an(c).Metrics[0].ThresholdRange = nil }, "spec.analysis.metrics[0].thresholdRange", "is required"},
		{"thresholdRange without bounds", func(c c) { an(c).Metrics[0].ThresholdRange = &CanaryThresholdRange{} }, "spec.analysis.metrics[0].thresholdRange", "sets neither min nor max"},
		{"thresholdRange min above max", func(c c) { an(c).Metrics[0].ThresholdRange.Max = ptrOf(90.0) }, "spec.analysis.metrics[0].thresholdRange", "min 99 is above max 90"},
		{"webhook name required", func(c c) { an(c).Webhooks[0].Name = "" }, "spec.analysis.webhooks[0].name", "is required"},
		{"webhook name repeated", func(c c) { an(c).Webhooks[1].Name = "load-test" }, "spec.analysis.webhooks[1].name", "is also the name of spec.analysis.webhooks[0]"},
		{"webhook type unknown", func(c c) { an(c).Webhooks[0].Type = "pre-promotion" }, "spec.analysis.webhooks[0].type", `"pre-promotion" is not one of confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event`},
		{"webhook url required", func(c c) { an(c).Webhooks[0].URL = "" }, "spec.analysis.webhooks[0].url", "is required"},
		{"webhook url relative", func(c c) { an(c).Webhooks[0].URL = "/hook" }, "spec.analysis.webhooks[0].url", `"/hook" is not an absolute http or https URL`},
		{"webhook url not http", func(c c) { an(c).Webhooks[0].URL = "ftp://hooks.example.com/" }, "spec.analysis.webhooks[0].url", "is not an absolute http or https URL"},
		{"webhook timeout not a duration", func(c c) { an(c).Webhooks[0].Timeout = "5" }, "spec.analysis.webhooks[0].timeout", "is not a duration"},
		{"webhook timeout zero", func(c c) { an(c).Webhooks[0].Timeout = "0s" }, "spec.analysis.webhooks[0].timeout", "must be above 0"},
		{"webhook retries negative", func(c c) { an(c).Webhooks[0].Retries = -1 }, "spec.analysis.webhooks[0].retries", "-1 is below 0"},
		{"alert name required", func(c c) { an(c).Alerts[0].Name = "" }, "spec.analysis.alerts[0].name", "is required"},
		{"alert severity unknown", func(c c) { an(c).Alerts[0].Severity = "critical" }, "spec.analysis.alerts[0].severity", `"critical" is not one of info, warn, error`},
		{"alert providerRef name required", func(c c) { an(c).Alerts[0].ProviderRef.Name = "" }, "spec.analysis.alerts[0].providerRef.name", "is required"},
	})
}

// TestCanaryValidateAccepts covers shapes that must stay valid next to the rules above.
func TestCanaryValidateAccepts(t *testing.T) {
	cases := map[string]func(*Canary){
		"blue/green with mirroring": func(c *Canary) {
			a := c.Spec.Analysis
			a.StepWeight, a.MaxWeight, a.Iterations, a.Mirror, a.MirrorWeight = 0, 0, 10, true, 50
		},
		"canary release with mirroring": func(c *Canary) { c.Spec.Analysis.Mirror = true },
		"A/B testing on a cookie": func(c *Canary) {
			a := c.Spec.Analysis
			a.StepWeight, a.MaxWeight, a.Iterations = 0, 0, 10
			a.Match = []HTTPMatchRequest{
				{Headers: map[string]StringMatch{"cookie": {Regex: "^(.*?;)?(canary=always)(;.*)?$"}}},
				{Headers: map[string]StringMatch{"user-agent": {Suffix: "Firefox"}}},
			}
		},
		"step weights": func(c *Canary) { c.Spec.Analysis.StepWeight, c.Spec.Analysis.StepWeights = 0, []int{1, 5, 25, 50} },
		"session affinity": func(c *Canary) {
			c.Spec.Analysis.SessionAffinity = &SessionAffinity{CookieName: "flagger-cookie", MaxAge: 3600, SameSite: "Lax"}
		},
		"webhook type left empty": func(c *Canary) { c.Spec.Analysis.Webhooks[0].Type = "" },
		"metric with a query": func(c *Canary) {
			c.Spec.Analysis.Metrics[1].TemplateRef, c.Spec.Analysis.Metrics[1].Query = nil, "sum(up)"
		},
		"deprecated threshold": func(c *Canary) {
			c.Spec.Analysis.Metrics[0].ThresholdRange, c.Spec.Analysis.Metrics[0].Threshold = nil, 99
		},
		"noData skip":       func(c *Canary) { c.Spec.Analysis.NoData = NoDataSkip },
		"noData wait":       func(c *Canary) { c.Spec.Analysis.NoData = NoDataWait },
		"App Mesh provider": func(c *Canary) { c.Spec.Provider = ProviderAppMeshV1beta2 },
		"empty header match outside A/B testing": func(c *Canary) {
			c.Spec.Service.Match = []HTTPMatchRequest{{Headers: map[string]StringMatch{"x-present": {}}}}
		},
		"older canaryAnalysis": func(c *Canary) { c.Spec.CanaryAnalysis, c.Spec.Analysis = c.Spec.Analysis, nil },
		"named target port":    func(c *Canary) { c.Spec.Service.TargetPort = ptrOf(intstr.FromString("http")) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := validCanary()
			mutate(c)
			if errs := c.Validate(); len(errs) > 0 {
				t.Errorf("want valid, got %v", errs)
			}
			c.Default()
			if errs := c.Validate(); len(errs) > 0 {
				t.Errorf("want valid after Default, got %v", errs)
			}
		})
	}
}

func TestCanaryDefault(t *testing.T) {
	c := &Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: CanarySpec{
			TargetRef: LocalObjectReference{Kind: TargetKindDeployment, Name: "podinfo"},
			Service:   CanaryService{Port: 9898},
			Analysis: &CanaryAnalysis{
				StepWeight: 5,
				Mirror:     true,
				Metrics: []CanaryMetric{
					{Name: MetricRequestSuccessRate, Threshold: 99},
					{Name: MetricRequestDuration, Threshold: 500},
				},
				Webhooks:        []CanaryWebhook{{Name: "load-test", URL: "http://lt/"}},
				Alerts:          []CanaryAlert{{Name: "a", ProviderRef: CrossNamespaceObjectReference{Name: "p"}}},
				SessionAffinity: &SessionAffinity{CookieName: "c"},
			},
		},
	}
	c.Default()
	s := c.Spec
	a := s.Analysis
	checks := []struct {
		name      string
		got, want any
	}{
		{"provider", s.Provider, ProviderCanarymesh},
		{"targetRef.apiVersion", s.TargetRef.APIVersion, "apps/v1"},
		{"progressDeadlineSeconds", *s.ProgressDeadlineSeconds, int32(600)},
		{"service.portName", s.Service.PortName, "http"},
		{"service.targetPort", *s.Service.TargetPort, intstr.FromInt32(9898)},
		{"interval", a.Interval, "1m"},
		{"threshold", a.Threshold, 1},
		{"maxWeight", a.MaxWeight, 100},
		{"mirrorWeight", a.MirrorWeight, 100},
		{"primaryReadyThreshold", *a.PrimaryReadyThreshold, 100},
		{"canaryReadyThreshold", *a.CanaryReadyThreshold, 100},
		{"noData", a.NoData, NoDataFail},
		{"sessionAffinity.maxAge", a.SessionAffinity.MaxAge, 86400},
		{"metrics[0].interval", a.Metrics[0].Interval, "1m"},
		{"metrics[0].thresholdRange.min", *a.Metrics[0].ThresholdRange.Min, 99.0},
		{"metrics[0].thresholdRange.max", a.Metrics[0].ThresholdRange.Max, (*float64)(nil)},
		{"metrics[1].thresholdRange.max", *a.Metrics[1].ThresholdRange.Max, 500.0},
		{"webhooks[0].type", a.Webhooks[0].Type, WebhookRollout},
		{"webhooks[0].timeout", a.Webhooks[0].Timeout, "10s"},
		{"alerts[0].severity", a.Alerts[0].Severity, AlertSeverityInfo},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Errorf("defaulted canary is invalid: %v", errs)
	}
}

func TestCanaryDefaultKeepsSetValues(t *testing.T) {
	c := validCanary()
	c.Spec.Analysis.Webhooks[0].Type = WebhookPreRollout
	c.Spec.TargetRef = LocalObjectReference{APIVersion: "apps/v1", Kind: TargetKindDaemonSet, Name: "podinfo"}
	c.Default()
	a := c.Spec.Analysis
	if a.Interval != "10s" || a.Threshold != 5 || a.MaxWeight != 50 || a.Webhooks[0].Timeout != "5s" ||
		a.Webhooks[0].Type != WebhookPreRollout || a.Alerts[0].Severity != AlertSeverityError {
		t.Errorf("Default changed set values: %+v", a)
	}
	if c.Spec.TargetRef.APIVersion != "apps/v1" {
		t.Errorf("targetRef.apiVersion = %q", c.Spec.TargetRef.APIVersion)
	}
}

func TestCanaryDefaultWorkloadTargetAndOlderAnalysis(t *testing.T) {
	c := validCanary()
	c.Spec.TargetRef.APIVersion = ""
	c.Spec.CanaryAnalysis, c.Spec.Analysis = c.Spec.Analysis, nil
	c.Default()
	if c.Spec.TargetRef.APIVersion != "canarymesh.dev/v1alpha1" {
		t.Errorf("targetRef.apiVersion = %q", c.Spec.TargetRef.APIVersion)
	}
	if c.Spec.Analysis == nil || c.Spec.CanaryAnalysis != nil {
		t.Fatalf("canaryAnalysis not moved to analysis")
	}
	if c.Spec.Analysis.StepWeight != 10 {
		t.Errorf("analysis.stepWeight = %d", c.Spec.Analysis.StepWeight)
	}
}

func TestCanaryGetters(t *testing.T) {
	c := &Canary{Spec: CanarySpec{TargetRef: LocalObjectReference{Name: "podinfo"}}}
	if !c.SkipAnalysis() {
		t.Error("a canary without analysis skips it")
	}
	if got := c.GetAnalysisInterval(); got != time.Minute {
		t.Errorf("GetAnalysisInterval = %v", got)
	}
	if got := c.GetProgressDeadline(); got != 600*time.Second {
		t.Errorf("GetProgressDeadline = %v", got)
	}
	apex, primary, canary := c.GetServiceNames()
	if apex != "podinfo" || primary != "podinfo-primary" || canary != "podinfo-canary" {
		t.Errorf("GetServiceNames = %s %s %s", apex, primary, canary)
	}
	c.Spec.Service.Name = "frontend"
	if apex, _, canary = c.GetServiceNames(); apex != "frontend" || canary != "frontend-canary" {
		t.Errorf("GetServiceNames with service.name = %s %s", apex, canary)
	}

	c.Spec.Analysis = &CanaryAnalysis{Interval: "5s", StepWeights: []int{10, 40, 80}, Mirror: true}
	checks := []struct {
		name      string
		got, want any
	}{
		{"GetAnalysisInterval", c.GetAnalysisInterval(), 5 * time.Second},
		{"GetAnalysisThreshold", c.GetAnalysisThreshold(), 1},
		{"GetMaxWeight from stepWeights", c.GetMaxWeight(), 80},
		{"GetStepWeightPromotion", c.GetStepWeightPromotion(), 100},
		{"GetMirrorWeight", c.GetMirrorWeight(), 100},
		{"GetAnalysisPrimaryReadyThreshold", c.GetAnalysisPrimaryReadyThreshold(), 100},
		{"GetAnalysisCanaryReadyThreshold", c.GetAnalysisCanaryReadyThreshold(), 100},
		{"GetNoData", c.GetNoData(), NoDataFail},
		{"Strategy", c.Spec.Analysis.Strategy(), StrategyCanary},
		{"SkipAnalysis", c.SkipAnalysis(), false},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	c.Spec.Analysis = &CanaryAnalysis{Iterations: 5, MaxWeight: 30, StepWeightPromotion: 20}
	if got := c.GetMaxWeight(); got != 30 {
		t.Errorf("GetMaxWeight = %d, want 30", got)
	}
	if got := c.GetStepWeightPromotion(); got != 20 {
		t.Errorf("GetStepWeightPromotion = %d, want 20", got)
	}
	if got := c.GetMirrorWeight(); got != 0 {
		t.Errorf("GetMirrorWeight without mirror = %d", got)
	}
	if got := c.Spec.Analysis.Strategy(); got != StrategyBlueGreen {
		t.Errorf("Strategy = %s, want %s", got, StrategyBlueGreen)
	}
	c.Spec.Analysis.Match = []HTTPMatchRequest{{Name: "insiders"}}
	if got := c.Spec.Analysis.Strategy(); got != StrategyABTesting {
		t.Errorf("Strategy = %s, want %s", got, StrategyABTesting)
	}
	m := CanaryMetric{Name: MetricRequestDuration}
	if !m.IsBuiltin() || m.GetInterval() != time.Minute {
		t.Errorf("built-in metric: IsBuiltin %v, interval %v", m.IsBuiltin(), m.GetInterval())
	}
	w := CanaryWebhook{}
	if w.GetType() != WebhookRollout || w.GetTimeout() != 10*time.Second {
		t.Errorf("webhook defaults: %s %v", w.GetType(), w.GetTimeout())
	}
	if got := (&SessionAffinity{}).GetMaxAge(); got != 24*time.Hour {
		t.Errorf("GetMaxAge = %v", got)
	}
}

// strictDecodeYAML decodes YAML as the API server does for a CRD with no unknown fields
// allowed: YAML to JSON, then case-sensitive JSON with unknown fields refused.
func strictDecodeYAML(t *testing.T, doc string, into any) {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("YAML to JSON: %v", err)
	}
	strictErrs, err := kjson.UnmarshalStrict(j, into, kjson.DisallowUnknownFields)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(strictErrs) > 0 {
		t.Fatalf("strict decode: %v", strictErrs)
	}
}

// seedCanary is the Canary of the Flagger App Mesh tutorial, as users wrote it.
const seedCanary = `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: demo
spec:
  provider: appmesh
  # the maximum time in seconds for the canary deployment
  # to make progress before it is rollback (default 600s)
  progressDeadlineSeconds: 60
  # deployment reference
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  # HPA reference (optional)
  autoscalerRef:
    apiVersion: autoscaling/v2beta1
    kind: HorizontalPodAutoscaler
    name: podinfo
  service:
    # container port
    port: 9898
    # container port name (optional)
    # can be http or grpc
    portName: http
    # App Mesh Gateway external domain
    hosts:
      - "*"
    # App Mesh reference
    meshName: "flaggerdemo"
    # App Mesh retry policy (optional)
    retries:
      attempts: 3
      perTryTimeout: 1s
      retryOn: "gateway-error,client-error,stream-error"
  # define the canary analysis timing and KPIs
  analysis:
    # schedule interval (default 60s)
    interval: 10s
    # max number of failed metric checks before rollback
    threshold: 10
    # max traffic percentage routed to canary
    # percentage (0-100)
    maxWeight: 50
    # canary increment step
    # percentage (0-100)
    stepWeight: 5
    # App Mesh Prometheus checks
    metrics:
      - name: request-success-rate
        # minimum req success rate (non 5xx responses)
        # percentage (0-100)
        thresholdRange:
          min: 99
        interval: 1m
      - name: request-duration
        # maximum req duration P99
        # milliseconds
        thresholdRange:
          max: 500
        interval: 30s
    # testing (optional)
    webhooks:
      - name: acceptance-test
        type: pre-rollout
        url: http://flagger-loadtester.demo/
        timeout: 30s
        metadata:
          type: bash
          cmd: "curl -sd 'test' http://podinfo-canary.demo:9898/token | grep token"
      - name: load-test
        url: http://flagger-loadtester.demo/
        timeout: 5s
        metadata:
          cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.demo:9898/"
`

func TestCanarySeedManifest(t *testing.T) {
	var c Canary
	strictDecodeYAML(t, seedCanary, &c)
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("seed canary is invalid as written: %v", errs)
	}
	c.Default()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("seed canary is invalid after Default: %v", errs)
	}
	a := c.Spec.Analysis
	if c.Spec.Provider != ProviderAppMesh || *c.Spec.ProgressDeadlineSeconds != 60 || c.Spec.Service.Port != 9898 ||
		c.Spec.Service.MeshName != "flaggerdemo" || c.Spec.Service.Retries.RetryOn != "gateway-error,client-error,stream-error" {
		t.Errorf("spec decoded wrong: %+v", c.Spec)
	}
	if c.Spec.AutoscalerRef == nil || c.Spec.AutoscalerRef.Kind != "HorizontalPodAutoscaler" {
		t.Errorf("autoscalerRef = %+v", c.Spec.AutoscalerRef)
	}
	if a.StepWeight != 5 || a.MaxWeight != 50 || a.Threshold != 10 || c.GetAnalysisInterval() != 10*time.Second {
		t.Errorf("analysis decoded wrong: %+v", a)
	}
	if *a.Metrics[0].ThresholdRange.Min != 99 || *a.Metrics[1].ThresholdRange.Max != 500 || a.Metrics[1].GetInterval() != 30*time.Second {
		t.Errorf("metrics decoded wrong: %+v", a.Metrics)
	}
	if a.Webhooks[0].Type != WebhookPreRollout || a.Webhooks[1].Type != WebhookRollout || a.Webhooks[1].GetTimeout() != 5*time.Second ||
		a.Webhooks[0].Metadata["type"] != "bash" {
		t.Errorf("webhooks decoded wrong: %+v", a.Webhooks)
	}
}

// fullCanary uses every part of Flagger's Canary schema, to catch a JSON name that
// differs from Flagger's.
const fullCanary = `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: frontend
  namespace: shop
spec:
  provider: appmesh:v1beta2
  metricsServer: http://prometheus.monitoring:9090
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: frontend}
  autoscalerRef:
    apiVersion: keda.sh/v1alpha1
    kind: ScaledObject
    name: frontend
    primaryScalerQueries: {qps: "sum(rate(http_requests_total{app=\"frontend-primary\"}[1m]))"}
    primaryScalerReplicas: {minReplicas: 2, maxReplicas: 10}
  ingressRef: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: frontend}
  routeRef: {apiVersion: apisix.apache.org/v2, kind: ApisixRoute, name: frontend}
  upstreamRef: {apiVersion: gloo.solo.io/v1, kind: Upstream, name: frontend, namespace: gloo}
  service:
    name: frontend
    port: 80
    portName: http
    targetPort: http
    appProtocol: http
    trafficDistribution: PreferClose
    portDiscovery: true
    headless: false
    timeout: 15s
    backendTimeout: 10s
    gateways: [public-gateway.istio-system.svc.cluster.local, mesh]
    gatewayRefs:
      - {group: gateway.networking.k8s.io, kind: Gateway, name: public, namespace: gw, sectionName: https, port: 443}
    hosts: [shop.example.com]
    delegation: false
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL}
      loadBalancer: {simple: LEAST_REQUEST}
    match:
      - name: api
        uri: {prefix: /api}
        method: {exact: GET}
        ignoreUriCase: true
        sourceNamespace: shop
        withoutHeaders: {x-debug: {exact: "1"}}
    rewrite: {uri: /, authority: shop.internal, type: ReplacePrefixMatch}
    retries: {attempts: 2, perTryTimeout: 2s, retryOn: 5xx}
    headers:
      request: {add: {x-shop: canary}, set: {x-env: prod}, remove: [x-internal]}
      response: {remove: [server]}
    corsPolicy:
      allowOrigin: [https://example.com]
      allowOrigins: [{regex: "https://.*\\.example\\.com"}]
      allowMethods: [GET, POST]
      allowHeaders: [x-shop]
      exposeHeaders: [x-trace]
      maxAge: 24h
      allowCredentials: true
    mirror:
      - backendRef: {name: frontend-shadow, port: 80}
    meshName: shop
    backends: [payments.shop, catalog.shop]
    apex: {labels: {tier: web}, annotations: {owner: team-web}}
    primary: {labels: {track: stable}}
    canary: {annotations: {track: canary}}
    unmanagedMetadata: {labels: [ci-run], annotations: [deployed-by]}
  analysis:
    interval: 1m
    threshold: 5
    stepWeights: [5, 10, 25, 50]
    stepWeightPromotion: 25
    mirror: true
    mirrorWeight: 20
    primaryReadyThreshold: 90
    canaryReadyThreshold: 80
    noData: wait
    sessionAffinity:
      cookieName: canary-session
      primaryCookieName: primary-session
      domain: example.com
      httpOnly: true
      maxAge: 7200
      partitioned: false
      path: /
      sameSite: Lax
      secure: true
    alerts:
      - {name: on-call, severity: error, providerRef: {name: pager, namespace: ops}}
    metrics:
      - name: error-rate
        interval: 2m
        thresholdRange: {max: 1.5}
        templateRef: {name: error-rate, namespace: ops}
        templateVariables: {route: /api}
      - name: legacy
        threshold: 300
        query: histogram_quantile(0.99, sum(rate(latency_bucket[1m])) by (le))
    webhooks:
      - name: approve
        type: confirm-promotion
        url: https://gate.example.com/approve
        muteAlert: true
        timeout: 1m
        retries: 3
        disableTLS: true
      - {name: notify, type: event, url: http://events.ops/}
  progressDeadlineSeconds: 300
  skipAnalysis: false
  revertOnDeletion: true
  suspend: false
status:
  phase: Progressing
  failedChecks: 1
  canaryWeight: 10
  iterations: 0
  trackedConfigs: {configmap/frontend: 5f8a}
  lastAppliedSpec: 6d4b8f
  lastPromotedSpec: 7c9d1a
  lastTrackedRevision: 6d4b8f
  lastTransitionTime: "2026-01-02T03:04:05Z"
  sessionAffinityCookie: canary-session=abc
  primarySessionAffinityCookie: primary-session=def
  previousSessionAffinityCookie: canary-session=xyz
  observedGeneration: 4
  message: advancing canary weight 10
  lastMetrics:
    - {name: error-rate, value: 0.4, thresholdMax: 1.5, passed: true, time: "2026-01-02T03:04:05Z"}
  lastWebhooks:
    - {name: approve, type: confirm-promotion, statusCode: 403, passed: false, message: not yet, time: "2026-01-02T03:04:05Z"}
  conditions:
    - {type: Promoted, status: Unknown, reason: Progressing, message: analysis under way, lastTransitionTime: "2026-01-02T03:00:00Z"}
`

func TestCanaryFullManifest(t *testing.T) {
	var c Canary
	strictDecodeYAML(t, fullCanary, &c)
	c.Default()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("full canary is invalid: %v", errs)
	}
	s := c.Spec
	if s.Service.TargetPort.StrVal != "http" || len(s.Service.TrafficPolicy.Raw) == 0 || s.Service.GatewayRefs[0].SectionName != "https" ||
		*s.Service.CorsPolicy.AllowCredentials != true || s.Service.UnmanagedMetadata.Annotations[0] != "deployed-by" {
		t.Errorf("service decoded wrong: %+v", s.Service)
	}
	if *s.AutoscalerRef.PrimaryScalerReplicas.MaxReplicas != 10 || s.UpstreamRef.Namespace != "gloo" {
		t.Errorf("refs decoded wrong: %+v %+v", s.AutoscalerRef, s.UpstreamRef)
	}
	if c.GetMaxWeight() != 50 || c.GetMirrorWeight() != 20 || c.GetNoData() != NoDataWait || s.Analysis.SessionAffinity.GetMaxAge() != 2*time.Hour {
		t.Errorf("analysis decoded wrong: %+v", s.Analysis)
	}
	if m := s.Analysis.Metrics[1]; m.ThresholdRange == nil || *m.ThresholdRange.Max != 300 {
		t.Errorf("deprecated threshold not turned into thresholdRange.max: %+v", m)
	}
	st := c.Status
	if st.Phase != CanaryPhaseProgressing || st.CanaryWeight != 10 || st.LastMetrics[0].Value != 0.4 ||
		st.LastWebhooks[0].StatusCode != 403 || st.Conditions[0].Reason != "Progressing" || st.ObservedGeneration != 4 {
		t.Errorf("status decoded wrong: %+v", st)
	}
}

func TestCanaryStrictDecodeRefusesUnknownFields(t *testing.T) {
	j, err := yaml.YAMLToJSON([]byte("spec:\n  analysis:\n    stepWieght: 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	var c Canary
	strictErrs, err := kjson.UnmarshalStrict(j, &c, kjson.DisallowUnknownFields)
	if err != nil || len(strictErrs) != 1 || !strings.Contains(strictErrs[0].Error(), "stepWieght") {
		t.Errorf("want one strict error naming stepWieght, got %v, %v", strictErrs, err)
	}
}

func TestCanaryKindRegistered(t *testing.T) {
	for _, name := range []string{"Canary", "canaries", "canary"} {
		k, err := LookupKind(name)
		if err != nil || k.Kind != "Canary" || !k.Namespaced {
			t.Errorf("LookupKind(%q) = %+v, %v", name, k, err)
		}
	}
	if k, err := KindOf(&Canary{}); err != nil || k.Plural != "canaries" {
		t.Errorf("KindOf(Canary) = %+v, %v", k, err)
	}
}
