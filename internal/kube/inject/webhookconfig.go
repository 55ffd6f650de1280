package inject

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WebhookConfiguration builds the MutatingWebhookConfiguration the injector expects:
// pod CREATE only, failurePolicy Ignore (a pod is never blocked by the injector being
// down; MissedInjections reports it instead), sideEffects None, reinvoked when a later
// webhook changes the pod (injection is idempotent), and called for every namespace
// except excluded ones — the handler reads the namespace's label itself, because a pod
// annotation can opt in from an unlabelled namespace. caBundle is left for the
// CertManager to fill in.
func WebhookConfiguration(name string, client admissionregistrationv1.WebhookClientConfig, excludeNamespaces ...string) *admissionregistrationv1.MutatingWebhookConfiguration {
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
	timeout := int32(10)
	all := admissionregistrationv1.NamespacedScope
	wh := admissionregistrationv1.MutatingWebhook{
		Name:                    "inject.canarymesh.dev",
		ClientConfig:            client,
		FailurePolicy:           &ignore,
		SideEffects:             &none,
		ReinvocationPolicy:      &ifNeeded,
		TimeoutSeconds:          &timeout,
		AdmissionReviewVersions: []string{"v1"},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &all},
		}},
	}
	if len(excludeNamespaces) > 0 {
		wh.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: excludeNamespaces,
		}}}
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{wh},
	}
}
