package controlplane

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	meshc "github.com/canarymesh/canarymesh/internal/mesh"
)

// index holds every stored object by kind and "NS/NAME" (or "NAME" for cluster-scoped
// kinds), and virtual services by App Mesh name, for reference checks.
type index struct {
	objs      map[string]map[string]v1alpha1.Object
	byAWSName map[string]bool
}

func newIndex(objs []v1alpha1.Object) *index {
	ix := &index{objs: map[string]map[string]v1alpha1.Object{}, byAWSName: map[string]bool{}}
	for _, o := range objs {
		k := o.GetObjectKind().GroupVersionKind().Kind
		if ix.objs[k] == nil {
			ix.objs[k] = map[string]v1alpha1.Object{}
		}
		ix.objs[k][nsName(o.GetNamespace(), o.GetName())] = o
		if vs, ok := o.(*v1alpha1.VirtualService); ok && vs.Spec.AWSName != nil {
			ix.byAWSName[*vs.Spec.AWSName] = true
		}
	}
	return ix
}

func nsName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func (ix *index) has(kind, ns, name string) bool {
	_, ok := ix.objs[kind][nsName(ns, name)]
	return ok
}

// refs collects missing references of one object.
type refs struct {
	ix      *index
	ns      string
	missing []string
}

func (r *refs) need(kind string, ns *string, name string) {
	n := r.ns
	if ns != nil && *ns != "" {
		n = *ns
	}
	if !r.ix.has(kind, n, name) {
		r.missing = append(r.missing, fmt.Sprintf("%s %s/%s not found", kind, n, name))
	}
}

func (r *refs) arn(what string, arn *string) {
	if arn != nil {
		r.missing = append(r.missing, fmt.Sprintf("%s ARN %s cannot be resolved outside AWS", what, *arn))
	}
}

// missingRefs lists what an object names that is not there.
func missingRefs(ix *index, o v1alpha1.Object) []string {
	r := &refs{ix: ix, ns: o.GetNamespace()}
	switch obj := o.(type) {
	case *v1alpha1.VirtualService:
		if p := obj.Spec.Provider; p != nil {
			if vn := p.VirtualNode; vn != nil {
				if vn.VirtualNodeRef != nil {
					r.need("VirtualNode", vn.VirtualNodeRef.Namespace, vn.VirtualNodeRef.Name)
				}
				r.arn("virtual node", vn.VirtualNodeARN)
			}
			if vr := p.VirtualRouter; vr != nil {
				if vr.VirtualRouterRef != nil {
					r.need("VirtualRouter", vr.VirtualRouterRef.Namespace, vr.VirtualRouterRef.Name)
				}
				r.arn("virtual router", vr.VirtualRouterARN)
			}
		}
	case *v1alpha1.VirtualRouter:
		for _, rt := range obj.Spec.Routes {
			for _, t := range routeTargets(rt) {
				if t.VirtualNodeRef != nil {
					r.need("VirtualNode", t.VirtualNodeRef.Namespace, t.VirtualNodeRef.Name)
				}
				r.arn("virtual node", t.VirtualNodeARN)
			}
		}
	case *v1alpha1.VirtualNode:
		for _, b := range obj.Spec.Backends {
			vs := b.VirtualService
			switch {
			case vs.VirtualServiceRef != nil:
				r.need("VirtualService", vs.VirtualServiceRef.Namespace, vs.VirtualServiceRef.Name)
			case vs.VirtualServiceName != "":
				if !ix.byAWSName[vs.VirtualServiceName] {
					r.missing = append(r.missing, fmt.Sprintf("no VirtualService is named %s", vs.VirtualServiceName))
				}
			}
		}
	case *v1alpha1.GatewayRoute:
		for _, t := range gatewayTargets(obj) {
			if t.VirtualServiceRef != nil {
				r.need("VirtualService", t.VirtualServiceRef.Namespace, t.VirtualServiceRef.Name)
			}
			r.arn("virtual service", t.VirtualServiceARN)
		}
	}
	return r.missing
}

func routeTargets(rt v1alpha1.Route) []v1alpha1.WeightedTarget {
	switch {
	case rt.HTTPRoute != nil:
		return rt.HTTPRoute.Action.WeightedTargets
	case rt.HTTP2Route != nil:
		return rt.HTTP2Route.Action.WeightedTargets
	case rt.GRPCRoute != nil:
		return rt.GRPCRoute.Action.WeightedTargets
	case rt.TCPRoute != nil:
		return rt.TCPRoute.Action.WeightedTargets
	}
	return nil
}

func gatewayTargets(gr *v1alpha1.GatewayRoute) []v1alpha1.GatewayRouteVirtualService {
	var out []v1alpha1.GatewayRouteVirtualService
	if r := gr.Spec.HTTPRoute; r != nil {
		out = append(out, r.Action.Target.VirtualService)
	}
	if r := gr.Spec.HTTP2Route; r != nil {
		out = append(out, r.Action.Target.VirtualService)
	}
	if r := gr.Spec.GRPCRoute; r != nil {
		out = append(out, r.Action.Target.VirtualService)
	}
	return out
}

// meshStatus returns the status block of a mesh-model object, and its meshRef.
func meshStatus(o v1alpha1.Object) (*v1alpha1.MeshObjectStatus, *v1alpha1.MeshReference, bool) {
	switch obj := o.(type) {
	case *v1alpha1.Mesh:
		return &obj.Status, nil, true
	case *v1alpha1.VirtualNode:
		return &obj.Status, obj.Spec.MeshRef, true
	case *v1alpha1.VirtualService:
		return &obj.Status, obj.Spec.MeshRef, true
	case *v1alpha1.VirtualRouter:
		return &obj.Status, obj.Spec.MeshRef, true
	case *v1alpha1.VirtualGateway:
		return &obj.Status, obj.Spec.MeshRef, true
	case *v1alpha1.GatewayRoute:
		return &obj.Status, obj.Spec.MeshRef, true
	}
	return nil, nil, false
}

// desiredConditions computes the ReferencesResolved and Ready conditions of a mesh object.
func desiredConditions(ix *index, o v1alpha1.Object) []metav1.Condition {
	_, ref, _ := meshStatus(o)
	var missing []string
	if _, isMesh := o.(*v1alpha1.Mesh); !isMesh {
		switch {
		case ref == nil || ref.Name == "":
			missing = append(missing, fmt.Sprintf("no Mesh selects namespace %s: set spec.meshRef or label the namespace to match a Mesh's namespaceSelector", o.GetNamespace()))
		case !ix.has("Mesh", "", ref.Name):
			missing = append(missing, fmt.Sprintf("Mesh %s not found", ref.Name))
		}
	}
	missing = append(missing, missingRefs(ix, o)...)
	sort.Strings(missing)
	resolved := metav1.Condition{Type: v1alpha1.ConditionReferencesResolved, Status: metav1.ConditionTrue, Reason: "Resolved",
		Message: "every object this one names exists", ObservedGeneration: o.GetGeneration()}
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready",
		Message: "in effect", ObservedGeneration: o.GetGeneration()}
	if len(missing) > 0 {
		resolved.Status, resolved.Reason, resolved.Message = metav1.ConditionFalse, "MissingReferences", strings.Join(missing, "; ")
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "ReferencesNotResolved", "waiting for: "+strings.Join(missing, "; ")
	}
	if tlsProblems := meshc.TLSProblems(o); len(tlsProblems) > 0 {
		// Declared TLS that cannot be served refuses traffic: the object is not in
		// effect as written.
		var why []string
		for _, p := range tlsProblems {
			why = append(why, p.Field+": "+p.Reason)
		}
		msg := "TLS cannot be served: " + strings.Join(why, "; ")
		if ready.Status == metav1.ConditionFalse {
			ready.Message += "; " + msg
		} else {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "TLSUnavailable", msg
		}
	}
	return []metav1.Condition{resolved, ready}
}

// applyConditions sets conditions on a status, keeping transition times of unchanged
// ones; it reports whether anything changed.
func applyConditions(st *v1alpha1.MeshObjectStatus, generation int64, want []metav1.Condition, now metav1.Time) bool {
	changed := st.ObservedGeneration != generation
	st.ObservedGeneration = generation
	for _, c := range want {
		old := apimeta.FindStatusCondition(st.Conditions, c.Type)
		if old != nil && old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message && old.ObservedGeneration == c.ObservedGeneration {
			continue
		}
		c.LastTransitionTime = now
		apimeta.SetStatusCondition(&st.Conditions, c)
		changed = true
	}
	return changed
}

// joinMesh sets spec.meshRef of a mesh member that names no mesh when exactly one Mesh's
// namespaceSelector matches its namespace's labels — App Mesh's membership rule, applied
// whenever things change so that the order of applies does not matter.
func joinMesh(ix *index, o v1alpha1.Object) bool {
	var labels map[string]string
	if ns, ok := ix.objs["Namespace"][o.GetNamespace()].(*corev1.Namespace); ok {
		labels = ns.Labels
	}
	meshes := make([]v1alpha1.Object, 0, len(ix.objs["Mesh"]))
	for _, m := range ix.objs["Mesh"] {
		meshes = append(meshes, m)
	}
	match := selectingMeshes(meshes, labels)
	return len(match) == 1 && setMeshRef(o, match[0])
}
