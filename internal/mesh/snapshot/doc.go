// Package snapshot defines the compiled configuration a proxy runs: listeners, virtual
// hosts, routes and clusters. It depends on nothing but the standard library, because the
// proxy (which must not import Kubernetes packages) and the compiler both use it.
package snapshot
