package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Traffic providers a Canary may name in spec.provider. Every one of them means this
// mesh: "appmesh" and "appmesh:v1beta2" are accepted so that Flagger manifests written
// for App Mesh apply unchanged.
const (
	ProviderCanarymesh     = "canarymesh"
	ProviderAppMesh        = "appmesh"
	ProviderAppMeshV1beta2 = "appmesh:v1beta2"
)

// Kinds a Canary's targetRef may name.
const (
	TargetKindDeployment = "Deployment"
	TargetKindDaemonSet  = "DaemonSet"
	TargetKindService    = "Service"
	TargetKindWorkload   = "Workload"
)

// Canary automates the release of a new revision of its target: it creates the primary,
// shifts traffic to the new revision step by step while webhooks and metric checks pass,
// then promotes it, or rolls it back when checks fail. Field names are Flagger's
// (flagger.app/v1beta1), so its manifests apply unchanged.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=canarymesh
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="FailedChecks",type=integer,JSONPath=`.status.failedChecks`
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.analysis.interval`,priority=1
// +kubebuilder:printcolumn:name="LastTransition",type=date,JSONPath=`.status.lastTransitionTime`
type Canary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CanarySpec   `json:"spec,omitempty"`
	Status CanaryStatus `json:"status,omitempty"`
}

// CanaryList is a list of Canary.
//
// +kubebuilder:object:root=true
type CanaryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Canary `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "Canary", Plural: "canaries", Singular: "canary", Short: []string{"canary"},
		Namespaced: true, New: func() Object { return &Canary{} }})
	registerList(func() runtime.Object { return &CanaryList{} })
}

// CanarySpec is the desired behaviour of a Canary.
type CanarySpec struct {
	// Provider names the traffic provider; every accepted value means this mesh
	// (canarymesh, appmesh, appmesh:v1beta2). Defaults to canarymesh.
	// +optional
	Provider string `json:"provider,omitempty"`

	// MetricsServer is the Prometheus address used by metric checks that carry their own
	// query and by templates that name no address.
	// +optional
	MetricsServer string `json:"metricsServer,omitempty"`

	// TargetRef names what is released: a Deployment, DaemonSet or Service in Kubernetes
	// mode, a Workload in standalone mode.
	TargetRef LocalObjectReference `json:"targetRef"`

	// AutoscalerRef names an autoscaler of the target, copied for the primary.
	// +optional
	AutoscalerRef *AutoscalerReference `json:"autoscalerRef,omitempty"`

	// IngressRef names an NGINX Ingress (kept from Flagger manifests; unused by this mesh).
	// +optional
	IngressRef *LocalObjectReference `json:"ingressRef,omitempty"`

	// RouteRef names an APISIX route (kept from Flagger manifests; unused by this mesh).
	// +optional
	RouteRef *LocalObjectReference `json:"routeRef,omitempty"`

	// UpstreamRef names a Gloo Upstream (kept from Flagger manifests; unused by this mesh).
	// +optional
	UpstreamRef *CrossNamespaceObjectReference `json:"upstreamRef,omitempty"`

	// Service describes the apex, primary and canary services and their routing.
	Service CanaryService `json:"service"`

	// Analysis says how a new revision is judged and how traffic moves to it.
	// +optional
	Analysis *CanaryAnalysis `json:"analysis,omitempty"`

	// CanaryAnalysis is the older name of Analysis, accepted from old manifests; Default
	// moves it to Analysis.
	// +optional
	CanaryAnalysis *CanaryAnalysis `json:"canaryAnalysis,omitempty"`

	// ProgressDeadlineSeconds bounds how long the target may take to become ready before
	// the release counts as failed. Defaults to 600.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// SkipAnalysis promotes every new revision at once, without checks.
	// +optional
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`

	// RevertOnDeletion gives the target back its traffic when the Canary is deleted,
	// instead of leaving the primary in place.
	// +optional
	RevertOnDeletion bool `json:"revertOnDeletion,omitempty"`

	// Suspend stops new releases from starting and pauses one under way.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// LocalObjectReference names an object in the Canary's namespace.
type LocalObjectReference struct {
	// APIVersion of the referent.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the referent.
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the referent.
	Name string `json:"name"`
}

// CrossNamespaceObjectReference names an object, by default in the referrer's namespace.
type CrossNamespaceObjectReference struct {
	// APIVersion of the referent.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the referent.
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the referent.
	Name string `json:"name"`
	// Namespace of the referent; empty means the referrer's own.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// AutoscalerReference names an autoscaler (HorizontalPodAutoscaler or KEDA ScaledObject)
// and how its copy for the primary differs.
type AutoscalerReference struct {
	// APIVersion of the autoscaler.
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind of the autoscaler: HorizontalPodAutoscaler or ScaledObject.
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the autoscaler.
	Name string `json:"name"`
	// PrimaryScalerQueries replaces, by trigger id, the queries of the primary's scaler.
	// +optional
	PrimaryScalerQueries map[string]string `json:"primaryScalerQueries,omitempty"`
	// PrimaryScalerReplicas overrides the replica bounds of the primary's scaler.
	// +optional
	PrimaryScalerReplicas *ScalerReplicas `json:"primaryScalerReplicas,omitempty"`
}

// ScalerReplicas bounds the replicas of a scaler.
type ScalerReplicas struct {
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// +optional
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
}

// CanaryService describes the services a Canary creates (apex, primary, canary) and the
// routing of the apex.
type CanaryService struct {
	// Name of the apex service; defaults to the target's name.
	// +optional
	Name string `json:"name,omitempty"`
	// Port the apex service listens on.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
	// PortName names the port; defaults to http. "grpc" makes the route a gRPC route.
	// +optional
	PortName string `json:"portName,omitempty"`
	// TargetPort is the target's port, by number or name; defaults to Port.
	// +optional
	TargetPort *intstr.IntOrString `json:"targetPort,omitempty"`
	// AppProtocol is the application protocol of the port (Kubernetes appProtocol).
	// +optional
	AppProtocol string `json:"appProtocol,omitempty"`
	// TrafficDistribution is the Kubernetes Service trafficDistribution of the generated
	// services: PreferClose, PreferSameZone or PreferSameNode.
	// +optional
	TrafficDistribution string `json:"trafficDistribution,omitempty"`
	// PortDiscovery also exposes every other port of the target.
	// +optional
	PortDiscovery bool `json:"portDiscovery,omitempty"`
	// Headless makes the generated Kubernetes services headless.
	// +optional
	Headless bool `json:"headless,omitempty"`
	// Timeout of a request through the apex route, as a Go duration ("15s").
	// +optional
	Timeout string `json:"timeout,omitempty"`
	// BackendTimeout is the per-backend request timeout (Gateway API in Flagger).
	// +optional
	BackendTimeout string `json:"backendTimeout,omitempty"`
	// Gateways are Istio gateway names (kept from Flagger manifests).
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// GatewayRefs are the Gateway API parents of the route (kept from Flagger manifests).
	// +optional
	GatewayRefs []GatewayReference `json:"gatewayRefs,omitempty"`
	// Hosts the apex answers for; "*" accepts any host, as through a virtual gateway.
	// +optional
	Hosts []string `json:"hosts,omitempty"`
	// Delegation makes an Istio delegate VirtualService (kept from Flagger manifests).
	// +optional
	Delegation bool `json:"delegation,omitempty"`
	// TrafficPolicy is an Istio DestinationRule traffic policy, kept as given.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	TrafficPolicy *runtime.RawExtension `json:"trafficPolicy,omitempty"`
	// Match restricts the apex route to requests matching any of these conditions.
	// +optional
	Match []HTTPMatchRequest `json:"match,omitempty"`
	// Rewrite rewrites the URI or authority of requests before forwarding them.
	// +optional
	Rewrite *HTTPRewrite `json:"rewrite,omitempty"`
	// Retries is the retry policy of the apex route.
	// +optional
	Retries *HTTPRetry `json:"retries,omitempty"`
	// Headers adds, sets or removes request and response headers.
	// +optional
	Headers *HTTPHeaders `json:"headers,omitempty"`
	// CorsPolicy is the cross-origin resource sharing policy of the apex route.
	// +optional
	CorsPolicy *CorsPolicy `json:"corsPolicy,omitempty"`
	// Mirror lists Gateway API mirror filters (kept from Flagger manifests).
	// +optional
	Mirror []HTTPRequestMirror `json:"mirror,omitempty"`
	// MeshName is the mesh the generated virtual nodes and virtual service belong to.
	// +optional
	MeshName string `json:"meshName,omitempty"`
	// Backends are the virtual services the target calls, added to its virtual nodes.
	// +optional
	Backends []string `json:"backends,omitempty"`
	// Apex holds labels and annotations for the apex service.
	// +optional
	Apex *CustomMetadata `json:"apex,omitempty"`
	// Primary holds labels and annotations for the primary service.
	// +optional
	Primary *CustomMetadata `json:"primary,omitempty"`
	// Canary holds labels and annotations for the canary service.
	// +optional
	Canary *CustomMetadata `json:"canary,omitempty"`
	// UnmanagedMetadata lists label and annotation keys on generated objects that others
	// own and that are left alone.
	// +optional
	UnmanagedMetadata *UnmanagedMetadata `json:"unmanagedMetadata,omitempty"`
}

// CustomMetadata holds labels and annotations to set on a generated object.
type CustomMetadata struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// UnmanagedMetadata lists metadata keys owned by someone else.
type UnmanagedMetadata struct {
	// +optional
	Labels []string `json:"labels,omitempty"`
	// +optional
	Annotations []string `json:"annotations,omitempty"`
}

// GatewayReference is a Gateway API parent reference.
type GatewayReference struct {
	// +optional
	Group string `json:"group,omitempty"`
	// +optional
	Kind string `json:"kind,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// +optional
	SectionName string `json:"sectionName,omitempty"`
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// HTTPRequestMirror is a Gateway API request mirror filter.
type HTTPRequestMirror struct {
	BackendRef BackendObjectReference `json:"backendRef"`
}

// BackendObjectReference is a Gateway API backend reference.
type BackendObjectReference struct {
	// +optional
	Group string `json:"group,omitempty"`
	// +optional
	Kind string `json:"kind,omitempty"`
	Name string `json:"name"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// StringMatch matches a string in exactly one way: exactly, by prefix, by suffix or by
// an RE2 regular expression.
type StringMatch struct {
	// +optional
	Exact string `json:"exact,omitempty"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// +optional
	Suffix string `json:"suffix,omitempty"`
	// +optional
	Regex string `json:"regex,omitempty"`
}

// HTTPMatchRequest is a set of conditions that all hold for a matching request. Cookies
// are matched through the "cookie" header, as in Flagger's A/B testing examples.
type HTTPMatchRequest struct {
	// Name of the match, for logs.
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	URI *StringMatch `json:"uri,omitempty"`
	// +optional
	Scheme *StringMatch `json:"scheme,omitempty"`
	// +optional
	Method *StringMatch `json:"method,omitempty"`
	// +optional
	Authority *StringMatch `json:"authority,omitempty"`
	// Headers to match, by lower-case header name.
	// +optional
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// Port the request was addressed to.
	// +optional
	Port uint32 `json:"port,omitempty"`
	// SourceLabels restricts the match to callers carrying these labels.
	// +optional
	SourceLabels map[string]string `json:"sourceLabels,omitempty"`
	// Gateways restricts the match to these gateways.
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// QueryParams to match, by parameter name.
	// +optional
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`
	// IgnoreURICase makes the URI match case-insensitive.
	// +optional
	IgnoreURICase bool `json:"ignoreUriCase,omitempty"`
	// WithoutHeaders matches requests whose headers do NOT match these.
	// +optional
	WithoutHeaders map[string]StringMatch `json:"withoutHeaders,omitempty"`
	// SourceNamespace restricts the match to callers in this namespace.
	// +optional
	SourceNamespace string `json:"sourceNamespace,omitempty"`
}

// HTTPRewrite rewrites a request before it is forwarded.
type HTTPRewrite struct {
	// +optional
	URI string `json:"uri,omitempty"`
	// +optional
	Authority string `json:"authority,omitempty"`
	// Type of path rewrite (Gateway API): ReplaceFullPath or ReplacePrefixMatch.
	// +optional
	Type string `json:"type,omitempty"`
}

// HTTPRetry is a retry policy.
type HTTPRetry struct {
	// Attempts is the number of retries of one request.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// PerTryTimeout bounds each attempt, as a Go duration ("1s").
	// +optional
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// RetryOn lists the conditions that cause a retry, comma-separated, with Envoy's
	// names (gateway-error, client-error, stream-error, 5xx, reset, connect-failure...).
	// +optional
	RetryOn string `json:"retryOn,omitempty"`
}

// HTTPHeaders manipulates request and response headers.
type HTTPHeaders struct {
	// +optional
	Request *HeaderOperations `json:"request,omitempty"`
	// +optional
	Response *HeaderOperations `json:"response,omitempty"`
}

// HeaderOperations sets, appends to and removes headers.
type HeaderOperations struct {
	// +optional
	Set map[string]string `json:"set,omitempty"`
	// +optional
	Add map[string]string `json:"add,omitempty"`
	// +optional
	Remove []string `json:"remove,omitempty"`
}

// CorsPolicy is a cross-origin resource sharing policy.
type CorsPolicy struct {
	// AllowOrigin lists allowed origins exactly; older form of AllowOrigins.
	// +optional
	AllowOrigin []string `json:"allowOrigin,omitempty"`
	// +optional
	AllowOrigins []StringMatch `json:"allowOrigins,omitempty"`
	// +optional
	AllowMethods []string `json:"allowMethods,omitempty"`
	// +optional
	AllowHeaders []string `json:"allowHeaders,omitempty"`
	// +optional
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// MaxAge is how long a preflight answer may be cached, as a Go duration.
	// +optional
	MaxAge string `json:"maxAge,omitempty"`
	// +optional
	AllowCredentials *bool `json:"allowCredentials,omitempty"`
}
