// Package kubebin holds nothing but documentation: the module's commands
// (kube-apiserver, kube-controller-manager and kube-scheduler) are the Kubernetes
// control-plane programs of the k8s.io/kubernetes release named in go.mod, each a main
// that calls the release's own command constructor. scripts/kube-binaries builds them
// into the cache directory the Kubernetes-mode tests start them from.
package kubebin
