package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// DNS response types (App Mesh).
const (
	// DNSResponseTypeLoadBalancer treats the name as one logical endpoint (Envoy's logical
	// DNS); App Mesh's default.
	DNSResponseTypeLoadBalancer = "LOADBALANCER"
	// DNSResponseTypeEndpoints balances over every address the name resolves to (strict DNS).
	DNSResponseTypeEndpoints = "ENDPOINTS"
)

// OutlierDetection ejects an endpoint from load balancing for a while after it returns too
// many server errors. All four fields are set together.
type OutlierDetection struct {
	// MaxServerErrors is how many 5xx responses (or gRPC/TCP equivalents) within one
	// interval eject an endpoint.
	// +kubebuilder:validation:Minimum=1
	MaxServerErrors int64 `json:"maxServerErrors"`
	// Interval between ejection sweeps.
	Interval Duration `json:"interval"`
	// BaseEjectionDuration is how long an endpoint stays ejected the first time; each
	// further ejection multiplies it.
	BaseEjectionDuration Duration `json:"baseEjectionDuration"`
	// MaxEjectionPercent caps the share of endpoints ejected at once; 100 may eject all.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxEjectionPercent int64 `json:"maxEjectionPercent"`
}

// VirtualNodeConnectionPool caps connections to the local application. Exactly one member is
// set, and it names the listener's protocol.
type VirtualNodeConnectionPool struct {
	// TCP pool, for a tcp listener.
	// +optional
	TCP *TCPConnectionPool `json:"tcp,omitempty"`
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

// ListenerTimeout bounds requests the listener accepts; at most one member is set.
type ListenerTimeout struct {
	// TCP timeouts.
	// +optional
	TCP *TCPTimeout `json:"tcp,omitempty"`
	// HTTP timeouts.
	// +optional
	HTTP *HTTPTimeout `json:"http,omitempty"`
	// HTTP2 timeouts.
	// +optional
	HTTP2 *HTTPTimeout `json:"http2,omitempty"`
	// GRPC timeouts.
	// +optional
	GRPC *GRPCTimeout `json:"grpc,omitempty"`
}

// Listener is the port a virtual node receives traffic on and how that traffic is handled.
type Listener struct {
	// PortMapping is the port and protocol of the local application.
	PortMapping PortMapping `json:"portMapping"`
	// HealthCheck actively checks the local application.
	// +optional
	HealthCheck *HealthCheckPolicy `json:"healthCheck,omitempty"`
	// OutlierDetection ejects endpoints that keep failing.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// ConnectionPool caps connections to the local application.
	// +optional
	ConnectionPool *VirtualNodeConnectionPool `json:"connectionPool,omitempty"`
	// TLS terminated by the listener.
	// +optional
	TLS *ListenerTLS `json:"tls,omitempty"`
	// Timeout bounds requests on the listener.
	// +optional
	Timeout *ListenerTimeout `json:"timeout,omitempty"`
}

// AWSCloudMapInstanceAttribute filters Cloud Map instances by one attribute.
type AWSCloudMapInstanceAttribute struct {
	// Key of the attribute.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Key string `json:"key"`
	// Value the attribute must have.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Value string `json:"value"`
}

// AWSCloudMapServiceDiscovery finds endpoints in AWS Cloud Map. It is kept so App Mesh
// manifests decode; a self-hosted mesh has no Cloud Map to ask.
type AWSCloudMapServiceDiscovery struct {
	// NamespaceName is the Cloud Map namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	NamespaceName string `json:"namespaceName"`
	// ServiceName is the Cloud Map service.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	ServiceName string `json:"serviceName"`
	// Attributes filter the service's instances.
	// +optional
	Attributes []AWSCloudMapInstanceAttribute `json:"attributes,omitempty"`
	// IPPreference is IPv6_PREFERRED, IPv4_PREFERRED, IPv4_ONLY or IPv6_ONLY; the mesh's
	// preference when empty.
	// +kubebuilder:validation:Enum=IPv6_PREFERRED;IPv4_PREFERRED;IPv4_ONLY;IPv6_ONLY
	// +optional
	IPPreference *string `json:"ipPreference,omitempty"`
}

// DNSServiceDiscovery finds endpoints by resolving a DNS name.
type DNSServiceDiscovery struct {
	// Hostname to resolve.
	Hostname string `json:"hostname"`
	// ResponseType is LOADBALANCER (one logical endpoint, the default) or ENDPOINTS
	// (every resolved address is an endpoint).
	// +kubebuilder:validation:Enum=ENDPOINTS;LOADBALANCER
	// +optional
	ResponseType *string `json:"responseType,omitempty"`
	// IPPreference is IPv6_PREFERRED, IPv4_PREFERRED, IPv4_ONLY or IPv6_ONLY; the mesh's
	// preference when empty.
	// +kubebuilder:validation:Enum=IPv6_PREFERRED;IPv4_PREFERRED;IPv4_ONLY;IPv6_ONLY
	// +optional
	IPPreference *string `json:"ipPreference,omitempty"`
}

// StaticEndpoint is one fixed address of a virtual node, for hosts that no DNS knows
// (a VM, a laptop). Canarymesh's own extension to App Mesh's service discovery.
type StaticEndpoint struct {
	// Address is a host name or an IP address, without a port.
	Address string `json:"address"`
	// Port the endpoint serves on.
	Port PortNumber `json:"port"`
}

// ServiceDiscovery says how the endpoints of a virtual node are found: exactly one of dns,
// awsCloudMap or static.
type ServiceDiscovery struct {
	// AWSCloudMap looks endpoints up in AWS Cloud Map.
	// +optional
	AWSCloudMap *AWSCloudMapServiceDiscovery `json:"awsCloudMap,omitempty"`
	// DNS resolves a host name.
	// +optional
	DNS *DNSServiceDiscovery `json:"dns,omitempty"`
	// Static lists fixed endpoints (Canarymesh extension).
	// +optional
	Static []StaticEndpoint `json:"static,omitempty"`
}

// VirtualServiceBackend is a virtual service a virtual node calls. Exactly one of
// virtualServiceRef, virtualServiceARN or virtualServiceName names it.
type VirtualServiceBackend struct {
	// VirtualServiceRef names the VirtualService object.
	// +optional
	VirtualServiceRef *VirtualServiceReference `json:"virtualServiceRef,omitempty"`
	// VirtualServiceARN names an App Mesh virtual service by its ARN.
	// +optional
	VirtualServiceARN *string `json:"virtualServiceARN,omitempty"`
	// VirtualServiceName names a virtual service by its App Mesh name (its spec.awsName),
	// the way appmesh.k8s.aws/v1beta1 manifests did (Canarymesh extension).
	// +optional
	VirtualServiceName string `json:"virtualServiceName,omitempty"`
	// ClientPolicy for calls to this backend; backendDefaults' when empty.
	// +optional
	ClientPolicy *ClientPolicy `json:"clientPolicy,omitempty"`
}

// Backend is something a virtual node sends traffic to.
type Backend struct {
	// VirtualService the node calls.
	VirtualService VirtualServiceBackend `json:"virtualService"`
}

// VirtualNodeSpec is the desired state of a VirtualNode.
type VirtualNodeSpec struct {
	// AWSName is the node's name in App Mesh terms; "<name>_<namespace>" when empty.
	// +optional
	AWSName *string `json:"awsName,omitempty"`
	// PodSelector picks the pods (or workloads) that are this node. An empty selector picks
	// every one in the namespace; a nil one picks none.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
	// Listeners the node receives traffic on; at most one.
	// +kubebuilder:validation:MinItems=0
	// +kubebuilder:validation:MaxItems=1
	// +optional
	Listeners []Listener `json:"listeners,omitempty"`
	// ServiceDiscovery says how the node's endpoints are found; required with a listener.
	// +optional
	ServiceDiscovery *ServiceDiscovery `json:"serviceDiscovery,omitempty"`
	// Backends are the virtual services the node may call.
	// +optional
	Backends []Backend `json:"backends,omitempty"`
	// BackendGroups name groups of virtual services the node may call.
	// +optional
	BackendGroups []BackendGroupReference `json:"backendGroups,omitempty"`
	// BackendDefaults apply to every backend that sets no policy of its own.
	// +optional
	BackendDefaults *BackendDefaults `json:"backendDefaults,omitempty"`
	// Logging configures the node's access log.
	// +optional
	Logging *Logging `json:"logging,omitempty"`
	// MeshRef is the Mesh the node belongs to; filled in by the system.
	// +optional
	MeshRef *MeshReference `json:"meshRef,omitempty"`
}

// VirtualNode is one version of a service: the workloads that run it, the port they
// listen on, how to find them and which virtual services they call.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=vn,categories=canarymesh
// +kubebuilder:printcolumn:name="Mesh",type=string,JSONPath=`.spec.meshRef.name`
// +kubebuilder:printcolumn:name="Hostname",type=string,JSONPath=`.spec.serviceDiscovery.dns.hostname`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VirtualNode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VirtualNodeSpec  `json:"spec,omitempty"`
	Status MeshObjectStatus `json:"status,omitempty"`
}

// VirtualNodeList is a list of VirtualNode.
//
// +kubebuilder:object:root=true
type VirtualNodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualNode `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "VirtualNode", Plural: "virtualnodes", Singular: "virtualnode", Short: []string{"vn"},
		Namespaced: true, New: func() Object { return &VirtualNode{} }})
	registerList(func() runtime.Object { return &VirtualNodeList{} })
}

// Default fills awsName as App Mesh's controller does ("<name>_<namespace>"), the DNS
// response type (LOADBALANCER) and client policy enforcement (true).
func (vn *VirtualNode) Default() {
	defaultAWSName(&vn.Spec.AWSName, "%s_%s", vn.Name, vn.Namespace)
	if sd := vn.Spec.ServiceDiscovery; sd != nil && sd.DNS != nil && sd.DNS.ResponseType == nil {
		rt := DNSResponseTypeLoadBalancer
		sd.DNS.ResponseType = &rt
	}
	for i := range vn.Spec.Backends {
		vn.Spec.Backends[i].VirtualService.ClientPolicy.defaultEnforce()
	}
	if d := vn.Spec.BackendDefaults; d != nil {
		d.ClientPolicy.defaultEnforce()
	}
}

// defaultAWSName sets *name from format, name and namespace when it is unset or empty. An
// empty namespace counts as "default", the namespace the object will be stored in.
func defaultAWSName(awsName **string, format, name, namespace string) {
	if *awsName != nil && **awsName != "" {
		return
	}
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	n := fmt.Sprintf(format, name, namespace)
	*awsName = &n
}

// defaultEnforce sets tls.enforce to App Mesh's documented default, true.
func (c *ClientPolicy) defaultEnforce() {
	if c == nil || c.TLS == nil || c.TLS.Enforce != nil {
		return
	}
	t := true
	c.TLS.Enforce = &t
}
