// Package controller is `canarymesh controller`: Canarymesh's control plane on
// Kubernetes. It runs, on a controller-runtime manager, the same pieces `canarymesh up`
// runs on the embedded store — on the Kubernetes store (internal/store/kube) instead:
//
//	status      controlplane.StatusReconciler: conditions and observedGeneration of every
//	            mesh object, MetricTemplate and AlertProvider        (leader only)
//	mesh        controlplane.MeshSync: per-proxy snapshots, served to sidecars on the
//	            push stream (--stream-listen)                        (every replica)
//	canaries    canary.Controller with the Deployment target and the mesh router
//	                                                                 (leader only)
//	compat      appmesh.k8s.aws/v1beta2 and flagger.app/v1beta1 objects mirrored into
//	            their canarymesh.dev twins, status copied back (--serve-compat-apis,
//	            leader only)
//	webhooks    the sidecar injector and the validating webhook (internal/kube/validate)
//	            on one webhook server (--webhook-port), and anything else
//	            Options.Setup adds
//
// plus leader election on a Lease, /healthz and /readyz, and /metrics serving
// controller-runtime's registry with the canary controller's metrics added.
//
// # Reconcilers
//
// Status and snapshots are level-based over the whole mesh: a VirtualService's status
// depends on its router, a node's snapshot on every service it calls. So each is one
// controller-runtime controller that watches every kind it reads through the manager's
// informers (one informer per kind) and maps every event to a single request; the work
// queue collapses a burst into one Sync of the shared code, which writes only what
// differs. The mesh controller also watches Pods and EndpointSlices, for endpoints
// (below). Compat mirroring is per object: one controller per compat kind, reconciling
// one object into its twin. The canary controller keeps its own scheduler (every
// Canary's interval), started as a leader-elected runnable.
//
// # Endpoints
//
// In standalone mode a virtual node's endpoints are the instances of the Workloads its
// podSelector matches. Here they come from the Pods its podSelector matches in its
// namespace, handed to the compiler as the node's static endpoints at its first
// listener's port, and the node's DNS name is not resolved (a node whose selector
// matches no Pod keeps its service discovery as written). Only the first listener gets
// endpoints because the compiler gives a node one cluster, at that port.
//
// A matched Pod that an EndpointSlice lists at that port (the Pod's port: a Service's
// targetPort) is as the EndpointSlices say — the API's readiness, which Services use
// too: the first address of each slice endpoint that is ready (unset counts as ready)
// and not terminating, of the Pod IP's family when it has one. The same address in the
// slices of several Services is one endpoint. A matched Pod no slice lists — a virtual
// node needs no Service of its own — gives POD_IP:PORT when it is Ready, not
// terminating and has an IP. Pods and EndpointSlices are both read from the manager's
// cache, and the mesh controller watches both.
//
// # Push stream token
//
// Sidecars present a bearer token on the push stream. `canarymesh controller` takes it
// from --stream-token-file or $CANARYMESH_TOKEN, else from the Secret
// canarymesh-stream-token in its namespace, which the first replica to start creates
// with a random token (EnsureStreamToken). Injected sidecars get it from a Secret in
// their own namespace (--proxy-token-secret) or, without one, in their environment.
//
// # Compatibility APIs
//
// With --serve-compat-apis the App Mesh and Flagger kinds (deploy/compat-crds, which
// serve Canarymesh's own schemas under those groups) are mirrored, not read in place:
// every part of Canarymesh reads the canarymesh.dev kinds, so a twin is the one place the
// rest of the system needs to know about. Each object gets a twin of the same kind, name
// and namespace, decoded by the same import as `canarymesh apply` (api/v1alpha1/manifest),
// owned by it (deleted with it by the garbage collector) and labelled
// canarymesh.dev/mirror-of=<kind>.<group>. The user's object is never written except its
// status subresource, which gets the twin's status. A canarymesh.dev object of the same
// name that is not a mirror is left alone, and the compat object's status says so.
package controller
