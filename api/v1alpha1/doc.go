// Package v1alpha1 holds Canarymesh's resources: the mesh model (Mesh, VirtualNode,
// VirtualService, VirtualRouter, VirtualGateway, GatewayRoute) with the field names of
// App Mesh's appmesh.k8s.aws/v1beta2 API, the delivery model (Canary, MetricTemplate,
// AlertProvider) with the field names of Flagger's flagger.app/v1beta1 API, and Workload,
// the standalone twin of a Deployment.
//
// The same Go types serve the embedded store in standalone mode and become CRDs in
// Kubernetes mode, so they carry kubebuilder markers and generated deepcopy functions
// (zz_generated.deepcopy.go, produced by controller-gen; run `go generate ./api/...`).
//
// Every kind has Default and Validate methods. Validation checks one object on its own:
// references to other objects are never errors here, because apply order must not matter;
// unresolved references show up as conditions in status instead.
//
// +kubebuilder:object:generate=true
// +groupName=canarymesh.dev
package v1alpha1

//go:generate go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 object paths=./...
