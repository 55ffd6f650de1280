package inject

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// VirtualNodeLister lists the VirtualNodes of one namespace. The injector needs nothing
// else of the store.
type VirtualNodeLister interface {
	VirtualNodes(ctx context.Context, namespace string) ([]*v1alpha1.VirtualNode, error)
}

// VirtualGatewayLister lists the VirtualGateways of one namespace. A VirtualNodeLister
// that also implements it lets the injector give gateway pods their proxy.
type VirtualGatewayLister interface {
	VirtualGateways(ctx context.Context, namespace string) ([]*v1alpha1.VirtualGateway, error)
}

// StoreLister reads VirtualNodes (and VirtualGateways) from a store.Store (either mode's).
func StoreLister(s store.Store) VirtualNodeLister { return storeLister{s} }

type storeLister struct{ s store.Store }

func (l storeLister) VirtualNodes(ctx context.Context, namespace string) ([]*v1alpha1.VirtualNode, error) {
	objs, _, err := l.s.List(ctx, store.Filter{Kind: "VirtualNode", Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list VirtualNodes in %s: %w", namespace, err)
	}
	out := make([]*v1alpha1.VirtualNode, 0, len(objs))
	for _, o := range objs {
		if vn, ok := o.(*v1alpha1.VirtualNode); ok {
			out = append(out, vn)
		}
	}
	return out, nil
}

func (l storeLister) VirtualGateways(ctx context.Context, namespace string) ([]*v1alpha1.VirtualGateway, error) {
	objs, _, err := l.s.List(ctx, store.Filter{Kind: "VirtualGateway", Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list VirtualGateways in %s: %w", namespace, err)
	}
	out := make([]*v1alpha1.VirtualGateway, 0, len(objs))
	for _, o := range objs {
		if vg, ok := o.(*v1alpha1.VirtualGateway); ok {
			out = append(out, vg)
		}
	}
	return out, nil
}

// ClientLister reads VirtualNodes (and VirtualGateways) through a controller-runtime reader, typically the
// manager's cached client; its scheme must know api/v1alpha1.
func ClientLister(r client.Reader) VirtualNodeLister { return clientLister{r} }

type clientLister struct{ r client.Reader }

func (l clientLister) VirtualNodes(ctx context.Context, namespace string) ([]*v1alpha1.VirtualNode, error) {
	var list v1alpha1.VirtualNodeList
	if err := l.r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list VirtualNodes in %s: %w", namespace, err)
	}
	out := make([]*v1alpha1.VirtualNode, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

func (l clientLister) VirtualGateways(ctx context.Context, namespace string) ([]*v1alpha1.VirtualGateway, error) {
	var list v1alpha1.VirtualGatewayList
	if err := l.r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list VirtualGateways in %s: %w", namespace, err)
	}
	out := make([]*v1alpha1.VirtualGateway, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

var (
	_ VirtualGatewayLister = storeLister{}
	_ VirtualGatewayLister = clientLister{}
)
