// Package kubetest starts a real Kubernetes control plane for tests: etcd, the
// kube-apiserver and, on request, the kube-controller-manager and kwok (with the
// kube-scheduler), and installs Canarymesh's CustomResourceDefinitions into it.
//
// Nothing is faked: the API server is the release's own program, serving TLS on a random
// port of 127.0.0.1 and calling admission webhooks for real, and etcd is the system's
// etcd. controller-runtime's envtest starts an API server too, but it neither runs the
// controller manager nor kwok, needs binaries it downloads itself, and offers no way to
// wait for Pods to become Ready; so this package starts the processes itself.
//
// The Kubernetes programs are built once by scripts/kube-binaries into BinDir. A test
// whose programs are missing is skipped with the reason, or fails when the environment
// variable CI is "true".
package kubetest
