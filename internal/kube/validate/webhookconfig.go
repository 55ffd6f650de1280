package validate

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/kube/inject"
)

// DefaultWebhookConfiguration is the ValidatingWebhookConfiguration deploy/ installs,
// whose caBundle the injector's CertManager keeps by default.
const DefaultWebhookConfiguration = inject.DefaultValidatingWebhookConfiguration

// WebhookConfiguration builds the ValidatingWebhookConfiguration the validator expects:
// CREATE and UPDATE of every canarymesh.dev kind the CRDs serve and of the compat kinds
// (their status subresources are not matched: the controller writes them), failurePolicy
// Fail (an object the controller would refuse is never stored because it was down, as
// with App Mesh's controller), sideEffects None, and every namespace but the excluded
// ones. caBundle is left for the controller's CertManager to fill in.
func WebhookConfiguration(name string, client admissionregistrationv1.WebhookClientConfig, excludeNamespaces ...string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(5)
	scope := admissionregistrationv1.AllScopes
	ops := []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}
	rule := func(group, version string, resources []string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{version}, Resources: resources, Scope: &scope}}
	}
	rules := []admissionregistrationv1.RuleWithOperations{rule(v1alpha1.Group, v1alpha1.Version, Resources())}
	for _, gv := range []struct{ group, version string }{{"appmesh.k8s.aws", "v1beta2"}, {"flagger.app", "v1beta1"}} {
		var res []string
		for _, r := range CompatResources {
			if r.Group == gv.group {
				res = append(res, r.Resource)
			}
		}
		rules = append(rules, rule(gv.group, gv.version, res))
	}
	wh := admissionregistrationv1.ValidatingWebhook{
		Name:                    "validate.canarymesh.dev",
		ClientConfig:            client,
		FailurePolicy:           &fail,
		SideEffects:             &none,
		TimeoutSeconds:          &timeout,
		AdmissionReviewVersions: []string{"v1"},
		Rules:                   rules,
	}
	if len(excludeNamespaces) > 0 {
		wh.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: excludeNamespaces,
		}}}
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{wh},
	}
}

// Resources are the canarymesh.dev resources validated: every kind stored in the API
// server (the read-only proxies are not).
func Resources() []string {
	var out []string
	for _, k := range v1alpha1.Kinds() {
		if k.APIVersion == v1alpha1.APIVersion && !k.ReadOnly {
			out = append(out, k.Plural)
		}
	}
	return out
}
