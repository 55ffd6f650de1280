package inject

// Labels and annotations the injector reads and writes. Each Canarymesh name has an App
// Mesh twin that is honoured too, so objects written for App Mesh's injector keep
// working; when both are set the Canarymesh one wins.
const (
	// LabelInject on a Namespace (label) or a pod (annotation): "enabled" or "disabled".
	LabelInject = "canarymesh.dev/inject"
	// AppMeshLabelInject is App Mesh's name for LabelInject.
	AppMeshLabelInject = "appmesh.k8s.aws/sidecarInjectorWebhook"

	// AnnotationVirtualNode names the VirtualNode (in the pod's namespace) the pod runs,
	// overriding the podSelector match.
	AnnotationVirtualNode = "canarymesh.dev/virtual-node"
	// AppMeshAnnotationVirtualNode is App Mesh's (v1beta1 injector) name for it.
	AppMeshAnnotationVirtualNode = "appmesh.k8s.aws/virtualNode"
	// AnnotationMesh records the mesh a workload belongs to (informational; the
	// VirtualNode's meshRef decides).
	AnnotationMesh = "canarymesh.dev/mesh"
	// AppMeshAnnotationMesh is App Mesh's (v1beta1 injector) name for it.
	AppMeshAnnotationMesh = "appmesh.k8s.aws/mesh"

	// AnnotationProxyMode picks how traffic reaches the proxy: "iptables" (default; an
	// init container with NET_ADMIN redirects it) or "explicit" (no init container and
	// no NET_ADMIN: the application containers get HTTP_PROXY and friends pointing at the
	// proxy's egress listener; inbound traffic is not intercepted).
	AnnotationProxyMode = "canarymesh.dev/proxy-mode"

	// App Mesh's traffic-interception annotations, read as App Mesh's controller reads
	// them.
	AnnotationPorts              = "appmesh.k8s.aws/ports"              // app ports whose inbound traffic goes through the proxy
	AnnotationEgressIgnoredPorts = "appmesh.k8s.aws/egressIgnoredPorts" // outbound ports not intercepted
	AnnotationEgressIgnoredIPs   = "appmesh.k8s.aws/egressIgnoredIPs"   // outbound IPs/CIDRs not intercepted
	AnnotationIgnoredUID         = "appmesh.k8s.aws/ignoredUID"         // UID whose traffic is not intercepted (the proxy's)
	AnnotationIgnoredGID         = "appmesh.k8s.aws/ignoredGID"         // GID whose traffic is not intercepted
	AnnotationProxyIngressPort   = "appmesh.k8s.aws/proxyIngressPort"   // where inbound traffic is redirected
	AnnotationProxyEgressPort    = "appmesh.k8s.aws/proxyEgressPort"    // where outbound traffic is redirected
	AnnotationCPURequest         = "appmesh.k8s.aws/cpuRequest"         // the proxy's CPU request
	AnnotationMemoryRequest      = "appmesh.k8s.aws/memoryRequest"      // the proxy's memory request

	// AnnotationInjected is written on an injected pod: the VirtualNode (NS/NAME) its
	// proxy serves.
	AnnotationInjected = "canarymesh.dev/injected"
)

// Values of LabelInject and AnnotationProxyMode.
const (
	Enabled      = "enabled"
	Disabled     = "disabled"
	ModeIPTables = "iptables"
	ModeExplicit = "explicit"
)

// Names of what the injector adds to a pod.
const (
	// ProxyContainerName is the sidecar; a pod that has it is already injected.
	ProxyContainerName = "canarymesh-proxy"
	// InitContainerName sets up the traffic redirection.
	InitContainerName = "canarymesh-init"
)

// App Mesh's defaults for traffic interception, kept so its users' tuning carries over.
const (
	DefaultProxyIngressPort   = 15000
	DefaultProxyEgressPort    = 15001
	DefaultProxyAdminPort     = 9901
	DefaultIgnoredUID         = 1337
	DefaultEgressIgnoredPorts = "22"
	DefaultCPURequest         = "10m"
	DefaultMemoryRequest      = "32Mi"
)
