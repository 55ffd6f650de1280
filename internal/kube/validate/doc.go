// Package validate is Canarymesh's validating admission webhook for Kubernetes. The CRDs'
// OpenAPI schemas cannot say everything api/v1alpha1 checks (a metric needs a name, an
// analysis a strategy, a VirtualNode keeps its mesh), so the API server asks the
// controller, which answers with the same decoding, defaults and validation `canarymesh
// apply` runs, and on UPDATE the immutability checks:
//
//	kube-apiserver ──AdmissionReview (CREATE/UPDATE, TLS)──▶ Handler ──▶ Check
//	  canarymesh.dev/v1alpha1 kinds,                          │  manifest.Decode: convert,
//	  appmesh.k8s.aws/v1beta2, flagger.app/v1beta1            │  default, Validate;
//	                                                          │  v1alpha1.ValidateUpdate
//	                          ◀── allowed, or 422 naming ─────┘  kind, name, field paths
//
// The handler is served by the sidecar injector's webhook server (internal/kube/inject),
// whose CertManager also keeps the caBundle of the ValidatingWebhookConfiguration.
// Status updates and updates that leave the spec alone are allowed unchecked: the
// controller writes status, and an object stored before the webhook must stay deletable.
package validate
