package v1alpha1

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group is the API group of every Canarymesh resource.
const Group = "canarymesh.dev"

// Version is the version of this package's API.
const Version = "v1alpha1"

// GroupVersion is group canarymesh.dev, version v1alpha1.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// APIVersion is the apiVersion string of objects of this package.
var APIVersion = GroupVersion.String()

// Object is what every stored resource is: Kubernetes object metadata plus a runtime type.
// +kubebuilder:object:generate=false
type Object interface {
	metav1.Object
	runtime.Object
}

// Defaulter fills unset fields with their documented defaults.
// +kubebuilder:object:generate=false
type Defaulter interface {
	Default()
}

// Validator checks one object on its own and returns every problem found.
// +kubebuilder:object:generate=false
type Validator interface {
	Validate() ErrorList
}

// KindInfo describes one kind the API serves: its names on the command line and in URLs.
// +kubebuilder:object:generate=false
type KindInfo struct {
	Kind       string
	APIVersion string
	Plural     string
	Singular   string
	Short      []string
	Namespaced bool
	// ReadOnly kinds are views the server computes (proxies); they cannot be applied.
	ReadOnly bool
	New      func() Object
}

// GroupVersionKind returns the kind's group, version and kind.
func (k *KindInfo) GroupVersionKind() schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(k.APIVersion, k.Kind)
}

var kinds []*KindInfo

func register(k *KindInfo) {
	if k.APIVersion == "" {
		k.APIVersion = APIVersion
	}
	kinds = append(kinds, k)
}

func init() {
	register(&KindInfo{Kind: "Namespace", APIVersion: "v1", Plural: "namespaces", Singular: "namespace", Short: []string{"ns"},
		New: func() Object { return &corev1.Namespace{} }})
}

// Kinds returns every kind the API serves, sorted by kind name.
func Kinds() []*KindInfo {
	out := append([]*KindInfo(nil), kinds...)
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// LookupKind finds a kind by its kind name, plural, singular or short name, ignoring case.
func LookupKind(name string) (*KindInfo, error) {
	n := strings.ToLower(name)
	for _, k := range kinds {
		if strings.ToLower(k.Kind) == n || k.Plural == n || k.Singular == n {
			return k, nil
		}
		for _, s := range k.Short {
			if s == n {
				return k, nil
			}
		}
	}
	var names []string
	for _, k := range Kinds() {
		names = append(names, k.Plural)
	}
	return nil, fmt.Errorf("unknown kind %q: expected one of %s", name, strings.Join(names, ", "))
}

// KindOf returns the registered kind of an object by its Go type.
func KindOf(obj Object) (*KindInfo, error) {
	want := fmt.Sprintf("%T", obj)
	for _, k := range kinds {
		if fmt.Sprintf("%T", k.New()) == want {
			return k, nil
		}
	}
	return nil, fmt.Errorf("type %s is not a registered kind", want)
}

// New returns an empty object of the kind with its apiVersion and kind set.
func (k *KindInfo) NewObject() Object {
	o := k.New()
	o.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	return o
}

// SchemeBuilder adds this package's types to a runtime.Scheme (used in Kubernetes mode).
var SchemeBuilder = runtime.NewSchemeBuilder(func(s *runtime.Scheme) error {
	for _, k := range kinds {
		if k.APIVersion != APIVersion {
			continue
		}
		s.AddKnownTypes(GroupVersion, k.New())
	}
	for _, l := range lists {
		s.AddKnownTypes(GroupVersion, l())
	}
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
})

// AddToScheme adds this package's types to a scheme.
var AddToScheme = SchemeBuilder.AddToScheme

var lists []func() runtime.Object

func registerList(f func() runtime.Object) { lists = append(lists, f) }
