// Package kube is the store of Kubernetes mode: store.Store on the Kubernetes API server,
// where every canarymesh.dev/v1alpha1 kind is a CustomResourceDefinition (deploy/crds)
// and Namespace is the cluster's own.
//
// # Client
//
// The store speaks to the API server through client-go's REST client, one per group
// version, with this package's runtime.Scheme (client-go's kinds plus api/v1alpha1). Not
// controller-runtime's client, because the Store contract needs what that client hides:
// the body of a DELETE (the object with the revision of its deletion), lists read at one
// exact resourceVersion across kinds, raw watches resumed from a resourceVersion, and no
// discovery round trip or cache between a write and the next read. The controller
// (internal/kube/controller) uses controller-runtime for what it does well — leader
// election, probes, metrics, informers — and this store for the shared packages.
//
// # Mapping
//
//	Get, List           GET; List of several kinds reads the first at the newest revision
//	                    and the rest at exactly that revision (resourceVersionMatch=Exact),
//	                    so the result is one consistent snapshot and Watch continues it
//	Create              POST, then PUT …/status when the object carries a status
//	Update              PUT with the caller's resourceVersion (CAS; without one, the stored
//	                    one, retried on conflict), then PUT …/status when status differs
//	Delete              DELETE with a resourceVersion precondition; finalizers are cleared
//	                    first, since Store.Delete removes (store.DeleteOrMark marks). The
//	                    object returned is the one the API server answers with, at its
//	                    last stored resourceVersion: only the Deleted watch event carries
//	                    the revision of the removal
//	Watch               one watch per kind, merged; resourceVersions are etcd revisions
//	errors              404 → ErrNotFound, AlreadyExists → ErrExists, Conflict → ErrConflict,
//	                    410 Expired → ErrGone
//
// The API server increments metadata.generation on spec changes and keeps uid and
// creationTimestamp, as the bolt store does. A write that sets metadata.deletionTimestamp
// (store.DeleteOrMark) becomes a DELETE, which the API server turns into the mark while
// finalizers remain; a write that empties the finalizers of a marked object lets the API
// server remove it (store.UpdateOrFinalize).
//
// # Transactions
//
// Kubernetes has no multi-object transaction. Txn gives fn a transaction that reads
// through to the API server and keeps its writes in memory; when fn returns nil they are
// sent in the order the objects were first touched, each as one compare-and-swap on the
// resourceVersion first read, and the objects fn got back are refreshed with what the
// API server stored. When fn fails nothing is written. When a write of the commit fails,
// the writes before it stay and the error names the object; every caller of Txn in
// Canarymesh writes one object plus derived ones (events), which tolerates that.
//
// # Events
//
// A Canarymesh Event (api/v1alpha1) is stored as the Event custom resource, which
// `canarymesh events` and `describe` read, and mirrored as a core/v1 Event of the same
// name about the same object, so `kubectl get events` and `kubectl describe canary` show
// it too. The mirror is best effort: its failure is logged, never returned.
//
// The read-only Proxy kind is computed by the control plane from its push stream: this
// store holds none, lists none and refuses to write one.
package kube
