// Package mesh compiles stored resources into per-proxy Snapshots. The compiler is a pure
// function of its inputs: the same resources give the same snapshot, so it is tested
// with tables and golden files, and a proxy only ever sees whole, consistent snapshots.
//
//	Meshes, VirtualNodes, VirtualServices, VirtualRouters,
//	VirtualGateways, GatewayRoutes, Workloads (endpoints), Namespaces
//	        │
//	        ▼  Compile(inputs, node, prev)
//	Snapshot{Listeners → VirtualHosts → Routes → WeightedClusters, Clusters → Endpoints}
//
// # Nodes and what their snapshots hold
//
//   - "egress" (snapshot.EgressNode), the standalone host-wide proxy: listener "egress"
//     on Options.EgressPort with a virtual host for every virtual service of every mesh.
//   - "VirtualNode/NS/NAME": listener "ingress-PORT" per spec.listeners, delivering to
//     the local cluster "local:NS/NAME"; listener "egress" with the node's spec.backends
//     (every service of the mesh when its egressFilter is ALLOW_ALL, marked AllowAll).
//   - "VirtualGateway/NS/NAME": listener "gateway-PORT" per spec.listeners, whose virtual
//     host "VirtualGateway/NS/NAME" (domain "*") holds the gateway routes attached to the
//     gateway, beside internal virtual hosts of the services they hand requests to.
//
// Only objects of the node's mesh (spec.meshRef) are seen; an object with no meshRef, or
// one naming a mesh that does not exist, is left out and reported.
//
// # Names
//
// A virtual host is named after its virtual service, "NS/NAME", and answers to its App
// Mesh name (spec.awsName, default NAME.NS) and to NAME.NS, NAME.NS.svc and
// NAME.NS.svc.cluster.local. A cluster is named after its virtual node, "NS/NAME". Routes
// are "NS/ROUTER/ROUTE", "NS/GATEWAYROUTE", or "NS/SERVICE/virtualNode" for a service
// served directly by a node. Routes without a priority get 1001, after App Mesh's last.
//
// # Endpoints
//
// A virtual node's endpoints are the instances of the Workloads in its namespace that its
// podSelector matches (127.0.0.1:PORT, labelled with the workload's labels and
// RevisionLabel), its static endpoints, and its DNS name for the proxy to resolve. A
// node whose podSelector matches a workload is run by the standalone supervisor, so its
// DNS name (which names a Kubernetes Service) is not resolved. Cloud Map is reported and
// yields nothing.
//
// # Last good definitions
//
// References are resolved per virtual service (and per gateway route). One that does not
// resolve (a router or node that is missing or in another mesh, an ARN, a regular
// expression RE2 refuses) fails its service alone: the service keeps its virtual host
// from the node's previous snapshot, with the clusters it needs (their current
// definitions where the nodes still exist, else the previous ones), or is left out when
// there is none. Either way a Problem names the object, the field and the reason. The
// finished snapshot is checked with Consistent; failing it is a bug of the compiler and
// the only error Compile returns besides a malformed node name.
//
// The Version of a snapshot moves only when its content does, so a change elsewhere in
// the mesh does not wake every proxy.
package mesh
