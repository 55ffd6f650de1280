package controller

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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
	// cluster reads Pods and EndpointSlices: the manager's cached client.
	cluster client.Reader
}

// List returns the store's objects with the endpoints of virtual nodes filled in.
func (s *endpointStore) List(ctx context.Context, f store.Filter) ([]v1alpha1.Object, uint64, error) {
	objs, rv, err := s.Store.List(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	r := &endpointReader{cluster: s.cluster, slices: map[string][]discoveryv1.EndpointSlice{}}
	for i, o := range objs {
		vn, ok := o.(*v1alpha1.VirtualNode)
		if !ok || vn.Spec.PodSelector == nil {
			continue
		}
		with, err := r.withPodEndpoints(ctx, vn)
		if err != nil {
			return nil, 0, err
		}
		objs[i] = with
	}
	return objs, rv, nil
}

// endpointReader reads what the endpoints of virtual nodes come from, listing each
// namespace's EndpointSlices once however many nodes it holds.
type endpointReader struct {
	cluster client.Reader
	slices  map[string][]discoveryv1.EndpointSlice
}

func (r *endpointReader) slicesIn(ctx context.Context, ns string) ([]discoveryv1.EndpointSlice, error) {
	if l, ok := r.slices[ns]; ok {
		return l, nil
	}
	var list discoveryv1.EndpointSliceList
	if err := r.cluster.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("EndpointSlices in %s: %w", ns, err)
	}
	r.slices[ns] = list.Items
	return list.Items, nil
}

// withPodEndpoints returns vn with the endpoints of the Pods its podSelector matches
// (podEndpoints) in place of its service discovery. A node whose selector matches no
// Pod, or that has no listener, is returned as it is.
func (r *endpointReader) withPodEndpoints(ctx context.Context, vn *v1alpha1.VirtualNode) (*v1alpha1.VirtualNode, error) {
	if vn.Spec.PodSelector == nil || len(vn.Spec.Listeners) == 0 {
		return vn, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(vn.Spec.PodSelector)
	if err != nil {
		// The status reconciler reports a bad selector; the node is compiled as written.
		return vn, nil
	}
	var pods corev1.PodList
	if err := r.cluster.List(ctx, &pods, client.InNamespace(vn.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("pods of VirtualNode %s/%s: %w", vn.Namespace, vn.Name, err)
	}
	if len(pods.Items) == 0 {
		return vn, nil
	}
	eps, err := r.slicesIn(ctx, vn.Namespace)
	if err != nil {
		return nil, fmt.Errorf("endpoints of VirtualNode %s/%s: %w", vn.Namespace, vn.Name, err)
	}
	// The compiler gives a node one cluster, at its first listener's port, and takes
	// every static endpoint into it whatever its port: endpoints at the ports of further
	// listeners would be mixed into that cluster, so only the first is filled.
	port := vn.Spec.Listeners[0].PortMapping.Port
	out := vn.DeepCopy()
	out.Spec.ServiceDiscovery = &v1alpha1.ServiceDiscovery{Static: podEndpoints(pods.Items, eps, port)}
	return out, nil
}

// podEndpoints are the endpoints at port of pods, the Pods a virtual node's podSelector
// matches, given the EndpointSlices of their namespace.
//
// A Pod listed by a slice that carries port (a TCP port of that number: the Pod's
// container port, a Service's targetPort) is as the slices say: the first address of
// each of its slice endpoints that is ready (a nil ready counts as ready, as the
// EndpointSlice API says) and not terminating, of the family of the Pod's IP when it
// has addresses of that family (a dual-stack Service has a slice per family). Any other
// Pod — one that no Service selects, as a virtual node needs none — counts when it is
// Ready, not terminating and has an IP. An address listed by several slices (several
// Services over the same Pods) is kept once. The result is sorted, and never nil.
func podEndpoints(pods []corev1.Pod, eps []discoveryv1.EndpointSlice, port v1alpha1.PortNumber) []v1alpha1.StaticEndpoint {
	matched := make(map[string]*corev1.Pod, len(pods))
	for i := range pods {
		matched[pods[i].Name] = &pods[i]
	}
	// listed holds, for every matched Pod some slice lists at port, the ready
	// addresses the slices give it (possibly none).
	listed := map[string][]netip.Addr{}
	for i := range eps {
		es := &eps[i]
		if (es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6) || !carriesPort(es, port) {
			continue
		}
		for _, e := range es.Endpoints {
			ref := e.TargetRef
			if ref == nil || ref.Kind != "Pod" || (ref.Namespace != "" && ref.Namespace != es.Namespace) || matched[ref.Name] == nil {
				continue
			}
			addrs := listed[ref.Name]
			if isTrue(e.Conditions.Ready, true) && !isTrue(e.Conditions.Terminating, false) && len(e.Addresses) > 0 {
				if a, err := netip.ParseAddr(e.Addresses[0]); err == nil {
					addrs = append(addrs, a)
				}
			}
			listed[ref.Name] = addrs
		}
	}
	var addrs []netip.Addr
	for i := range pods {
		p := &pods[i]
		podIP, _ := netip.ParseAddr(p.Status.PodIP)
		fromSlices, ok := listed[p.Name]
		switch {
		case ok:
			otherFamily := func(a netip.Addr) bool { return a.Is4() != podIP.Is4() }
			if podIP.IsValid() && slices.ContainsFunc(fromSlices, func(a netip.Addr) bool { return !otherFamily(a) }) {
				fromSlices = slices.DeleteFunc(fromSlices, otherFamily)
			}
			addrs = append(addrs, fromSlices...)
		case p.DeletionTimestamp == nil && podIP.IsValid() && podReady(p):
			addrs = append(addrs, podIP)
		}
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	addrs = slices.Compact(addrs)
	out := make([]v1alpha1.StaticEndpoint, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, v1alpha1.StaticEndpoint{Address: a.String(), Port: port})
	}
	return out
}

// carriesPort says whether a slice lists port as a TCP port (a nil protocol is TCP).
func carriesPort(es *discoveryv1.EndpointSlice, port v1alpha1.PortNumber) bool {
	for _, p := range es.Ports {
		if p.Port != nil && v1alpha1.PortNumber(*p.Port) == port && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
			return true
		}
	}
	return false
}

// isTrue is *b, or unset when b is nil.
func isTrue(b *bool, unset bool) bool {
	if b == nil {
		return unset
	}
	return *b
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
