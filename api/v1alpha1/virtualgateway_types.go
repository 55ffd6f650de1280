package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// VirtualGatewayPortProtocol is a protocol a virtual gateway listens with: grpc, http or
// http2 (a gateway does not route plain TCP).
// +kubebuilder:validation:Enum=grpc;http;http2
type VirtualGatewayPortProtocol string

// Virtual gateway protocols.
const (
	VirtualGatewayPortProtocolGRPC  VirtualGatewayPortProtocol = "grpc"
	VirtualGatewayPortProtocolHTTP  VirtualGatewayPortProtocol = "http"
	VirtualGatewayPortProtocolHTTP2 VirtualGatewayPortProtocol = "http2"
)

var gatewayProtocols = []string{string(VirtualGatewayPortProtocolGRPC), string(VirtualGatewayPortProtocolHTTP), string(VirtualGatewayPortProtocolHTTP2)}

// VirtualGatewayPortMapping is the port and protocol a gateway listens on.
type VirtualGatewayPortMapping struct {
	// Port is the port number.
	Port PortNumber `json:"port"`
	// Protocol is grpc, http or http2.
	Protocol VirtualGatewayPortProtocol `json:"protocol"`
}

// VirtualGatewayHealthCheckPolicy is an active health check of a gateway's listener.
type VirtualGatewayHealthCheckPolicy struct {
	// HealthyThreshold is how many checks in a row must pass to mark the gateway healthy.
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=10
	HealthyThreshold int64 `json:"healthyThreshold"`
	// IntervalMillis is the time between checks.
	// +kubebuilder:validation:Minimum=5000
	// +kubebuilder:validation:Maximum=300000
	IntervalMillis int64 `json:"intervalMillis"`
	// Path is requested for http and http2 checks; grpc checks ignore it.
	// +optional
	Path *string `json:"path,omitempty"`
	// Port to check; the listener's port when empty.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
	// Protocol of the check: grpc, http or http2.
	Protocol VirtualGatewayPortProtocol `json:"protocol"`
	// TimeoutMillis is how long one check may take.
	// +kubebuilder:validation:Minimum=2000
	// +kubebuilder:validation:Maximum=60000
	TimeoutMillis int64 `json:"timeoutMillis"`
	// UnhealthyThreshold is how many checks in a row must fail to mark the gateway unhealthy.
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=10
	UnhealthyThreshold int64 `json:"unhealthyThreshold"`
}

// VirtualGatewayConnectionPool caps connections through the gateway. Exactly one member is
// set, and it names the listener's protocol.
type VirtualGatewayConnectionPool struct {
	// HTTP pool, for an http listener.
	// +optional
	HTTP *HTTPConnectionPool `json:"http,omitempty"`
	// HTTP2 pool, for an http2 listener.
	// +optional
	HTTP2 *HTTP2ConnectionPool `json:"http2,omitempty"`
	// GRPC pool, for a grpc listener.
	// +optional
	GRPC *GRPCConnectionPool `json:"grpc,omitempty"`
}

// VirtualGatewayListener is the port a gateway receives traffic from outside the mesh on.
type VirtualGatewayListener struct {
	// PortMapping is the port and protocol.
	PortMapping VirtualGatewayPortMapping `json:"portMapping"`
	// HealthCheck actively checks the gateway.
	// +optional
	HealthCheck *VirtualGatewayHealthCheckPolicy `json:"healthCheck,omitempty"`
	// ConnectionPool caps connections through the gateway.
	// +optional
	ConnectionPool *VirtualGatewayConnectionPool `json:"connectionPool,omitempty"`
	// TLS terminated by the listener.
	// +optional
	TLS *VirtualGatewayListenerTLS `json:"tls,omitempty"`
}

// VirtualGatewaySpec is the desired state of a VirtualGateway.
type VirtualGatewaySpec struct {
	// AWSName is the gateway's name in App Mesh terms; "<name>_<namespace>" when empty.
	// +optional
	AWSName *string `json:"awsName,omitempty"`
	// NamespaceSelector picks the namespaces whose GatewayRoutes attach to this gateway.
	// An empty selector picks every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// PodSelector picks the pods (or workloads) that run this gateway. An empty selector
	// picks every one in the namespace; a nil one picks none.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// GatewayRouteSelector picks GatewayRoutes by label; every one in the selected
	// namespaces when empty.
	// +optional
	GatewayRouteSelector *metav1.LabelSelector `json:"gatewayRouteSelector,omitempty"`
	// Listeners the gateway receives traffic on; exactly one.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1
	Listeners []VirtualGatewayListener `json:"listeners,omitempty"`
	// Logging configures the gateway's access log.
	// +optional
	Logging *Logging `json:"logging,omitempty"`
	// BackendDefaults apply to the virtual services the gateway's routes send traffic to.
	// +optional
	BackendDefaults *BackendDefaults `json:"backendDefaults,omitempty"`
	// MeshRef is the Mesh the gateway belongs to; filled in by the system.
	// +optional
	MeshRef *MeshReference `json:"meshRef,omitempty"`
}

// VirtualGateway lets traffic from outside the mesh in; its GatewayRoutes send it to
// virtual services.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=vg,categories=canarymesh
// +kubebuilder:printcolumn:name="Port",type=integer,JSONPath=`.spec.listeners[0].portMapping.port`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VirtualGateway struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VirtualGatewaySpec `json:"spec,omitempty"`
	Status MeshObjectStatus   `json:"status,omitempty"`
}

// VirtualGatewayList is a list of VirtualGateway.
//
// +kubebuilder:object:root=true
type VirtualGatewayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualGateway `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "VirtualGateway", Plural: "virtualgateways", Singular: "virtualgateway", Short: []string{"vg"},
		Namespaced: true, New: func() Object { return &VirtualGateway{} }})
	registerList(func() runtime.Object { return &VirtualGatewayList{} })
}

// Default fills awsName as App Mesh's controller does ("<name>_<namespace>") and client
// policy enforcement (true).
func (vg *VirtualGateway) Default() {
	defaultAWSName(&vg.Spec.AWSName, "%s_%s", vg.Name, vg.Namespace)
	if d := vg.Spec.BackendDefaults; d != nil {
		d.ClientPolicy.defaultEnforce()
	}
}

// virtualGatewayListeners is App Mesh's rule: a gateway has exactly one listener.
const virtualGatewayListeners = 1

// Validate checks the VirtualGateway on its own.
func (vg *VirtualGateway) Validate() ErrorList {
	errs := validateMeta(vg, true)
	spec := field.NewPath("spec")
	s := &vg.Spec
	checkAWSName(&errs, spec.Child("awsName"), s.AWSName)
	checkLabelSelector(&errs, spec.Child("namespaceSelector"), s.NamespaceSelector)
	checkLabelSelector(&errs, spec.Child("podSelector"), s.PodSelector)
	checkLabelSelector(&errs, spec.Child("gatewayRouteSelector"), s.GatewayRouteSelector)
	lp := spec.Child("listeners")
	checkCount(&errs, lp, len(s.Listeners), virtualGatewayListeners, virtualGatewayListeners)
	for i := range s.Listeners {
		s.Listeners[i].validate(&errs, lp.Index(i))
	}
	s.Logging.validate(&errs, spec.Child("logging"))
	s.BackendDefaults.validate(&errs, spec.Child("backendDefaults"))
	return errs
}

func (l *VirtualGatewayListener) validate(errs *ErrorList, p *field.Path) {
	pm := PortMapping{Port: l.PortMapping.Port, Protocol: PortProtocol(l.PortMapping.Protocol)}
	pm.validate(errs, p.Child("portMapping"), gatewayProtocols)
	if h := l.HealthCheck; h != nil {
		hc := HealthCheckPolicy{
			HealthyThreshold: h.HealthyThreshold, IntervalMillis: h.IntervalMillis, Path: h.Path, Port: h.Port,
			Protocol: PortProtocol(h.Protocol), TimeoutMillis: h.TimeoutMillis, UnhealthyThreshold: h.UnhealthyThreshold,
		}
		hc.validate(errs, p.Child("healthCheck"), gatewayProtocols)
	}
	if c := l.ConnectionPool; c != nil {
		cp := p.Child("connectionPool")
		set := []bool{c.HTTP != nil, c.HTTP2 != nil, c.GRPC != nil}
		checkExactlyOne(errs, cp, []string{"http", "http2", "grpc"}, set...)
		checkMemberProtocol(errs, cp, pm.Protocol, []PortProtocol{PortProtocolHTTP, PortProtocolHTTP2, PortProtocolGRPC}, set...)
		c.HTTP.validate(errs, cp.Child("http"))
		c.HTTP2.validate(errs, cp.Child("http2"))
		c.GRPC.validate(errs, cp.Child("grpc"))
	}
	l.TLS.validate(errs, p.Child("tls"))
}
