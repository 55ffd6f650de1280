package deploy

import (
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CompatAPI is one API group and version under which Canarymesh serves some of its kinds,
// so that objects written for another project apply without edits.
type CompatAPI struct {
	Group    string
	Version  string
	Kinds    []string
	Category string // kubectl category of the group's kinds: `kubectl get appmesh`
}

// CompatAPIs are the groups Canarymesh serves besides canarymesh.dev: App Mesh's
// appmesh.k8s.aws/v1beta2 and Flagger's flagger.app/v1beta1.
var CompatAPIs = []CompatAPI{
	{Group: "appmesh.k8s.aws", Version: "v1beta2", Category: "appmesh",
		Kinds: []string{"Mesh", "VirtualNode", "VirtualService", "VirtualRouter", "VirtualGateway", "GatewayRoute"}},
	{Group: "flagger.app", Version: "v1beta1", Category: "flagger",
		Kinds: []string{"Canary", "MetricTemplate", "AlertProvider"}},
}

// GeneratedFromAnnotation names, on a compatibility CRD, the CRD its schema comes from.
const GeneratedFromAnnotation = "canarymesh.dev/generated-from"

// CompatCRDsFrom derives the compatibility CRDs from the canarymesh.dev CRDs: for each kind
// of CompatAPIs, the same schema, printer columns and subresources under the other group
// and version. Short names are left out, so that `kubectl get vn` stays unambiguous.
// Every kind of CompatAPIs must be among crds.
func CompatCRDsFrom(crds []*apiextensionsv1.CustomResourceDefinition) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	byKind := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, crd := range crds {
		byKind[crd.Spec.Names.Kind] = crd
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, api := range CompatAPIs {
		for _, kind := range api.Kinds {
			src, ok := byKind[kind]
			if !ok {
				return nil, fmt.Errorf("compatibility CRD %s.%s: no CRD of kind %s to derive it from", kind, api.Group, kind)
			}
			if len(src.Spec.Versions) != 1 {
				return nil, fmt.Errorf("CRD %s: %d versions, want exactly one to derive %s/%s from",
					src.Name, len(src.Spec.Versions), api.Group, api.Version)
			}
			out = append(out, compatCRD(src, api))
		}
	}
	return out, nil
}

func compatCRD(src *apiextensionsv1.CustomResourceDefinition, api CompatAPI) *apiextensionsv1.CustomResourceDefinition {
	names := src.Spec.Names
	names.ShortNames = nil
	names.Categories = []string{api.Category}
	version := *src.Spec.Versions[0].DeepCopy()
	version.Name = api.Version
	version.Served = true
	version.Storage = true
	return &apiextensionsv1.CustomResourceDefinition{
		TypeMeta: metav1.TypeMeta{APIVersion: apiextensionsv1.SchemeGroupVersion.String(), Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        names.Plural + "." + api.Group,
			Annotations: map[string]string{GeneratedFromAnnotation: src.Name},
		},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group:    api.Group,
			Names:    names,
			Scope:    src.Spec.Scope,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{version},
		},
	}
}
