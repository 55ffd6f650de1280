package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ProxyStatus is what the control plane knows of one proxy connection.
type ProxyStatus struct {
	// Node is the proxy's node: "VirtualNode/NS/NAME", "VirtualGateway/NS/NAME" or "egress".
	Node string `json:"node"`
	// Address is the proxy's address as the control plane sees it.
	Address string `json:"address,omitempty"`
	// ProxyVersion is the version of the proxy's binary.
	ProxyVersion string `json:"proxyVersion,omitempty"`
	// Connected says whether the stream is up now.
	Connected      bool        `json:"connected"`
	ConnectedSince metav1.Time `json:"connectedSince,omitempty"`
	LastSeen       metav1.Time `json:"lastSeen,omitempty"`
	// SentVersion is the last snapshot version pushed; AckedVersion the last one the
	// proxy applied.
	SentVersion  uint64 `json:"sentVersion,omitempty"`
	AckedVersion uint64 `json:"ackedVersion,omitempty"`
	// NackVersion and LastNack tell the last version the proxy refused, and why.
	NackVersion uint64 `json:"nackVersion,omitempty"`
	LastNack    string `json:"lastNack,omitempty"`
}

// Proxy is a read-only view of one connected (or recently connected) proxy, served by the
// control plane from its push stream; it is not stored. Its name is the connection's ID.
//
// +kubebuilder:object:root=true
type Proxy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Status            ProxyStatus `json:"status"`
}

// ProxyList is a list of Proxy.
//
// +kubebuilder:object:root=true
type ProxyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Proxy `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "Proxy", Plural: "proxies", Singular: "proxy", Short: []string{"px"}, ReadOnly: true,
		New: func() Object { return &Proxy{} }})
	registerList(func() runtime.Object { return &ProxyList{} })
}
