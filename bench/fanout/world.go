package main

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh"
	"github.com/canarymesh/canarymesh/internal/store"
)

// The mesh every scenario stores: services "svc-NN", each a VirtualService provided by a
// VirtualRouter that splits its traffic over the virtual nodes "svc-NN-primary" and
// "svc-NN-canary" (three static endpoints each), as a canary release leaves them; and the
// client nodes "app-NNNN" whose proxies are measured, each calling the first -backends
// services. The weight change is on the router of "svc-00", which every client calls, so
// every proxy's snapshot changes.
const (
	meshName  = "bench"
	namespace = "bench"
	// changedService is the service whose router's weights every round changes.
	changedService = "svc-00"
)

func ptr[T any](v T) *T { return &v }

func serviceName(i int) string { return fmt.Sprintf("svc-%02d", i) }

func clientName(i int) string { return fmt.Sprintf("app-%04d", i) }

// nodeOf is the node the i-th proxy serves: proxies are spread evenly over the client
// nodes, so with fewer nodes than proxies each node has several replicas.
func nodeOf(i, nodes int) string {
	return mesh.NodeName("VirtualNode", namespace, clientName(i%nodes))
}

// world is every object of a scenario with nodes client nodes.
func world(services, backends, nodes int) []v1alpha1.Object {
	ref := &v1alpha1.MeshReference{Name: meshName}
	objs := []v1alpha1.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		&v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshName},
			Spec: v1alpha1.MeshSpec{NamespaceSelector: &metav1.LabelSelector{}}},
	}
	node := func(name string, sub int) *v1alpha1.VirtualNode {
		vn := &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
		vn.Spec.MeshRef = ref
		vn.Spec.Listeners = []v1alpha1.Listener{{PortMapping: v1alpha1.PortMapping{Port: 8080, Protocol: v1alpha1.PortProtocolHTTP}}}
		sd := &v1alpha1.ServiceDiscovery{}
		for j := range 3 {
			sd.Static = append(sd.Static, v1alpha1.StaticEndpoint{Address: fmt.Sprintf("10.%d.%d.%d", sub/250, sub%250, j+1), Port: 8080})
		}
		vn.Spec.ServiceDiscovery = sd
		return vn
	}
	for i := range services {
		svc := serviceName(i)
		objs = append(objs, node(svc+"-primary", 2*i), node(svc+"-canary", 2*i+1))
		vr := &v1alpha1.VirtualRouter{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: svc}}
		vr.Spec.MeshRef = ref
		vr.Spec.Listeners = []v1alpha1.VirtualRouterListener{{PortMapping: v1alpha1.PortMapping{Port: 8080, Protocol: v1alpha1.PortProtocolHTTP}}}
		vr.Spec.Routes = []v1alpha1.Route{{Name: svc, HTTPRoute: &v1alpha1.HTTPRoute{
			Match:  v1alpha1.HTTPRouteMatch{Prefix: ptr("/")},
			Action: v1alpha1.HTTPRouteAction{WeightedTargets: weights(svc, 10)},
		}}}
		vs := &v1alpha1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: svc}}
		vs.Spec.MeshRef = ref
		vs.Spec.Provider = &v1alpha1.VirtualServiceProvider{VirtualRouter: &v1alpha1.VirtualRouterServiceProvider{
			VirtualRouterRef: &v1alpha1.VirtualRouterReference{Name: svc}}}
		objs = append(objs, vr, vs)
	}
	for i := range nodes {
		vn := node(clientName(i), 2*services+i)
		for j := range backends {
			vn.Spec.Backends = append(vn.Spec.Backends, v1alpha1.Backend{VirtualService: v1alpha1.VirtualServiceBackend{
				VirtualServiceRef: &v1alpha1.VirtualServiceReference{Name: serviceName(j)}}})
		}
		objs = append(objs, vn)
	}
	return objs
}

// weights is a route's split between a service's primary and its canary.
func weights(svc string, canary int64) []v1alpha1.WeightedTarget {
	return []v1alpha1.WeightedTarget{
		{VirtualNodeRef: &v1alpha1.VirtualNodeReference{Name: svc + "-primary"}, Weight: 100 - canary},
		{VirtualNodeRef: &v1alpha1.VirtualNodeReference{Name: svc + "-canary"}, Weight: canary},
	}
}

// setWeight is the change a canary controller's step makes (canary.MeshRouter): read
// the router, set the canary's weight, write it back. writing is called right before
// the write. It returns the store's resourceVersion of the write.
func setWeight(ctx context.Context, st store.Store, canary int64, writing func()) (uint64, error) {
	key := store.Key{Kind: "VirtualRouter", Namespace: namespace, Name: changedService}
	var out v1alpha1.Object
	for attempt := 0; ; attempt++ {
		obj, err := st.Get(ctx, key)
		if err != nil {
			return 0, err
		}
		vr := obj.(*v1alpha1.VirtualRouter)
		vr.Spec.Routes[0].HTTPRoute.Action.WeightedTargets = weights(changedService, canary)
		writing()
		out, err = st.Update(ctx, vr)
		if err == nil {
			break
		}
		// The status reconciler wrote the router meanwhile: read it again, as the
		// canary controller does.
		if !errors.Is(err, store.ErrConflict) || attempt == 4 {
			return 0, err
		}
	}
	var rv uint64
	if _, err := fmt.Sscan(out.GetResourceVersion(), &rv); err != nil {
		return 0, fmt.Errorf("resourceVersion %q: %w", out.GetResourceVersion(), err)
	}
	return rv, nil
}
