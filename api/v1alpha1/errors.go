package v1alpha1

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FieldError is one validation problem: the field's path and what was expected.
// Its text reads `spec.routes[0].httpRoute.action.weightedTargets[1].weight: 150 is above 100`.
// +kubebuilder:object:generate=false
type FieldError struct {
	Field  string
	Detail string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }

// ErrorList is every problem found in one object.
// +kubebuilder:object:generate=false
type ErrorList []*FieldError

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// ToError returns nil for an empty list, else the list itself.
func (l ErrorList) ToError() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Invalid builds a FieldError for path p.
func Invalid(p *field.Path, format string, args ...any) *FieldError {
	return &FieldError{Field: p.String(), Detail: fmt.Sprintf(format, args...)}
}

// Required reports a missing field.
func Required(p *field.Path) *FieldError {
	return &FieldError{Field: p.String(), Detail: "is required"}
}

// checkRange appends an error when v lies outside [lo, hi], naming which bound it crossed.
func checkRange(errs *ErrorList, p *field.Path, v, lo, hi int64) {
	switch {
	case v < lo:
		*errs = append(*errs, Invalid(p, "%d is below %d", v, lo))
	case v > hi:
		*errs = append(*errs, Invalid(p, "%d is above %d", v, hi))
	}
}

// checkOneOf appends an error when v is not among the allowed values.
func checkOneOf(errs *ErrorList, p *field.Path, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	*errs = append(*errs, Invalid(p, "%q is not one of %s", v, strings.Join(allowed, ", ")))
}

// checkCount appends an error when a list's length lies outside [lo, hi].
func checkCount(errs *ErrorList, p *field.Path, n, lo, hi int) {
	switch {
	case n < lo:
		*errs = append(*errs, Invalid(p, "has %d items, at least %d expected", n, lo))
	case n > hi:
		*errs = append(*errs, Invalid(p, "has %d items, at most %d allowed", n, hi))
	}
}

// validateName checks metadata.name (and metadata.namespace for namespaced kinds) as
// DNS-1123 subdomains, as Kubernetes does.
func validateMeta(o Object, namespaced bool) ErrorList {
	var errs ErrorList
	meta := field.NewPath("metadata")
	if o.GetName() == "" {
		errs = append(errs, Required(meta.Child("name")))
	} else if msgs := isDNS1123Subdomain(o.GetName()); msgs != "" {
		errs = append(errs, Invalid(meta.Child("name"), "%q %s", o.GetName(), msgs))
	}
	if namespaced && o.GetNamespace() != "" {
		if msgs := isDNS1123Label(o.GetNamespace()); msgs != "" {
			errs = append(errs, Invalid(meta.Child("namespace"), "%q %s", o.GetNamespace(), msgs))
		}
	}
	if !namespaced && o.GetNamespace() != "" {
		errs = append(errs, Invalid(meta.Child("namespace"), "must be empty: %s is not namespaced", o.GetObjectKind().GroupVersionKind().Kind))
	}
	return errs
}

func isDNS1123Subdomain(s string) string {
	return strings.Join(validation.IsDNS1123Subdomain(s), "; ")
}

func isDNS1123Label(s string) string {
	return strings.Join(validation.IsDNS1123Label(s), "; ")
}
