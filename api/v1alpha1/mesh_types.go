package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// EgressFilter types (App Mesh).
const (
	EgressFilterAllowAll = "ALLOW_ALL"
	EgressFilterDropAll  = "DROP_ALL"
)

// EgressFilter says whether traffic may leave the mesh to destinations it does not know.
type EgressFilter struct {
	// Type is ALLOW_ALL or DROP_ALL.
	Type string `json:"type"`
}

// MeshServiceDiscovery holds mesh-wide service discovery settings.
type MeshServiceDiscovery struct {
	// IPPreference is IPv6_PREFERRED, IPv4_PREFERRED, IPv4_ONLY or IPv6_ONLY.
	// +optional
	IPPreference *string `json:"ipPreference,omitempty"`
}

// MeshSpec is the desired state of a Mesh.
type MeshSpec struct {
	// AWSName is the mesh's name in App Mesh terms; defaults to metadata.name.
	// +optional
	AWSName *string `json:"awsName,omitempty"`
	// NamespaceSelector picks the namespaces whose objects belong to this mesh. An empty
	// selector matches every namespace; a nil one matches none.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// EgressFilter controls traffic to destinations outside the mesh.
	// +optional
	EgressFilter *EgressFilter `json:"egressFilter,omitempty"`
	// MeshOwner is kept from App Mesh manifests (an AWS account ID); unused here.
	// +optional
	MeshOwner *string `json:"meshOwner,omitempty"`
	// ServiceDiscovery holds mesh-wide discovery settings.
	// +optional
	ServiceDiscovery *MeshServiceDiscovery `json:"serviceDiscovery,omitempty"`
}

// Mesh is the boundary of a service mesh: the virtual nodes, services and routers in it
// reach one another. It is cluster-scoped, as in App Mesh.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=canarymesh
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Mesh struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MeshSpec         `json:"spec,omitempty"`
	Status MeshObjectStatus `json:"status,omitempty"`
}

// MeshList is a list of Mesh.
//
// +kubebuilder:object:root=true
type MeshList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Mesh `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "Mesh", Plural: "meshes", Singular: "mesh", Short: []string{"mesh"},
		New: func() Object { return &Mesh{} }})
	registerList(func() runtime.Object { return &MeshList{} })
}

// Default fills awsName and the egress filter as App Mesh does.
func (m *Mesh) Default() {
	if m.Spec.AWSName == nil || *m.Spec.AWSName == "" {
		n := m.Name
		m.Spec.AWSName = &n
	}
	if m.Spec.EgressFilter == nil {
		m.Spec.EgressFilter = &EgressFilter{Type: EgressFilterDropAll}
	}
}

// Validate checks the Mesh on its own.
func (m *Mesh) Validate() ErrorList {
	errs := validateMeta(m, false)
	spec := field.NewPath("spec")
	if f := m.Spec.EgressFilter; f != nil {
		checkOneOf(&errs, spec.Child("egressFilter", "type"), f.Type, EgressFilterAllowAll, EgressFilterDropAll)
	}
	if sd := m.Spec.ServiceDiscovery; sd != nil && sd.IPPreference != nil {
		checkOneOf(&errs, spec.Child("serviceDiscovery", "ipPreference"), *sd.IPPreference,
			"IPv6_PREFERRED", "IPv4_PREFERRED", "IPv4_ONLY", "IPv6_ONLY")
	}
	if s := m.Spec.NamespaceSelector; s != nil {
		if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
			errs = append(errs, Invalid(spec.Child("namespaceSelector"), "%v", err))
		}
	}
	return errs
}
