package inject

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// podName is how errors name a pod that may not have a name yet (generateName).
func podName(pod *corev1.Pod, namespace string) string {
	name := pod.Name
	if name == "" && pod.GenerateName != "" {
		name = pod.GenerateName + "*"
	}
	return namespace + "/" + name
}

// matchVirtualNode picks the VirtualNode whose podSelector matches the pod's labels, as
// App Mesh's controller does: none is not an error (nil), several are.
func matchVirtualNode(pod *corev1.Pod, namespace string, vns []*v1alpha1.VirtualNode) (*v1alpha1.VirtualNode, error) {
	return matchOne(pod, namespace, "VirtualNodes", vns, func(vn *v1alpha1.VirtualNode) *metav1.LabelSelector { return vn.Spec.PodSelector })
}

// matchVirtualGateway picks the VirtualGateway whose podSelector matches the pod, with
// the same rules as matchVirtualNode.
func matchVirtualGateway(pod *corev1.Pod, namespace string, vgs []*v1alpha1.VirtualGateway) (*v1alpha1.VirtualGateway, error) {
	return matchOne(pod, namespace, "VirtualGateways", vgs, func(vg *v1alpha1.VirtualGateway) *metav1.LabelSelector { return vg.Spec.PodSelector })
}

// matchOne picks the one object of the pod's namespace whose pod selector matches the
// pod's labels; kinds names them in the error when several do.
func matchOne[T v1alpha1.Object](pod *corev1.Pod, namespace, kinds string, objs []T, selector func(T) *metav1.LabelSelector) (T, error) {
	var zero T
	var found []T
	for _, o := range objs {
		ps := selector(o)
		if o.GetNamespace() != namespace || ps == nil || o.GetDeletionTimestamp() != nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(ps)
		if err != nil {
			kind := strings.TrimSuffix(kinds, "s")
			return zero, fmt.Errorf("%s %s/%s: spec.podSelector: %w", kind, o.GetNamespace(), o.GetName(), err)
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 0:
		return zero, nil
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, o := range found {
		names[i] = o.GetNamespace() + "/" + o.GetName()
	}
	sort.Strings(names)
	return zero, fmt.Errorf("found multiple matching %s for pod %s: %s", kinds, podName(pod, namespace), strings.Join(names, ","))
}

// legacyVirtualNode is App Mesh's first injector's rule, for VirtualNodes imported from
// appmesh.k8s.aws/v1beta1 (which have no podSelector): the node named as the workload
// that owns the pod.
func legacyVirtualNode(owner, namespace string, vns []*v1alpha1.VirtualNode) *v1alpha1.VirtualNode {
	if owner == "" {
		return nil
	}
	for _, vn := range vns {
		if vn.Namespace == namespace && vn.Name == owner && vn.Spec.PodSelector == nil && vn.DeletionTimestamp == nil {
			return vn
		}
	}
	return nil
}

// OwnerName is the name of the workload that created the pod: the Deployment behind a
// ReplicaSet (its name less the pod-template-hash), else the controlling owner's name.
// Empty for a bare pod.
func OwnerName(pod *corev1.Pod) string {
	for _, ref := range pod.OwnerReferences {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		if ref.Kind == "ReplicaSet" {
			if h := pod.Labels["pod-template-hash"]; h != "" {
				if d, ok := strings.CutSuffix(ref.Name, "-"+h); ok {
					return d
				}
			}
		}
		return ref.Name
	}
	return ""
}

// findVirtualNode looks a node up by name in the pod's namespace.
func findVirtualNode(name, namespace string, vns []*v1alpha1.VirtualNode) *v1alpha1.VirtualNode {
	for _, vn := range vns {
		if vn.Namespace == namespace && vn.Name == name {
			return vn
		}
	}
	return nil
}
