package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validMetricTemplate() *MetricTemplate {
	return &MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "error-rate", Namespace: "ops"},
		Spec: MetricTemplateSpec{
			Provider: MetricTemplateProvider{Type: MetricProviderPrometheus, Address: "http://prometheus.monitoring:9090"},
			Query: `100 - sum(rate(requests_total{namespace="{{ namespace }}", target="{{ target }}", code!~"5.."}[{{ interval }}]))
  / sum(rate(requests_total{namespace="{{ namespace }}", target="{{ target }}", route="{{ variables.route }}"}[{{ interval }}])) * 100`,
		},
	}
}

func TestMetricTemplateValidate(t *testing.T) {
	type m = *MetricTemplate
	runValidationRules(t, validMetricTemplate, []validationRule[m]{
		{"name required", func(m m) { m.Name = "" }, "metadata.name", "is required"},
		{"provider type required", func(m m) { m.Spec.Provider.Type = "" }, "spec.provider.type", "is required"},
		{"provider type unknown", func(m m) { m.Spec.Provider.Type = "statsd" }, "spec.provider.type", `"statsd" is not one of prometheus, web`},
		{"provider type of Flagger only", func(m m) { m.Spec.Provider.Type = "datadog" }, "spec.provider.type", `"datadog" is a Flagger metric provider this mesh has no client for; expected one of prometheus, web`},
		{"address not a URL", func(m m) { m.Spec.Provider.Address = "prometheus:9090" }, "spec.provider.address", "is not an absolute http or https URL"},
		{"web needs an address", func(m m) { m.Spec.Provider = MetricTemplateProvider{Type: MetricProviderWeb} }, "spec.provider.address", "is required for provider type web"},
		{"secretRef name required", func(m m) { m.Spec.Provider.SecretRef = &SecretReference{} }, "spec.provider.secretRef.name", "is required"},
		{"query required", func(m m) { m.Spec.Query = "  " }, "spec.query", "is required"},
		{"query does not parse", func(m m) { m.Spec.Query = "sum(up{job=\"{{ target }\"})" }, "spec.query", "does not parse as a template"},
		{"query calls an unknown function", func(m m) { m.Spec.Query = "sum(up{pod=\"{{ pod }}\"})" }, "spec.query", `function "pod" not defined`},
	})
}

func TestMetricTemplateAccepts(t *testing.T) {
	for name, mutate := range map[string]func(*MetricTemplate){
		"prometheus without address": func(m *MetricTemplate) { m.Spec.Provider.Address = "" },
		"web with address": func(m *MetricTemplate) {
			m.Spec.Provider = MetricTemplateProvider{Type: MetricProviderWeb, Address: "https://metrics.example.com/query",
				Headers: map[string][]string{"Authorization": {"Bearer x"}}, InsecureSkipVerify: true}
		},
		"every query function": func(m *MetricTemplate) {
			m.Spec.Query = "{{ name }} {{ namespace }} {{ target }} {{ service }} {{ ingress }} {{ interval }} {{ variables.x }}"
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := validMetricTemplate()
			mutate(m)
			m.Default()
			if errs := m.Validate(); len(errs) > 0 {
				t.Errorf("want valid, got %v", errs)
			}
		})
	}
}

const flaggerMetricTemplate = `apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: latency
  namespace: ops
spec:
  provider:
    type: prometheus
    address: https://prometheus.example.com
    headers:
      X-Scope-OrgID: [tenant-1]
    secretRef:
      name: prom-auth
    region: eu-west-1
    insecureSkipVerify: false
  query: |
    histogram_quantile(0.99, sum(rate(request_duration_seconds_bucket{namespace="{{ namespace }}"}[{{ interval }}])) by (le))
status:
  observedGeneration: 1
`

func TestMetricTemplateFlaggerManifest(t *testing.T) {
	var m MetricTemplate
	strictDecodeYAML(t, flaggerMetricTemplate, &m)
	m.Default()
	if errs := m.Validate(); len(errs) > 0 {
		t.Fatalf("invalid: %v", errs)
	}
	p := m.Spec.Provider
	if p.SecretRef.Name != "prom-auth" || p.Headers["X-Scope-OrgID"][0] != "tenant-1" || p.Region != "eu-west-1" {
		t.Errorf("provider decoded wrong: %+v", p)
	}
	if k, err := LookupKind("mt"); err != nil || k.Kind != "MetricTemplate" || !k.Namespaced {
		t.Errorf("LookupKind(mt) = %+v, %v", k, err)
	}
}
