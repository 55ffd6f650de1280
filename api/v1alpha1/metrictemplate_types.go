package v1alpha1

import (
	"slices"
	"strings"
	"text/template"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Metric providers a MetricTemplate may name.
const (
	// MetricProviderPrometheus runs the query against a Prometheus server's HTTP API.
	MetricProviderPrometheus = "prometheus"
	// MetricProviderWeb sends a GET (or, when the query says so, a POST) to address and
	// picks the value out of the JSON answer with the rendered query, a JSONPath, as
	// Argo Rollouts' web metric does; for KPIs behind a plain HTTP API.
	MetricProviderWeb = "web"
)

// MetricProviders lists the metric providers this mesh runs.
var MetricProviders = []string{MetricProviderPrometheus, MetricProviderWeb}

// flaggerOnlyMetricProviders are Flagger's other metric providers: known names this mesh
// has no client for.
var flaggerOnlyMetricProviders = []string{"influxdb", "datadog", "externalmetrics", "stackdriver",
	"cloudwatch", "newrelic", "graphite", "dynatrace", "keptn", "splunk"}

// MetricQueryFuncs are the functions a template's query may call, each returning a value
// of the canary being analysed: {{ name }}, {{ namespace }}, {{ target }}, {{ service }},
// {{ ingress }}, {{ interval }}, and {{ variables.key }} for its templateVariables.
var MetricQueryFuncs = []string{"name", "namespace", "target", "service", "ingress", "interval", "variables"}

// MetricTemplate says how to measure a metric a Canary checks: a provider and a query
// rendered with the canary's names. Field names are Flagger's.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=canarymesh,shortName=mt
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MetricTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MetricTemplateSpec `json:"spec,omitempty"`
	Status MeshObjectStatus   `json:"status,omitempty"`
}

// MetricTemplateList is a list of MetricTemplate.
//
// +kubebuilder:object:root=true
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricTemplate `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "MetricTemplate", Plural: "metrictemplates", Singular: "metrictemplate", Short: []string{"mt"},
		Namespaced: true, New: func() Object { return &MetricTemplate{} }})
	registerList(func() runtime.Object { return &MetricTemplateList{} })
}

// MetricTemplateSpec is the desired state of a MetricTemplate.
type MetricTemplateSpec struct {
	// Provider answers the query.
	Provider MetricTemplateProvider `json:"provider"`
	// Query is a Go text/template rendered with MetricQueryFuncs, then sent to the
	// provider; the answer must be one number.
	Query string `json:"query"`
}

// MetricTemplateProvider is where a query is sent.
type MetricTemplateProvider struct {
	// Type is prometheus or web.
	Type string `json:"type"`
	// Address is the provider's base URL. For prometheus it defaults to the canary's
	// metricsServer; web needs it.
	// +optional
	Address string `json:"address,omitempty"`
	// Headers are added to every request to the provider.
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`
	// SecretRef names a Secret holding the provider's credentials.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
	// Region of the provider, for cloud providers (kept from Flagger manifests).
	// +optional
	Region string `json:"region,omitempty"`
	// InsecureSkipVerify skips verification of the provider's certificate.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// SecretReference names a Secret in the referrer's namespace.
type SecretReference struct {
	Name string `json:"name"`
}

// Default does nothing: a MetricTemplate has no defaults. It exists so that every kind is
// a Defaulter.
func (m *MetricTemplate) Default() {}

// Validate checks the MetricTemplate on its own.
func (m *MetricTemplate) Validate() ErrorList {
	errs := validateMeta(m, true)
	spec := field.NewPath("spec")
	pp := spec.Child("provider")
	p := &m.Spec.Provider
	switch {
	case p.Type == "":
		errs = append(errs, Required(pp.Child("type")))
	case slices.Contains(flaggerOnlyMetricProviders, p.Type):
		errs = append(errs, Invalid(pp.Child("type"), "%q is a Flagger metric provider this mesh has no client for; expected one of %s",
			p.Type, strings.Join(MetricProviders, ", ")))
	default:
		checkOneOf(&errs, pp.Child("type"), p.Type, MetricProviders...)
	}
	if p.Address != "" {
		checkWebURL(&errs, pp.Child("address"), p.Address)
	} else if p.Type == MetricProviderWeb {
		errs = append(errs, Invalid(pp.Child("address"), "is required for provider type web"))
	}
	if p.SecretRef != nil && p.SecretRef.Name == "" {
		errs = append(errs, Required(pp.Child("secretRef", "name")))
	}
	if strings.TrimSpace(m.Spec.Query) == "" {
		errs = append(errs, Required(spec.Child("query")))
	} else if err := parseMetricQuery(m.Spec.Query); err != nil {
		errs = append(errs, Invalid(spec.Child("query"), "does not parse as a template: %v", err))
	}
	return errs
}

// parseMetricQuery parses a query template with MetricQueryFuncs defined, without
// rendering it.
func parseMetricQuery(q string) error {
	funcs := template.FuncMap{}
	for _, name := range MetricQueryFuncs {
		funcs[name] = func() string { return "" }
	}
	_, err := template.New("query").Funcs(funcs).Parse(q)
	return err
}
