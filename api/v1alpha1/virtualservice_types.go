package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// VirtualNodeServiceProvider serves a virtual service from one virtual node. Exactly one of
// virtualNodeRef or virtualNodeARN names it.
type VirtualNodeServiceProvider struct {
	// VirtualNodeRef names the VirtualNode object.
	// +optional
	VirtualNodeRef *VirtualNodeReference `json:"virtualNodeRef,omitempty"`
	// VirtualNodeARN names an App Mesh virtual node by its ARN.
	// +optional
	VirtualNodeARN *string `json:"virtualNodeARN,omitempty"`
}

// VirtualRouterServiceProvider serves a virtual service through a virtual router's routes.
// Exactly one of virtualRouterRef or virtualRouterARN names it.
type VirtualRouterServiceProvider struct {
	// VirtualRouterRef names the VirtualRouter object.
	// +optional
	VirtualRouterRef *VirtualRouterReference `json:"virtualRouterRef,omitempty"`
	// VirtualRouterARN names an App Mesh virtual router by its ARN.
	// +optional
	VirtualRouterARN *string `json:"virtualRouterARN,omitempty"`
}

// VirtualServiceProvider is what serves a virtual service: exactly one of a virtual node or
// a virtual router.
type VirtualServiceProvider struct {
	// VirtualNode serves the service directly.
	// +optional
	VirtualNode *VirtualNodeServiceProvider `json:"virtualNode,omitempty"`
	// VirtualRouter splits the service's traffic over virtual nodes.
	// +optional
	VirtualRouter *VirtualRouterServiceProvider `json:"virtualRouter,omitempty"`
}

// VirtualServiceSpec is the desired state of a VirtualService.
type VirtualServiceSpec struct {
	// AWSName is the service's name in App Mesh terms, the name clients call it by;
	// "<name>.<namespace>" when empty.
	// +optional
	AWSName *string `json:"awsName,omitempty"`
	// Provider serves the service; a service without one has no endpoints yet.
	// +optional
	Provider *VirtualServiceProvider `json:"provider,omitempty"`
	// MeshRef is the Mesh the service belongs to; filled in by the system.
	// +optional
	MeshRef *MeshReference `json:"meshRef,omitempty"`
}

// VirtualService is the name clients call; its provider decides which virtual nodes answer.
// The apex VirtualService of a canary points at the router whose weights shift.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=vs,categories=canarymesh
// +kubebuilder:printcolumn:name="Router",type=string,JSONPath=`.spec.provider.virtualRouter.virtualRouterRef.name`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.provider.virtualNode.virtualNodeRef.name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type VirtualService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   VirtualServiceSpec `json:"spec,omitempty"`
	Status MeshObjectStatus   `json:"status,omitempty"`
}

// VirtualServiceList is a list of VirtualService.
//
// +kubebuilder:object:root=true
type VirtualServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VirtualService `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "VirtualService", Plural: "virtualservices", Singular: "virtualservice", Short: []string{"vs"},
		Namespaced: true, New: func() Object { return &VirtualService{} }})
	registerList(func() runtime.Object { return &VirtualServiceList{} })
}

// Default fills awsName as App Mesh's controller does: "<name>.<namespace>".
func (vs *VirtualService) Default() {
	defaultAWSName(&vs.Spec.AWSName, "%s.%s", vs.Name, vs.Namespace)
}

// Validate checks the VirtualService on its own; the objects it names need not exist.
func (vs *VirtualService) Validate() ErrorList {
	errs := validateMeta(vs, true)
	spec := field.NewPath("spec")
	checkAWSName(&errs, spec.Child("awsName"), vs.Spec.AWSName)
	p := vs.Spec.Provider
	if p == nil {
		return errs
	}
	pp := spec.Child("provider")
	checkExactlyOne(&errs, pp, []string{"virtualNode", "virtualRouter"}, p.VirtualNode != nil, p.VirtualRouter != nil)
	if n := p.VirtualNode; n != nil {
		np := pp.Child("virtualNode")
		checkExactlyOne(&errs, np, []string{"virtualNodeRef", "virtualNodeARN"}, n.VirtualNodeRef != nil, n.VirtualNodeARN != nil)
		if n.VirtualNodeRef != nil {
			checkRefName(&errs, np.Child("virtualNodeRef"), n.VirtualNodeRef.Name)
		}
		checkNonEmpty(&errs, np.Child("virtualNodeARN"), n.VirtualNodeARN)
	}
	if r := p.VirtualRouter; r != nil {
		rp := pp.Child("virtualRouter")
		checkExactlyOne(&errs, rp, []string{"virtualRouterRef", "virtualRouterARN"}, r.VirtualRouterRef != nil, r.VirtualRouterARN != nil)
		if r.VirtualRouterRef != nil {
			checkRefName(&errs, rp.Child("virtualRouterRef"), r.VirtualRouterRef.Name)
		}
		checkNonEmpty(&errs, rp.Child("virtualRouterARN"), r.VirtualRouterARN)
	}
	return errs
}
