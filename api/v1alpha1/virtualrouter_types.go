package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// VirtualRouterListener is the port a virtual router receives traffic on.
type VirtualRouterListener struct {
	// PortMapping is the port and protocol.
	PortMapping PortMapping `json:"portMapping"`
}

// WeightedTarget is a virtual node that receives a share of a route's traffic. Exactly one of
// virtualNodeRef or virtualNodeARN names it.
type WeightedTarget struct {
	// VirtualNodeRef names the VirtualNode object.
	// +optional
	VirtualNodeRef *VirtualNodeReference `json:"virtualNodeRef,omitempty"`
	// VirtualNodeARN names an App Mesh virtual node by its ARN.
	// +optional
	VirtualNodeARN *string `json:"virtualNodeARN,omitempty"`
	// Weight is the target's share relative to the route's other targets, 0 to 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight int64 `json:"weight"`
	// Port of the target's listener, for nodes with more than one.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
	// ResponseCookies are set (Set-Cookie) on every response this target serves, on HTTP
	// and HTTP/2 routes: how a canary's session affinity hands out its cookie. A
	// Canarymesh extension: App Mesh targets have no such field.
	// +kubebuilder:validation:MaxItems=4
	// +optional
	ResponseCookies []ResponseCookie `json:"responseCookies,omitempty"`
}

// ResponseCookie is a cookie a weighted target sets on its responses. A Canarymesh
// extension.
type ResponseCookie struct {
	// Name of the cookie: an HTTP token.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Value of the cookie, without quotes, semicolons, commas, backslashes or spaces.
	Value string `json:"value"`
	// MaxAge in seconds: 0 leaves it out (a session cookie), a negative value tells the
	// client to drop the cookie at once.
	// +optional
	MaxAge int64 `json:"maxAge,omitempty"`
	// Path of the cookie.
	// +optional
	Path string `json:"path,omitempty"`
	// Domain of the cookie.
	// +optional
	Domain string `json:"domain,omitempty"`
	// SameSite is Strict, Lax or None.
	// +kubebuilder:validation:Enum=Strict;Lax;None
	// +optional
	SameSite string `json:"sameSite,omitempty"`
	// Secure sends the cookie over HTTPS only.
	// +optional
	Secure bool `json:"secure,omitempty"`
	// HTTPOnly hides the cookie from scripts.
	// +optional
	HTTPOnly bool `json:"httpOnly,omitempty"`
	// Partitioned stores the cookie in partitioned storage.
	// +optional
	Partitioned bool `json:"partitioned,omitempty"`
}

// RouteMirror copies a share of a route's requests to a virtual node, whose answers are
// discarded (traffic shadowing): the requests are still served by the weighted targets.
// A Canarymesh extension: App Mesh routes cannot mirror.
type RouteMirror struct {
	// VirtualNodeRef names the VirtualNode the copies go to.
	VirtualNodeRef VirtualNodeReference `json:"virtualNodeRef"`
	// Port of the node's listener, for nodes with more than one.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
	// Percent of the route's requests copied, 1 to 100.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Percent int64 `json:"percent"`
}

// HTTPRetryPolicyEvent is an HTTP outcome worth a retry.
// +kubebuilder:validation:Enum=server-error;gateway-error;client-error;stream-error
type HTTPRetryPolicyEvent string

// TCPRetryPolicyEvent is a TCP outcome worth a retry.
// +kubebuilder:validation:Enum=connection-error
type TCPRetryPolicyEvent string

// GRPCRetryPolicyEvent is a gRPC status worth a retry.
// +kubebuilder:validation:Enum=cancelled;deadline-exceeded;internal;resource-exhausted;unavailable
type GRPCRetryPolicyEvent string

var (
	httpRetryEvents = []string{"server-error", "gateway-error", "client-error", "stream-error"}
	tcpRetryEvents  = []string{"connection-error"}
	grpcRetryEvents = []string{"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"}
)

// Retry event list limits (App Mesh).
const (
	maxHTTPRetryEvents = 25
	maxTCPRetryEvents  = 1
	maxGRPCRetryEvents = 5
)

// HTTPRouteMatch is what a request must look like to take an HTTP or HTTP/2 route. Exactly
// one of prefix or path is set.
type HTTPRouteMatch struct {
	// Headers the request must carry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Headers []HTTPRouteHeader `json:"headers,omitempty"`
	// Method of the request.
	// +kubebuilder:validation:Enum=CONNECT;DELETE;GET;HEAD;OPTIONS;PATCH;POST;PUT;TRACE
	// +optional
	Method *string `json:"method,omitempty"`
	// Prefix the path starts with; it starts with "/".
	// +optional
	Prefix *string `json:"prefix,omitempty"`
	// Scheme of the request: http or https.
	// +kubebuilder:validation:Enum=http;https
	// +optional
	Scheme *string `json:"scheme,omitempty"`
	// Path matches the whole path.
	// +optional
	Path *HTTPPathMatch `json:"path,omitempty"`
	// QueryParameters the request must carry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +optional
	QueryParameters []HTTPQueryParameters `json:"queryParameters,omitempty"`
	// Port the request arrived on, for routers with more than one listener.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
}

// HTTPRouteAction is where a matched request goes.
type HTTPRouteAction struct {
	// WeightedTargets share the traffic by weight; 1 to 10 of them.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	WeightedTargets []WeightedTarget `json:"weightedTargets"`
	// Mirror copies a share of the requests to another virtual node, whose answers are
	// discarded. A Canarymesh extension.
	// +optional
	Mirror *RouteMirror `json:"mirror,omitempty"`
}

// HTTPRetryPolicy retries failed HTTP requests. At least one of the event lists is set.
type HTTPRetryPolicy struct {
	// HTTPRetryEvents are the HTTP outcomes to retry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=25
	// +optional
	HTTPRetryEvents []HTTPRetryPolicyEvent `json:"httpRetryEvents,omitempty"`
	// TCPRetryEvents are the connection outcomes to retry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1
	// +optional
	TCPRetryEvents []TCPRetryPolicyEvent `json:"tcpRetryEvents,omitempty"`
	// MaxRetries is the most retries of one request.
	// +kubebuilder:validation:Minimum=0
	MaxRetries int64 `json:"maxRetries"`
	// PerRetryTimeout bounds each attempt.
	PerRetryTimeout Duration `json:"perRetryTimeout"`
}

// HTTPRoute routes HTTP or HTTP/2 requests.
type HTTPRoute struct {
	// Match selects the requests.
	Match HTTPRouteMatch `json:"match"`
	// Action says where they go.
	Action HTTPRouteAction `json:"action"`
	// RetryPolicy retries failures.
	// +optional
	RetryPolicy *HTTPRetryPolicy `json:"retryPolicy,omitempty"`
	// Timeout bounds requests on the route.
	// +optional
	Timeout *HTTPTimeout `json:"timeout,omitempty"`
}

// TCPRouteAction is where a matched connection goes.
type TCPRouteAction struct {
	// WeightedTargets share the connections by weight; 1 to 10 of them.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	WeightedTargets []WeightedTarget `json:"weightedTargets"`
}

// TCPRouteMatch is what a connection must look like to take a TCP route.
type TCPRouteMatch struct {
	// Port the connection arrived on, for routers with more than one listener.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
}

// TCPRoute routes TCP connections.
type TCPRoute struct {
	// Action says where connections go.
	Action TCPRouteAction `json:"action"`
	// Match selects the connections; every one when empty.
	// +optional
	Match *TCPRouteMatch `json:"match,omitempty"`
	// Timeout bounds idle connections.
	// +optional
	Timeout *TCPTimeout `json:"timeout,omitempty"`
}

// GRPCRouteMatch is what a call must look like to take a gRPC route.
type GRPCRouteMatch struct {
	// MethodName of the call; needs serviceName.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=50
	// +optional
	MethodName *string `json:"methodName,omitempty"`
	// ServiceName is the fully qualified gRPC service name.
	// +optional
	ServiceName *string `json:"serviceName,omitempty"`
	// Metadata the call must carry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Metadata []GRPCRouteMetadata `json:"metadata,omitempty"`
	// Port the call arrived on, for routers with more than one listener.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
}

// GRPCRouteAction is where a matched call goes.
type GRPCRouteAction struct {
	// WeightedTargets share the calls by weight; 1 to 10 of them.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	WeightedTargets []WeightedTarget `json:"weightedTargets"`
}

// GRPCRetryPolicy retries failed gRPC calls. At least one of the event lists is set.
type GRPCRetryPolicy struct {
	// GRPCRetryEvents are the gRPC statuses to retry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=5
	// +optional
	GRPCRetryEvents []GRPCRetryPolicyEvent `json:"grpcRetryEvents,omitempty"`
	// HTTPRetryEvents are the HTTP outcomes to retry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=25
	// +optional
	HTTPRetryEvents []HTTPRetryPolicyEvent `json:"httpRetryEvents,omitempty"`
	// TCPRetryEvents are the connection outcomes to retry.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1
	// +optional
	TCPRetryEvents []TCPRetryPolicyEvent `json:"tcpRetryEvents,omitempty"`
	// MaxRetries is the most retries of one call.
	// +kubebuilder:validation:Minimum=0
	MaxRetries int64 `json:"maxRetries"`
	// PerRetryTimeout bounds each attempt.
	PerRetryTimeout Duration `json:"perRetryTimeout"`
}

// GRPCRoute routes gRPC calls.
type GRPCRoute struct {
	// Match selects the calls.
	Match GRPCRouteMatch `json:"match"`
	// Action says where they go.
	Action GRPCRouteAction `json:"action"`
	// RetryPolicy retries failures.
	// +optional
	RetryPolicy *GRPCRetryPolicy `json:"retryPolicy,omitempty"`
	// Timeout bounds calls on the route.
	// +optional
	Timeout *GRPCTimeout `json:"timeout,omitempty"`
}

// Route is one route of a virtual router: exactly one of grpcRoute, httpRoute, http2Route
// or tcpRoute.
type Route struct {
	// Name of the route, unique within the router.
	Name string `json:"name"`
	// GRPCRoute routes gRPC calls.
	// +optional
	GRPCRoute *GRPCRoute `json:"grpcRoute,omitempty"`
	// HTTPRoute routes HTTP/1.1 requests.
	// +optional
	HTTPRoute *HTTPRoute `json:"httpRoute,omitempty"`
	// HTTP2Route routes HTTP/2 requests.
	// +optional
	HTTP2Route *HTTPRoute `json:"http2Route,omitempty"`
	// TCPRoute routes TCP connections.
	// +optional
	TCPRoute *TCPRoute `json:"tcpRoute,omitempty"`
	// Priority orders the routes, 0 first and 1000 last; routes without one come after.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Priority *int64 `json:"priority,omitempty"`
}

// VirtualRouterSpec is the desired state of a VirtualRouter.
type VirtualRouterSpec struct {
	// AWSName is the router's name in App Mesh terms; "<name>_<namespace>" when empty.
	// +optional
	AWSName *string `json:"awsName,omitempty"`
	// Listeners the router receives traffic on; at most one (App Mesh: optional, and one
	// when given). Without one, the port comes from the route's targets.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1
	// +optional
	Listeners []VirtualRouterListener `json:"listeners,omitempty"`
	// Routes decide which virtual nodes get the traffic, and in what shares.
	// +optional
	Routes []Route `json:"routes,omitempty"`
	// MeshRef is the Mesh the router belongs to; filled in by the system.
	// +optional
	MeshRef *MeshReference `json:"meshRef,omitempty"`
}

// VirtualRouter splits a virtual service's traffic over virtual nodes by its routes. A
// canary's weights are the weights of its apex router's route.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=vr,categories=canarymesh
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.routes[0]..weightedTargets[0].virtualNodeRef.name`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.spec.routes[0]..weightedTargets[0].weight`
// +kubebuilder:printcolumn:name="Target2",type=string,JSONPath=`.spec.routes[0]..weightedTargets[1].virtualNodeRef.name`
// +kubebuilder:printcolumn:name="Weight2",type=integer,JSONPath=`.spec.routes[0]..weightedTargets[1].weight`
// +kubebuilder:printcolumn:name="Routes",type=string,JSONPath=`.spec.routes[*].name`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VirtualRouter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VirtualRouterSpec `json:"spec,omitempty"`
	Status MeshObjectStatus  `json:"status,omitempty"`
}

// VirtualRouterList is a list of VirtualRouter.
//
// +kubebuilder:object:root=true
type VirtualRouterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualRouter `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "VirtualRouter", Plural: "virtualrouters", Singular: "virtualrouter", Short: []string{"vr"},
		Namespaced: true, New: func() Object { return &VirtualRouter{} }})
	registerList(func() runtime.Object { return &VirtualRouterList{} })
}

// Default fills awsName as App Mesh's controller does: "<name>_<namespace>".
func (vr *VirtualRouter) Default() {
	defaultAWSName(&vr.Spec.AWSName, "%s_%s", vr.Name, vr.Namespace)
}
