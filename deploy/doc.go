// Package deploy holds what puts Canarymesh into a Kubernetes cluster: the
// CustomResourceDefinitions generated from api/v1alpha1 (crds/), the same schemas served
// under App Mesh's and Flagger's API groups for migration (compat-crds/), and the
// controller's manifests as a kustomize base (kustomize/) and a Helm chart (helm/).
//
// The CRDs are embedded so that the controller can install the compatibility CRDs itself
// and tests can install either set into an API server; CRDs, CompatCRDs and Install give
// access to them.
package deploy
