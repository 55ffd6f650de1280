package v1alpha1

import "k8s.io/apimachinery/pkg/util/validation/field"

// immutableFields are the fields of a mesh object that App Mesh fixes when the object is
// created: its awsName, the Mesh it belongs to and, for a GatewayRoute, its gateway.
type immutableFields struct {
	awsName *string
	meshRef **MeshReference
	gateway **VirtualGatewayReference
}

func immutablesOf(o Object) (immutableFields, bool) {
	switch o := o.(type) {
	case *Mesh:
		return immutableFields{awsName: o.Spec.AWSName}, true
	case *VirtualNode:
		return immutableFields{awsName: o.Spec.AWSName, meshRef: &o.Spec.MeshRef}, true
	case *VirtualService:
		return immutableFields{awsName: o.Spec.AWSName, meshRef: &o.Spec.MeshRef}, true
	case *VirtualRouter:
		return immutableFields{awsName: o.Spec.AWSName, meshRef: &o.Spec.MeshRef}, true
	case *VirtualGateway:
		return immutableFields{awsName: o.Spec.AWSName, meshRef: &o.Spec.MeshRef}, true
	case *GatewayRoute:
		return immutableFields{awsName: o.Spec.AWSName, meshRef: &o.Spec.MeshRef, gateway: &o.Spec.VirtualGatewayRef}, true
	}
	return immutableFields{}, false
}

// ValidateUpdate checks an update from old to cur against the fields App Mesh refuses to
// change once an object exists: spec.awsName, spec.meshRef and a GatewayRoute's
// spec.virtualGatewayRef. The references are filled in by the system, so an update that
// leaves one out keeps the stored one: cur is completed from old before the check.
// Both objects must have been defaulted.
func ValidateUpdate(old, cur Object) ErrorList {
	of, ok := immutablesOf(old)
	if !ok {
		return nil
	}
	cf, ok := immutablesOf(cur)
	if !ok {
		return nil
	}
	spec := field.NewPath("spec")
	var errs ErrorList
	if of.awsName != nil && cf.awsName != nil && *of.awsName != *cf.awsName {
		errs = append(errs, Invalid(spec.Child("awsName"), "is immutable: %q cannot become %q; delete the object and create it again", *of.awsName, *cf.awsName))
	}
	if of.meshRef != nil && *of.meshRef != nil {
		switch {
		case *cf.meshRef == nil:
			ref := **of.meshRef
			*cf.meshRef = &ref
		case (*cf.meshRef).Name != (*of.meshRef).Name:
			errs = append(errs, Invalid(spec.Child("meshRef", "name"), "is immutable: the object belongs to mesh %q and cannot move to %q", (*of.meshRef).Name, (*cf.meshRef).Name))
		case (*cf.meshRef).UID == "":
			(*cf.meshRef).UID = (*of.meshRef).UID
		}
	}
	if of.gateway != nil && *of.gateway != nil {
		og := *of.gateway
		switch cg := *cf.gateway; {
		case cg == nil:
			ref := *og.DeepCopy()
			*cf.gateway = &ref
		case cg.Name != og.Name || gatewayNamespace(cg, cur) != gatewayNamespace(og, old):
			errs = append(errs, Invalid(spec.Child("virtualGatewayRef"), "is immutable: the route is attached to gateway %q and cannot move to %q", og.Name, cg.Name))
		case cg.UID == "":
			cg.UID = og.UID
		}
	}
	return errs
}

func strOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// gatewayNamespace is the namespace a gateway reference points into: its own, or the
// referring object's when unset.
func gatewayNamespace(r *VirtualGatewayReference, from Object) string {
	if ns := strOrEmpty(r.Namespace); ns != "" {
		return ns
	}
	return from.GetNamespace()
}
