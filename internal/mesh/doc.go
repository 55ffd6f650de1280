// Package mesh compiles stored resources into per-proxy Snapshots. The compiler is a pure
// function of its inputs: the same resources give the same snapshot, so it is tested
// with tables and golden files, and a proxy only ever sees whole, consistent snapshots.
//
//	Meshes, VirtualNodes, VirtualServices, VirtualRouters,
//	VirtualGateways, GatewayRoutes, Workloads (endpoints), Namespaces
//	        │
//	        ▼  Compile(inputs, node)
//	Snapshot{Listeners → VirtualHosts → Routes → WeightedClusters, Clusters → Endpoints}
//
// A snapshot with a dangling reference (a route to a virtual node that does not exist)
// is refused with an error naming it; the caller keeps serving the last good one.
package mesh
