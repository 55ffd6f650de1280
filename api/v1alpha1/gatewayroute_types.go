package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Values of a rewrite's defaultPrefix and defaultTargetHostname.
const (
	RewriteEnabled  = "ENABLED"
	RewriteDisabled = "DISABLED"
)

// GatewayRouteVirtualService is the virtual service a gateway route sends traffic to.
// Exactly one of virtualServiceRef or virtualServiceARN names it.
type GatewayRouteVirtualService struct {
	// VirtualServiceRef names the VirtualService object.
	// +optional
	VirtualServiceRef *VirtualServiceReference `json:"virtualServiceRef,omitempty"`
	// VirtualServiceARN names an App Mesh virtual service by its ARN.
	// +optional
	VirtualServiceARN *string `json:"virtualServiceARN,omitempty"`
}

// GatewayRouteTarget is where a gateway route sends traffic.
type GatewayRouteTarget struct {
	// VirtualService to send to.
	VirtualService GatewayRouteVirtualService `json:"virtualService"`
	// Port of the virtual service's provider listener, for providers with more than one.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
}

// GatewayRouteHostnameMatch matches the request's host: exactly one of exact or suffix.
type GatewayRouteHostnameMatch struct {
	// Exact matches the whole host name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Exact *string `json:"exact,omitempty"`
	// Suffix matches the end of the host name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Suffix *string `json:"suffix,omitempty"`
}

// GatewayRouteHostnameRewrite says whether the Host header is rewritten to the target
// virtual service's name.
type GatewayRouteHostnameRewrite struct {
	// DefaultTargetHostname is ENABLED (App Mesh's default) or DISABLED.
	// +kubebuilder:validation:Enum=ENABLED;DISABLED
	// +optional
	DefaultTargetHostname *string `json:"defaultTargetHostname,omitempty"`
}

// GatewayRoutePrefixRewrite rewrites the matched path prefix: either the default
// behaviour (defaultPrefix) or a given value, not both.
type GatewayRoutePrefixRewrite struct {
	// DefaultPrefix is ENABLED (replace the matched prefix with "/") or DISABLED.
	// +kubebuilder:validation:Enum=ENABLED;DISABLED
	// +optional
	DefaultPrefix *string `json:"defaultPrefix,omitempty"`
	// Value replaces the matched prefix; it starts and ends with "/".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Value *string `json:"value,omitempty"`
}

// GatewayRoutePathRewrite replaces the whole path.
type GatewayRoutePathRewrite struct {
	// Exact is the new path.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Exact *string `json:"exact,omitempty"`
}

// GRPCGatewayRouteRewrite rewrites a gRPC call on its way through the gateway.
type GRPCGatewayRouteRewrite struct {
	// Hostname rewrite.
	// +optional
	Hostname *GatewayRouteHostnameRewrite `json:"hostname,omitempty"`
}

// GRPCGatewayRouteMatch is what a call must look like to take a gRPC gateway route; at
// least one of serviceName or hostname is set.
type GRPCGatewayRouteMatch struct {
	// ServiceName is the fully qualified gRPC service name.
	// +optional
	ServiceName *string `json:"serviceName,omitempty"`
	// Hostname the call was sent to.
	// +optional
	Hostname *GatewayRouteHostnameMatch `json:"hostname,omitempty"`
	// Metadata the call must carry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Metadata []GRPCRouteMetadata `json:"metadata,omitempty"`
	// Port the call arrived on, for gateways with more than one listener.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
}

// GRPCGatewayRouteAction is where a matched call goes.
type GRPCGatewayRouteAction struct {
	// Target virtual service.
	Target GatewayRouteTarget `json:"target"`
	// Rewrite applied on the way.
	// +optional
	Rewrite *GRPCGatewayRouteRewrite `json:"rewrite,omitempty"`
}

// GRPCGatewayRoute routes gRPC calls into the mesh.
type GRPCGatewayRoute struct {
	// Match selects the calls.
	Match GRPCGatewayRouteMatch `json:"match"`
	// Action says where they go.
	Action GRPCGatewayRouteAction `json:"action"`
}

// HTTPGatewayRouteMatch is what a request must look like to take an HTTP or HTTP/2 gateway
// route; at least one of prefix, path or hostname is set, and not both prefix and path.
type HTTPGatewayRouteMatch struct {
	// Prefix the path starts with; it starts with "/".
	// +optional
	Prefix *string `json:"prefix,omitempty"`
	// Path matches the whole path.
	// +optional
	Path *HTTPPathMatch `json:"path,omitempty"`
	// QueryParameters the request must carry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +optional
	QueryParameters []HTTPQueryParameters `json:"queryParameters,omitempty"`
	// Method of the request.
	// +kubebuilder:validation:Enum=CONNECT;DELETE;GET;HEAD;OPTIONS;PATCH;POST;PUT;TRACE
	// +optional
	Method *string `json:"method,omitempty"`
	// Hostname the request was sent to.
	// +optional
	Hostname *GatewayRouteHostnameMatch `json:"hostname,omitempty"`
	// Headers the request must carry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Headers []HTTPRouteHeader `json:"headers,omitempty"`
	// Port the request arrived on, for gateways with more than one listener.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
}

// HTTPGatewayRouteRewrite rewrites a request on its way through the gateway: at least one
// of prefix, path or hostname, and not both prefix and path.
type HTTPGatewayRouteRewrite struct {
	// Prefix rewrite of the path.
	// +optional
	Prefix *GatewayRoutePrefixRewrite `json:"prefix,omitempty"`
	// Path rewrite.
	// +optional
	Path *GatewayRoutePathRewrite `json:"path,omitempty"`
	// Hostname rewrite.
	// +optional
	Hostname *GatewayRouteHostnameRewrite `json:"hostname,omitempty"`
}

// HTTPGatewayRouteAction is where a matched request goes.
type HTTPGatewayRouteAction struct {
	// Target virtual service.
	Target GatewayRouteTarget `json:"target"`
	// Rewrite applied on the way.
	// +optional
	Rewrite *HTTPGatewayRouteRewrite `json:"rewrite,omitempty"`
}

// HTTPGatewayRoute routes HTTP or HTTP/2 requests into the mesh.
type HTTPGatewayRoute struct {
	// Match selects the requests.
	Match HTTPGatewayRouteMatch `json:"match"`
	// Action says where they go.
	Action HTTPGatewayRouteAction `json:"action"`
}

// GatewayRouteSpec is the desired state of a GatewayRoute: exactly one of grpcRoute,
// httpRoute or http2Route.
type GatewayRouteSpec struct {
	// AWSName is the route's name in App Mesh terms; "<name>_<namespace>" when empty.
	// +optional
	AWSName *string `json:"awsName,omitempty"`
	// Priority orders the gateway's routes, 0 first and 1000 last; routes without one come
	// after.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Priority *int64 `json:"priority,omitempty"`
	// GRPCRoute routes gRPC calls.
	// +optional
	GRPCRoute *GRPCGatewayRoute `json:"grpcRoute,omitempty"`
	// HTTPRoute routes HTTP/1.1 requests.
	// +optional
	HTTPRoute *HTTPGatewayRoute `json:"httpRoute,omitempty"`
	// HTTP2Route routes HTTP/2 requests.
	// +optional
	HTTP2Route *HTTPGatewayRoute `json:"http2Route,omitempty"`
	// VirtualGatewayRef is the gateway the route is attached to; filled in by the system
	// from the gateways' selectors.
	// +optional
	VirtualGatewayRef *VirtualGatewayReference `json:"virtualGatewayRef,omitempty"`
	// MeshRef is the Mesh the route belongs to; filled in by the system.
	// +optional
	MeshRef *MeshReference `json:"meshRef,omitempty"`
}

// GatewayRoute sends traffic entering through a VirtualGateway to a virtual service.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=gr,categories=canarymesh
// +kubebuilder:printcolumn:name="Prefix",type=string,JSONPath=`.spec.httpRoute.match.prefix`
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.httpRoute.action.target.virtualService.virtualServiceRef.name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GatewayRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GatewayRouteSpec `json:"spec,omitempty"`
	Status MeshObjectStatus `json:"status,omitempty"`
}

// GatewayRouteList is a list of GatewayRoute.
//
// +kubebuilder:object:root=true
type GatewayRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GatewayRoute `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "GatewayRoute", Plural: "gatewayroutes", Singular: "gatewayroute", Short: []string{"gr"},
		Namespaced: true, New: func() Object { return &GatewayRoute{} }})
	registerList(func() runtime.Object { return &GatewayRouteList{} })
}

// Default fills awsName as App Mesh's controller does: "<name>_<namespace>".
func (gr *GatewayRoute) Default() {
	defaultAWSName(&gr.Spec.AWSName, "%s_%s", gr.Name, gr.Namespace)
}
