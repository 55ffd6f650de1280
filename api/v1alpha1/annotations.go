package v1alpha1

import "strings"

// AnnotationPrefix starts every annotation Canarymesh itself writes on users' objects.
const AnnotationPrefix = Group + "/"

// AnnotationCanaryReplicas on a canary target that the canary controller parked (scaled
// to zero) holds the replica count to restore when the next analysis starts.
const AnnotationCanaryReplicas = AnnotationPrefix + "canary-replicas"

// IsSystemAnnotation reports whether key is one of Canarymesh's own annotations, which
// controllers and commands (promote, abort, …) write, rather than the user's manifest.
func IsSystemAnnotation(key string) bool {
	return strings.HasPrefix(key, AnnotationPrefix)
}
