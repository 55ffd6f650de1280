// Package gen writes the derived files of deploy/: the compatibility CRDs and their RBAC,
// the kustomizations listing generated files, and the Helm chart's CRDs and templates,
// which are the kustomize base's files with the chart's values put in. One source, two
// packagings: the chart cannot drift from the base.
package gen
