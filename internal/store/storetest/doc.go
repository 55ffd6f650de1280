// Package storetest is the behavioural test suite every store.Store passes: the embedded
// bolt store and the Kubernetes store run the same tests through Run, each with a
// Harness saying how to open it and which of the stricter guarantees it gives.
//
// What differs between stores is stated in Harness, never hidden: bolt numbers revisions
// 1, 2, 3, … from an empty file and commits a Txn atomically; the API server's revisions
// are etcd's (they grow, with gaps) and it starts with namespaces of its own, which the
// suite notes when a store is opened and leaves out of every comparison.
package storetest
