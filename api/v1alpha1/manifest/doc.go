// Package manifest reads the YAML users already have — App Mesh (appmesh.k8s.aws/v1beta1
// and v1beta2), Flagger (flagger.app/v1beta1), Canarymesh's own canarymesh.dev/v1alpha1
// and Kubernetes Namespaces — and turns every document into a validated v1alpha1 object.
//
// The conversion happens here, at the API boundary, so the rest of Canarymesh sees one
// model. Decoding is strict: an unknown field is an error with its path, and every error
// names the file, the line, the document, the object and the field:
//
//	hello_service_update.yaml:20: VirtualRouter case-study/hello-router: spec.routes[0].httpRoute.action.weightedTargets[1].weight: 150 is above 100
//
// Lines are found by walking the document's YAML node tree along the field path; for a
// converted document the walk follows the source's older field names (http for
// httpRoute, virtualNodeName for virtualNodeRef, ...), so the line is the one the user
// wrote. Kubernetes kinds that standalone mode cannot run (Deployment, Service, HPA, ...)
// are skipped with a one-line notice each.
package manifest
