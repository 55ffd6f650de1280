package controlplane

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
)

// ProxyViews turns the push stream's table into the read-only proxies kind, sorted by
// node and then by connection.
func ProxyViews(ps []stream.ProxyStatus) []v1alpha1.Proxy {
	out := make([]v1alpha1.Proxy, 0, len(ps))
	for _, p := range ps {
		v := v1alpha1.Proxy{
			ObjectMeta: metav1.ObjectMeta{Name: p.ID, CreationTimestamp: metav1.NewTime(p.ConnectedSince)},
			Status: v1alpha1.ProxyStatus{
				Node: p.Node, Address: p.Address, ProxyVersion: p.ProxyVersion, Connected: p.Connected,
				ConnectedSince: metav1.NewTime(p.ConnectedSince), LastSeen: metav1.NewTime(p.LastSeen),
				SentVersion: p.SentVersion, AckedVersion: p.AckedVersion, NackVersion: p.NackVersion, LastNack: p.LastNack,
			},
		}
		v.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Proxy"))
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Status.Node != out[j].Status.Node {
			return out[i].Status.Node < out[j].Status.Node
		}
		return out[i].Name < out[j].Name
	})
	return out
}
