package deploy_test

import (
	"context"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// controllerUser is the controller's ServiceAccount as the API server authorizes it.
const controllerUser = "system:serviceaccount:canarymesh-system:canarymesh-controller"

// access is one request the controller may or may not make.
type access struct {
	verb, group, resource, subresource, namespace, name string
	allowed                                             bool
}

// checkAccess asks the API server's RBAC authorizer whether the controller may make each
// request, and compares with what it should be allowed.
func checkAccess(ctx context.Context, t *testing.T, c *client, cases []access) {
	t.Helper()
	for _, a := range cases {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   controllerUser,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:canarymesh-system", "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource,
				Namespace: a.namespace, Name: a.name,
			},
		}}
		res, err := c.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("access review: %v", err)
		}
		if res.Status.Allowed != a.allowed {
			t.Errorf("controller %s %s.%s/%s %s/%s: allowed=%v, want %v (%s)", a.verb, a.resource, a.group,
				a.subresource, a.namespace, a.name, res.Status.Allowed, a.allowed, res.Status.Reason)
		}
	}
}

// baseAccess is what the base's RBAC must allow and refuse.
var baseAccess = []access{
	{"create", "canarymesh.dev", "canaries", "", "demo", "", true},
	{"update", "canarymesh.dev", "canaries", "status", "demo", "podinfo", true},
	{"watch", "canarymesh.dev", "virtualnodes", "", "", "", true},
	{"create", "apps", "deployments", "", "demo", "", true},
	{"patch", "", "services", "", "demo", "podinfo", true},
	{"get", "", "secrets", "", "demo", "podinfo-config", true},
	{"create", "autoscaling", "horizontalpodautoscalers", "", "demo", "", true},
	{"list", "discovery.k8s.io", "endpointslices", "", "", "", true},
	{"watch", "discovery.k8s.io", "endpointslices", "", "", "", true},
	{"watch", "", "pods", "", "", "", true},
	{"create", "", "events", "", "demo", "", true},
	{"delete", "", "events", "", "demo", "podinfo.17a1", true},
	{"update", "coordination.k8s.io", "leases", "", "canarymesh-system", "canarymesh", true},
	{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", "canarymesh-sidecar-injector", true},
	{"get", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", "canarymesh-validator", true},
	{"patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", "canarymesh-validator", true},
	{"get", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "canaries.canarymesh.dev", true},

	{"create", "coordination.k8s.io", "leases", "", "default", "", false},
	{"create", "", "pods", "", "demo", "", false},
	{"delete", "", "nodes", "", "", "kwok-node-0", false},
	{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "", "someone-elses", false},
	{"patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", "someone-elses", false},
	{"list", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", "", false},
	{"create", "rbac.authorization.k8s.io", "clusterroles", "", "", "", false},
	{"create", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "", false},
	{"list", "appmesh.k8s.aws", "virtualnodes", "", "", "", false},
}

// compatAccess is what the compatibility overlay adds, and still refuses.
var compatAccess = []access{
	{"list", "appmesh.k8s.aws", "virtualnodes", "", "", "", true},
	{"watch", "flagger.app", "canaries", "", "", "", true},
	{"update", "flagger.app", "canaries", "status", "demo", "podinfo", true},

	{"update", "flagger.app", "canaries", "", "demo", "podinfo", false},
	{"delete", "appmesh.k8s.aws", "virtualnodes", "", "demo", "front", false},
	{"create", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "", false},
	{"delete", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "canaries.flagger.app", false},
}
