package snapshot

import (
	"time"
)

// Snapshot is everything one proxy needs, compiled from the stored resources: where to
// listen, how to route, and which endpoints each virtual node has. It is immutable once
// built; the proxy swaps whole snapshots atomically. Snapshots travel as JSON over the
// push stream, so every field is a plain value.
type Snapshot struct {
	// Version grows with every change of the inputs that this proxy sees.
	Version uint64 `json:"version"`
	// Node is the proxy this snapshot is for: "VirtualNode/NS/NAME",
	// "VirtualGateway/NS/NAME", or EgressNode for the standalone host-wide egress.
	Node string `json:"node"`
	// Mesh is the name of the mesh the node belongs to ("" for the egress node, which
	// serves every mesh).
	Mesh      string     `json:"mesh,omitempty"`
	Listeners []Listener `json:"listeners"`
	// Clusters are the virtual nodes this proxy can send traffic to, sorted by Name.
	Clusters []Cluster `json:"clusters"`
}

// EgressNode names the standalone egress proxy: one listener (127.0.0.1:15001 by default)
// routing by Host header to every virtual service of every mesh.
const EgressNode = "egress"

// ListenerKind says which way a listener's traffic flows.
type ListenerKind string

// Listener kinds.
const (
	// Ingress listeners receive a virtual node's inbound traffic (its spec.listeners)
	// and send it to the node's own endpoints (the local application).
	Ingress ListenerKind = "ingress"
	// Egress listeners route a client's outbound requests by Host to virtual services.
	Egress ListenerKind = "egress"
	// Gateway listeners are a VirtualGateway's: traffic entering the mesh, routed by
	// GatewayRoutes to virtual services.
	Gateway ListenerKind = "gateway"
)

// Listener is one port a proxy serves.
type Listener struct {
	// Name is unique within the snapshot, e.g. "ingress-8080", "egress", "gateway-8088".
	Name string       `json:"name"`
	Kind ListenerKind `json:"kind"`
	// Protocol is http, http2, grpc or tcp.
	Protocol string `json:"protocol"`
	// Port is the declared port (the App Mesh listener's portMapping.port; for the egress
	// listener, the configured egress port). Where the proxy binds is its own business:
	// in standalone mode ingress listeners bind an ephemeral loopback port.
	Port int `json:"port"`
	// VirtualHosts route egress and gateway traffic by Host header, most specific first.
	VirtualHosts []VirtualHost `json:"virtualHosts,omitempty"`
	// LocalCluster is the cluster an ingress listener sends to (the node's own endpoints).
	LocalCluster string `json:"localCluster,omitempty"`
	// Timeout is the listener's timeout (App Mesh listener.timeout), for ingress.
	Timeout *Timeouts `json:"timeout,omitempty"`
	// ConnectionPool limits the listener's inbound requests (App Mesh listener.connectionPool).
	ConnectionPool *ConnectionPool `json:"connectionPool,omitempty"`
	// HealthCheck is the active check of the local application (ingress).
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	// AccessLog, when set, logs every request of this listener.
	AccessLog *AccessLog `json:"accessLog,omitempty"`
	// AllowAll is set on the egress listener of a node whose mesh's egressFilter is
	// ALLOW_ALL: a request for a host no virtual host serves goes to that host itself
	// instead of being refused.
	AllowAll bool `json:"allowAll,omitempty"`
	// TLS, when set, is the TLS the listener terminates (tls.go).
	TLS *ListenerTLS `json:"tls,omitempty"`
}

// VirtualHost is one virtual service as reached by Host header.
type VirtualHost struct {
	// Name is the virtual service's "NS/NAME" (or the gateway route set's name).
	Name string `json:"name"`
	// Domains match the Host header (port stripped): the service's App Mesh name
	// (spec.awsName, default NAME.NS), and its Kubernetes-style names NAME.NS.svc and
	// NAME.NS.svc.cluster.local. "*" matches any host; "*.example.com" a suffix.
	Domains []string `json:"domains"`
	// Routes in the order they are tried: priority (lower first), then declaration order.
	Routes []Route `json:"routes"`
	// Internal virtual hosts are never chosen by Host header. A gateway listener carries
	// the virtual services its routes hand requests to this way: they are reached only
	// through a gateway route (Route.VirtualService names them), so a request that no
	// gateway route accepts cannot slip past the gateway by naming a service's host.
	Internal bool `json:"internal,omitempty"`
}

// Route is one compiled route: a match and where matching requests go.
type Route struct {
	// Name is "NS/ROUTER/ROUTE" (or "NS/GATEWAYROUTE", or "NS/SERVICE/virtualNode" for
	// the single route of a virtual service served directly by a virtual node) for
	// metrics and logs.
	Name string `json:"name"`
	// Priority as declared, 0 to 1000; a route without one has 1001, after all others.
	Priority int `json:"priority"`
	// Protocol of the route: http, http2, grpc or tcp.
	Protocol string `json:"protocol"`
	Match    Match  `json:"match"`
	// Targets share the traffic by weight; a weight of 0 receives nothing. Gateway
	// routes have none: VirtualService names where the request goes instead.
	Targets []WeightedCluster `json:"targets"`
	Retry   *RetryPolicy      `json:"retry,omitempty"`
	Timeout *Timeouts         `json:"timeout,omitempty"`
	// Rewrite applies to gateway routes.
	Rewrite *Rewrite `json:"rewrite,omitempty"`
	// Mirror copies a share of the route's requests to a cluster whose answers are
	// discarded (HTTP routes; a Canarymesh extension).
	Mirror *Mirror `json:"mirror,omitempty"`
	// VirtualService is set on gateway routes: the "NS/NAME" of the virtual service the
	// request is handed to; the gateway then routes it as egress would, with the routes
	// of the (internal) virtual host of that Name in the same listener.
	VirtualService string `json:"virtualService,omitempty"`
}

// Match is every condition of an App Mesh route match; all set conditions must hold.
type Match struct {
	// Prefix of the path ("" matches any path unless Path is set).
	Prefix string `json:"prefix,omitempty"`
	// Path matches the whole path, exactly or by regular expression (RE2, anchored).
	Path *StringMatch `json:"path,omitempty"`
	// Method, e.g. GET ("" for any).
	Method string `json:"method,omitempty"`
	// Scheme http or https ("" for any).
	Scheme  string        `json:"scheme,omitempty"`
	Headers []HeaderMatch `json:"headers,omitempty"`
	// Query parameters, each exact or merely present.
	Query []QueryMatch `json:"query,omitempty"`
	// Port the request arrived on (0 for any).
	Port int `json:"port,omitempty"`
	// Hostname (gateway routes): exact host or suffix.
	Hostname *StringMatch `json:"hostname,omitempty"`
	// gRPC: service and method names ("" for any) and metadata, matched as headers.
	GRPCService string        `json:"grpcService,omitempty"`
	GRPCMethod  string        `json:"grpcMethod,omitempty"`
	Metadata    []HeaderMatch `json:"metadata,omitempty"`
}

// StringMatch is exactly one of its fields.
type StringMatch struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Suffix string `json:"suffix,omitempty"`
	Regex  string `json:"regex,omitempty"`
}

// HeaderMatch is App Mesh's header match: exactly one of exact, prefix, suffix, regex or
// range; with none set, the header merely has to be present. Invert negates the result.
type HeaderMatch struct {
	Name   string      `json:"name"`
	Exact  *string     `json:"exact,omitempty"`
	Prefix *string     `json:"prefix,omitempty"`
	Suffix *string     `json:"suffix,omitempty"`
	Regex  *string     `json:"regex,omitempty"`
	Range  *MatchRange `json:"range,omitempty"`
	Invert bool        `json:"invert,omitempty"`
}

// MatchRange matches an integer header value in [Start, End).
type MatchRange struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// QueryMatch requires a query parameter; with Exact nil it need only be present.
type QueryMatch struct {
	Name  string  `json:"name"`
	Exact *string `json:"exact,omitempty"`
}

// WeightedCluster is one target of a route.
type WeightedCluster struct {
	Cluster string `json:"cluster"`
	Weight  int    `json:"weight"`
	// Port selects the target node's listener when it has several (0: its first).
	Port int `json:"port,omitempty"`
	// SetCookies are Set-Cookie values added to every response this target serves
	// (HTTP routes; a Canarymesh extension for session affinity).
	SetCookies []string `json:"setCookies,omitempty"`
}

// Mirror is where a route copies its requests, and how many of them.
type Mirror struct {
	Cluster string `json:"cluster"`
	// Port selects the node's listener when it has several (0: its first).
	Port int `json:"port,omitempty"`
	// Percent of the route's requests copied, 1 to 100.
	Percent int `json:"percent"`
}

// RetryPolicy is App Mesh's retryPolicy.
type RetryPolicy struct {
	MaxRetries    int           `json:"maxRetries"`
	PerTryTimeout time.Duration `json:"perTryTimeout,omitempty"`
	// HTTPEvents: server-error, gateway-error, client-error, stream-error.
	HTTPEvents []string `json:"httpEvents,omitempty"`
	// TCPEvents: connection-error.
	TCPEvents []string `json:"tcpEvents,omitempty"`
	// GRPCEvents: cancelled, deadline-exceeded, internal, resource-exhausted, unavailable.
	GRPCEvents []string `json:"grpcEvents,omitempty"`
}

// Timeouts are App Mesh's route or listener timeouts; zero means not set.
type Timeouts struct {
	PerRequest time.Duration `json:"perRequest,omitempty"`
	Idle       time.Duration `json:"idle,omitempty"`
}

// Rewrite is a gateway route's rewrite.
type Rewrite struct {
	// Prefix replaces the matched prefix with Value; DefaultPrefix DISABLED turns off
	// App Mesh's default rewrite of the matched prefix to "/".
	Prefix        string `json:"prefix,omitempty"`
	DefaultPrefix string `json:"defaultPrefix,omitempty"`
	// Path replaces the whole path.
	Path string `json:"path,omitempty"`
	// Hostname DISABLED keeps the client's Host; otherwise (ENABLED, App Mesh's default)
	// the Host becomes the target virtual service's name.
	Hostname string `json:"hostname,omitempty"`
	// TargetHostname is that name: the target virtual service's App Mesh name
	// (spec.awsName).
	TargetHostname string `json:"targetHostname,omitempty"`
}

// Cluster is a virtual node as its callers see it: endpoints and the policies of its
// listener that callers apply (outlier detection, connection pool, timeouts).
type Cluster struct {
	// Name is "NS/NAME" of the virtual node, or LocalClusterPrefix+"NS/NAME" for the
	// cluster an ingress listener of that node hands requests to.
	Name     string `json:"name"`
	Mesh     string `json:"mesh,omitempty"`
	Protocol string `json:"protocol"`
	// Port is the node's listener port the cluster stands for.
	Port int `json:"port"`
	// Endpoints known now (workload instances, static entries).
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// DNS, when set, is resolved by the proxy and re-resolved every RefreshInterval; its
	// addresses join Endpoints.
	DNS              *DNSDiscovery     `json:"dns,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	ConnectionPool   *ConnectionPool   `json:"connectionPool,omitempty"`
	HealthCheck      *HealthCheck      `json:"healthCheck,omitempty"`
	Timeout          *Timeouts         `json:"timeout,omitempty"`
	// TLS, when set, is the TLS this proxy speaks to the cluster's endpoints: the
	// calling node's client policy for the backend that reaches the cluster.
	TLS *ClientTLS `json:"tls,omitempty"`
}

// LocalClusterPrefix starts the name of a virtual node's local cluster: the endpoints its
// own ingress listeners deliver to, kept apart from the "NS/NAME" cluster that callers
// use because it carries none of the callers' policies (outlier detection, timeouts).
const LocalClusterPrefix = "local:"

// Endpoint is one address of a cluster.
type Endpoint struct {
	// Address is host:port.
	Address string `json:"address"`
	// Labels of the instance (workload labels and revision), for metrics and canaries.
	Labels map[string]string `json:"labels,omitempty"`
	// Ready is false for an instance its supervisor does not consider ready; the proxy
	// sends no traffic there.
	Ready bool `json:"ready"`
}

// DNSDiscovery is serviceDiscovery.dns.
type DNSDiscovery struct {
	Hostname string `json:"hostname"`
	Port     int    `json:"port"`
	// ResponseType LOADBALANCER keeps one address; ENDPOINTS (default) uses all. The
	// compiler always sets it, to LOADBALANCER when the virtual node does not say (App
	// Mesh's default).
	ResponseType string `json:"responseType,omitempty"`
}

// OutlierDetection is App Mesh's: MaxServerErrors 5xx within Interval eject the endpoint
// for BaseEjectionDuration × times ejected, never more than MaxEjectionPercent of them.
type OutlierDetection struct {
	MaxServerErrors      int           `json:"maxServerErrors"`
	Interval             time.Duration `json:"interval"`
	BaseEjectionDuration time.Duration `json:"baseEjectionDuration"`
	MaxEjectionPercent   int           `json:"maxEjectionPercent"`
}

// ConnectionPool bounds concurrent work; overflow is refused with 503. Zero is no limit.
type ConnectionPool struct {
	MaxConnections     int `json:"maxConnections,omitempty"`
	MaxPendingRequests int `json:"maxPendingRequests,omitempty"`
	MaxRequests        int `json:"maxRequests,omitempty"`
}

// HealthCheck is App Mesh's listener healthCheck.
type HealthCheck struct {
	Protocol           string        `json:"protocol"` // http, http2, grpc or tcp
	Path               string        `json:"path,omitempty"`
	Port               int           `json:"port,omitempty"`
	Interval           time.Duration `json:"interval"`
	Timeout            time.Duration `json:"timeout"`
	HealthyThreshold   int           `json:"healthyThreshold"`
	UnhealthyThreshold int           `json:"unhealthyThreshold"`
}

// AccessLog is logging.accessLog.file: a path (or /dev/stdout) and a format.
type AccessLog struct {
	Path string `json:"path"`
	// Format is "text" (Envoy's default line, or Pattern) or "json" (Fields).
	Format  string            `json:"format"`
	Pattern string            `json:"pattern,omitempty"`
	Fields  map[string]string `json:"fields,omitempty"`
}
