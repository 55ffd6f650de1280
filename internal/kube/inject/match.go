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
	var found []*v1alpha1.VirtualNode
	for _, vn := range vns {
		if vn.Namespace != namespace || vn.Spec.PodSelector == nil || vn.DeletionTimestamp != nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(vn.Spec.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("VirtualNode %s/%s: spec.podSelector: %w", vn.Namespace, vn.Name, err)
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			found = append(found, vn)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, vn := range found {
		names[i] = vn.Namespace + "/" + vn.Name
	}
	sort.Strings(names)
	return nil, fmt.Errorf("found multiple matching VirtualNodes for pod %s: %s", podName(pod, namespace), strings.Join(names, ","))
}

// matchVirtualGateway picks the VirtualGateway whose podSelector matches the pod, with
// the same rules as matchVirtualNode.
func matchVirtualGateway(pod *corev1.Pod, namespace string, vgs []*v1alpha1.VirtualGateway) (*v1alpha1.VirtualGateway, error) {
	var found []*v1alpha1.VirtualGateway
	for _, vg := range vgs {
		if vg.Namespace != namespace || vg.Spec.PodSelector == nil || vg.DeletionTimestamp != nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(vg.Spec.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("VirtualGateway %s/%s: spec.podSelector: %w", vg.Namespace, vg.Name, err)
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			found = append(found, vg)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, vg := range found {
		names[i] = vg.Namespace + "/" + vg.Name
	}
	sort.Strings(names)
	return nil, fmt.Errorf("found multiple matching VirtualGateways for pod %s: %s", podName(pod, namespace), strings.Join(names, ","))
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
