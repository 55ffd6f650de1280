// Command generate writes the files of deploy/ that are derived from others: the
// compatibility CRDs (compat-crds/, from crds/) and the Helm chart's copies of the CRDs
// and of the kustomize base. scripts/generate runs it after controller-gen; a test fails
// when its output differs from the files in the tree.
//
// Usage:
//
//	go run ./deploy/generate [-root ROOT] [-out OUT]
//
// ROOT is the repository's root (default: the current directory); the files are written
// under OUT/deploy, OUT defaulting to ROOT.
package main
