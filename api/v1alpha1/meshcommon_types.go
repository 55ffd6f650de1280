package v1alpha1

import (
	"k8s.io/apimachinery/pkg/types"
)

// This file holds the building blocks the mesh kinds share: durations, ports, references,
// timeouts, connection pools, health checks and access logging. Field names and limits
// follow App Mesh's appmesh.k8s.aws/v1beta2 API so its manifests decode unchanged.

// IP preferences for service discovery (App Mesh).
const (
	IPPreferenceIPv6Preferred = "IPv6_PREFERRED"
	IPPreferenceIPv4Preferred = "IPv4_PREFERRED"
	IPPreferenceIPv4Only      = "IPv4_ONLY"
	IPPreferenceIPv6Only      = "IPv6_ONLY"
)

var ipPreferences = []string{IPPreferenceIPv6Preferred, IPPreferenceIPv4Preferred, IPPreferenceIPv4Only, IPPreferenceIPv6Only}

// DurationUnit is the unit of a Duration: s or ms.
// +kubebuilder:validation:Enum=s;ms
type DurationUnit string

// Duration units.
const (
	DurationUnitS  DurationUnit = "s"
	DurationUnitMS DurationUnit = "ms"
)

// Duration is a span of time written as a count of units, as App Mesh writes it
// (`{unit: ms, value: 500}`), so manifests carry over unchanged.
type Duration struct {
	// Unit is s or ms.
	Unit DurationUnit `json:"unit"`
	// Value is the number of units.
	// +kubebuilder:validation:Minimum=0
	Value int64 `json:"value"`
}

// PortNumber is a TCP port.
// +kubebuilder:validation:Minimum=1
// +kubebuilder:validation:Maximum=65535
type PortNumber int64

// PortProtocol is the application protocol spoken on a port.
// +kubebuilder:validation:Enum=grpc;http;http2;tcp
type PortProtocol string

// Port protocols.
const (
	PortProtocolGRPC  PortProtocol = "grpc"
	PortProtocolHTTP  PortProtocol = "http"
	PortProtocolHTTP2 PortProtocol = "http2"
	PortProtocolTCP   PortProtocol = "tcp"
)

var portProtocols = []string{string(PortProtocolGRPC), string(PortProtocolHTTP), string(PortProtocolHTTP2), string(PortProtocolTCP)}

// PortMapping is a port and the protocol spoken on it.
type PortMapping struct {
	// Port is the port number.
	Port PortNumber `json:"port"`
	// Protocol is grpc, http, http2 or tcp.
	Protocol PortProtocol `json:"protocol"`
}

// MeshReference names the Mesh an object belongs to. It is filled in by the system from the
// meshes' namespace selectors; users leave it out.
type MeshReference struct {
	// Name is the Mesh's metadata.name.
	Name string `json:"name"`
	// UID is the Mesh's metadata.uid, so a re-created mesh of the same name is not confused
	// with the old one.
	UID types.UID `json:"uid"`
}

// VirtualNodeReference names a VirtualNode.
type VirtualNodeReference struct {
	// Namespace of the VirtualNode; the referring object's namespace when empty.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Name of the VirtualNode.
	Name string `json:"name"`
}

// VirtualServiceReference names a VirtualService.
type VirtualServiceReference struct {
	// Namespace of the VirtualService; the referring object's namespace when empty.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Name of the VirtualService.
	Name string `json:"name"`
}

// VirtualRouterReference names a VirtualRouter.
type VirtualRouterReference struct {
	// Namespace of the VirtualRouter; the referring object's namespace when empty.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Name of the VirtualRouter.
	Name string `json:"name"`
}

// VirtualGatewayReference names the VirtualGateway a GatewayRoute is attached to. It is
// filled in by the system from the gateways' selectors.
type VirtualGatewayReference struct {
	// Namespace of the VirtualGateway; the referring object's namespace when empty.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Name of the VirtualGateway.
	Name string `json:"name"`
	// UID of the VirtualGateway.
	UID types.UID `json:"uid"`
}

// BackendGroupReference names a group of virtual services a virtual node may call.
type BackendGroupReference struct {
	// Namespace of the group; the referring object's namespace when empty.
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Name of the group.
	Name string `json:"name"`
}

// HTTPTimeout bounds HTTP and HTTP/2 requests.
type HTTPTimeout struct {
	// PerRequest bounds one request from start to last byte of the response.
	// +optional
	PerRequest *Duration `json:"perRequest,omitempty"`
	// Idle bounds how long a connection may sit without traffic.
	// +optional
	Idle *Duration `json:"idle,omitempty"`
}

// GRPCTimeout bounds gRPC requests.
type GRPCTimeout struct {
	// PerRequest bounds one call.
	// +optional
	PerRequest *Duration `json:"perRequest,omitempty"`
	// Idle bounds how long a connection may sit without traffic.
	// +optional
	Idle *Duration `json:"idle,omitempty"`
}

// TCPTimeout bounds TCP connections.
type TCPTimeout struct {
	// Idle bounds how long a connection may sit without traffic.
	// +optional
	Idle *Duration `json:"idle,omitempty"`
}

// TCPConnectionPool caps TCP connections to the local application.
type TCPConnectionPool struct {
	// MaxConnections is the most connections open at once.
	// +kubebuilder:validation:Minimum=1
	MaxConnections int64 `json:"maxConnections"`
}

// HTTPConnectionPool caps HTTP/1.1 connections and queued requests.
type HTTPConnectionPool struct {
	// MaxConnections is the most connections open at once.
	// +kubebuilder:validation:Minimum=1
	MaxConnections int64 `json:"maxConnections"`
	// MaxPendingRequests is how many requests may wait for a connection once
	// MaxConnections are busy.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxPendingRequests *int64 `json:"maxPendingRequests,omitempty"`
}

// HTTP2ConnectionPool caps concurrent HTTP/2 requests.
type HTTP2ConnectionPool struct {
	// MaxRequests is the most requests in flight at once.
	// +kubebuilder:validation:Minimum=1
	MaxRequests int64 `json:"maxRequests"`
}

// GRPCConnectionPool caps concurrent gRPC calls.
type GRPCConnectionPool struct {
	// MaxRequests is the most calls in flight at once.
	// +kubebuilder:validation:Minimum=1
	MaxRequests int64 `json:"maxRequests"`
}

// HealthCheckPolicy is an active health check of a virtual node's listener.
type HealthCheckPolicy struct {
	// HealthyThreshold is how many checks in a row must pass to mark the target healthy.
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=10
	HealthyThreshold int64 `json:"healthyThreshold"`
	// IntervalMillis is the time between checks.
	// +kubebuilder:validation:Minimum=5000
	// +kubebuilder:validation:Maximum=300000
	IntervalMillis int64 `json:"intervalMillis"`
	// Path is requested for http and http2 checks; other protocols ignore it.
	// +optional
	Path *string `json:"path,omitempty"`
	// Port to check; the listener's port when empty.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
	// Protocol of the check: grpc, http, http2 or tcp.
	Protocol PortProtocol `json:"protocol"`
	// TimeoutMillis is how long one check may take.
	// +kubebuilder:validation:Minimum=2000
	// +kubebuilder:validation:Maximum=60000
	TimeoutMillis int64 `json:"timeoutMillis"`
	// UnhealthyThreshold is how many checks in a row must fail to mark the target unhealthy.
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=10
	UnhealthyThreshold int64 `json:"unhealthyThreshold"`
}

// Health check limits (App Mesh).
const (
	healthThresholdMin = 2
	healthThresholdMax = 10
	healthIntervalMin  = 5000
	healthIntervalMax  = 300000
	healthTimeoutMin   = 2000
	healthTimeoutMax   = 60000
)

// JSONFormatRef is one field of a JSON access log line: its key and the format string
// (Envoy command operators such as %START_TIME%) that fills it.
type JSONFormatRef struct {
	// Key is the JSON field name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	Key string `json:"key"`
	// Value is the format string of the field.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	Value string `json:"value"`
}

// LoggingFormat chooses the shape of access log lines: one text line or one JSON object.
type LoggingFormat struct {
	// JSON writes each line as a JSON object with these fields.
	// +optional
	JSON []JSONFormatRef `json:"json,omitempty"`
	// Text writes each line from this format string.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1000
	// +optional
	Text *string `json:"text,omitempty"`
}

// FileAccessLog writes access logs to a file (or /dev/stdout).
type FileAccessLog struct {
	// Path of the file to write.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Path string `json:"path"`
	// Format of each line; the proxy's default text format when empty.
	// +optional
	Format *LoggingFormat `json:"format,omitempty"`
}

// AccessLog says where access logs go.
type AccessLog struct {
	// File to write access logs to.
	// +optional
	File *FileAccessLog `json:"file,omitempty"`
}

// Logging holds the access log settings of a virtual node or gateway.
type Logging struct {
	// AccessLog configures the access log.
	// +optional
	AccessLog *AccessLog `json:"accessLog,omitempty"`
}
