package gen

import (
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// compatRBAC is the ClusterRole (and its binding) the controller needs with
// --serve-compat-apis: it reads the App Mesh and Flagger objects and writes only their
// status (and, as the owner of their canarymesh.dev twins, their finalizers). Their CRDs
// are installed with the manifests, not by the controller.
func compatRBAC(crds []*apiextensionsv1.CustomResourceDefinition) ([]byte, error) {
	groups := []string{}
	seen := map[string]bool{}
	for _, crd := range crds {
		if !seen[crd.Spec.Group] {
			seen[crd.Spec.Group] = true
			groups = append(groups, crd.Spec.Group)
		}
	}
	labels := map[string]string{"app.kubernetes.io/name": "canarymesh", "app.kubernetes.io/component": "controller"}
	role := rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: "canarymesh-compat-apis", Labels: labels},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: groups, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: groups, Resources: []string{"*/status", "*/finalizers"}, Verbs: []string{"get", "update", "patch"}},
		},
	}
	binding := rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "canarymesh-compat-apis", Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "canarymesh-controller", Namespace: "canarymesh-system"}},
	}
	var out []byte
	for i, obj := range []any{role, binding} {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("encode compatibility RBAC: %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("re-read compatibility RBAC: %w", err)
		}
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
		if b, err = yaml.Marshal(m); err != nil {
			return nil, fmt.Errorf("encode compatibility RBAC: %w", err)
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, b...)
	}
	return out, nil
}
