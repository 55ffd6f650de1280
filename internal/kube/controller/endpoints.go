package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// endpointStore is the store as the mesh compiler sees it in Kubernetes mode: every
// VirtualNode whose podSelector matches Pods lists their ready addresses as its static
// endpoints (see the package comment). Writes go to the store unchanged; MeshSync only
// reads.
type endpointStore struct {
	store.Store
	pods client.Reader
}

// List returns the store's objects with the endpoints of virtual nodes filled in.
func (s *endpointStore) List(ctx context.Context, f store.Filter) ([]v1alpha1.Object, uint64, error) {
	objs, rv, err := s.Store.List(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	for i, o := range objs {
		vn, ok := o.(*v1alpha1.VirtualNode)
		if !ok || vn.Spec.PodSelector == nil {
			continue
		}
		with, err := WithPodEndpoints(ctx, s.pods, vn)
		if err != nil {
			return nil, 0, err
		}
		objs[i] = with
	}
	return objs, rv, nil
}

// WithPodEndpoints returns vn with the Pods its podSelector matches as its endpoints:
// POD_IP at the first listener's port for every Pod that is Ready, not terminating and
// has an IP, in place of its service discovery. A node whose selector matches no Pod,
// or that has no listener, is returned as it is.
func WithPodEndpoints(ctx context.Context, pods client.Reader, vn *v1alpha1.VirtualNode) (*v1alpha1.VirtualNode, error) {
	if vn.Spec.PodSelector == nil || len(vn.Spec.Listeners) == 0 {
		return vn, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(vn.Spec.PodSelector)
	if err != nil {
		// The status reconciler reports a bad selector; the node is compiled as written.
		return vn, nil
	}
	var list corev1.PodList
	if err := pods.List(ctx, &list, client.InNamespace(vn.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("pods of VirtualNode %s/%s: %w", vn.Namespace, vn.Name, err)
	}
	if len(list.Items) == 0 {
		return vn, nil
	}
	port := vn.Spec.Listeners[0].PortMapping.Port
	out := vn.DeepCopy()
	sd := &v1alpha1.ServiceDiscovery{Static: []v1alpha1.StaticEndpoint{}}
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(p) {
			continue
		}
		sd.Static = append(sd.Static, v1alpha1.StaticEndpoint{Address: p.Status.PodIP, Port: port})
	}
	out.Spec.ServiceDiscovery = sd
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
