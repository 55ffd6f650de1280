package controlplane

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/metrics"
)

// Reasons of the Ready condition of MetricTemplates and AlertProviders when it is False.
const (
	ReasonUnknownProvider = "UnknownProvider" // MetricTemplate spec.provider.type
	ReasonInvalidQuery    = "InvalidQuery"    // MetricTemplate spec.query
	ReasonUnknownType     = "UnknownType"     // AlertProvider spec.type
	ReasonMissingAddress  = "MissingAddress"  // an address the type needs is not given
	ReasonInvalidAddress  = "InvalidAddress"  // an address (or proxy) is not an http(s) URL
)

// deliveryStatus returns the status block of a delivery-model object the reconciler
// checks on its own: MetricTemplate and AlertProvider. Canaries have their own
// controller.
func deliveryStatus(o v1alpha1.Object) (*v1alpha1.MeshObjectStatus, bool) {
	switch obj := o.(type) {
	case *v1alpha1.MetricTemplate:
		return &obj.Status, true
	case *v1alpha1.AlertProvider:
		return &obj.Status, true
	}
	return nil, false
}

// problem is one reason an object cannot be used, and the field that says so.
type problem struct{ reason, message string }

// deliveryConditions computes the Ready condition of a MetricTemplate or AlertProvider
// from its spec alone. Nothing is contacted, and the Secret a secretRef names is not
// looked up: in standalone mode it is a file and in Kubernetes mode a Secret, neither of
// which the reconciler watches, so a SecretNotFound it wrote would stay after the Secret
// is created. The secret is read, and a missing one reported, when a canary uses the
// object.
func deliveryConditions(o v1alpha1.Object) []metav1.Condition {
	var probs []problem
	var ok string
	switch obj := o.(type) {
	case *v1alpha1.MetricTemplate:
		probs, ok = metricTemplateProblems(&obj.Spec), fmt.Sprintf("provider type %s is supported and spec.query parses", obj.Spec.Provider.Type)
	case *v1alpha1.AlertProvider:
		probs, ok = alertProviderProblems(&obj.Spec), fmt.Sprintf("type %s is supported and has an address", obj.Spec.Type)
	}
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready",
		Message: ok, ObservedGeneration: o.GetGeneration()}
	if len(probs) > 0 {
		msgs := make([]string, len(probs))
		for i, p := range probs {
			msgs[i] = p.message
		}
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, probs[0].reason, strings.Join(msgs, "; ")
	}
	return []metav1.Condition{ready}
}

// metricTemplateProblems lists what keeps a canary from querying with the template: a
// provider this mesh has no client for, a query that does not parse, a missing or
// malformed address.
func metricTemplateProblems(s *v1alpha1.MetricTemplateSpec) []problem {
	var out []problem
	p := &s.Provider
	if !slices.Contains(v1alpha1.MetricProviders, p.Type) {
		out = append(out, problem{ReasonUnknownProvider, fmt.Sprintf("spec.provider.type %q is not a provider this mesh runs: expected one of %s",
			p.Type, strings.Join(v1alpha1.MetricProviders, ", "))})
	}
	switch {
	case strings.TrimSpace(s.Query) == "":
		out = append(out, problem{ReasonInvalidQuery, "spec.query is empty"})
	default:
		if err := metrics.ParseQuery(s.Query); err != nil {
			out = append(out, problem{ReasonInvalidQuery, "spec.query: " + err.Error()})
		}
	}
	switch {
	case p.Address != "":
		if msg := notWebURL(p.Address); msg != "" {
			out = append(out, problem{ReasonInvalidAddress, "spec.provider.address " + msg})
		}
	case p.Type == v1alpha1.MetricProviderWeb:
		// prometheus falls back to the canary's metricsServer; web has nothing to fall
		// back to.
		out = append(out, problem{ReasonMissingAddress, "spec.provider.address is required for provider type web"})
	}
	return out
}

// alertProviderProblems lists what keeps alerts from being posted: an unknown type, no
// address to post to, or one that is not an http(s) URL.
func alertProviderProblems(s *v1alpha1.AlertProviderSpec) []problem {
	var out []problem
	if !slices.Contains(v1alpha1.AlertProviderTypes, s.Type) {
		out = append(out, problem{ReasonUnknownType, fmt.Sprintf("spec.type %q is not one of %s",
			s.Type, strings.Join(v1alpha1.AlertProviderTypes, ", "))})
	}
	switch {
	case s.Address != "":
		if msg := notWebURL(s.Address); msg != "" {
			out = append(out, problem{ReasonInvalidAddress, "spec.address " + msg})
		}
	case s.SecretRef == nil || s.SecretRef.Name == "":
		out = append(out, problem{ReasonMissingAddress, "neither spec.address nor spec.secretRef.name is set: set one"})
	}
	if s.Proxy != "" {
		if msg := notWebURL(s.Proxy); msg != "" {
			out = append(out, problem{ReasonInvalidAddress, "spec.proxy " + msg})
		}
	}
	return out
}

// notWebURL says why s is not an absolute http(s) URL, or returns "".
func notWebURL(s string) string {
	u, err := url.ParseRequestURI(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("%q is not an http(s) URL", s)
	}
	return ""
}
