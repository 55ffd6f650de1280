package v1alpha1

import (
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func validVirtualService() *VirtualService {
	return &VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Spec: VirtualServiceSpec{
			Provider: &VirtualServiceProvider{VirtualRouter: &VirtualRouterServiceProvider{
				VirtualRouterRef: &VirtualRouterReference{Name: "podinfo"}}},
		},
	}
}

func TestVirtualServiceValidate(t *testing.T) {
	node := func(vs *VirtualService) *VirtualNodeServiceProvider {
		n := &VirtualNodeServiceProvider{VirtualNodeRef: &VirtualNodeReference{Name: "podinfo-primary"}}
		vs.Spec.Provider = &VirtualServiceProvider{VirtualNode: n}
		return n
	}
	router := func(vs *VirtualService) *VirtualRouterServiceProvider { return vs.Spec.Provider.VirtualRouter }
	rules := []meshRule[VirtualService]{
		{"name required", func(vs *VirtualService) { vs.Name = "" }, "metadata.name", "is required"},
		{"namespace is a label", func(vs *VirtualService) { vs.Namespace = "Test_NS" }, "metadata.namespace", "a lowercase RFC 1123 label"},
		{"awsName length", func(vs *VirtualService) { vs.Spec.AWSName = meshPtr(strings.Repeat("a", 256)) }, "spec.awsName", "has 256 characters, at most 255 allowed"},
		{"provider needs a kind", func(vs *VirtualService) { vs.Spec.Provider = &VirtualServiceProvider{} }, "spec.provider", "exactly one of virtualNode, virtualRouter is required"},
		{"provider one kind", func(vs *VirtualService) {
			vs.Spec.Provider.VirtualNode = &VirtualNodeServiceProvider{VirtualNodeRef: &VirtualNodeReference{Name: "n"}}
		}, "spec.provider", "only one of virtualNode, virtualRouter may be set, found virtualNode and virtualRouter"},
		{"node needs a name", func(vs *VirtualService) { node(vs).VirtualNodeRef = nil }, "spec.provider.virtualNode", "exactly one of virtualNodeRef, virtualNodeARN is required"},
		{"node one name", func(vs *VirtualService) { node(vs).VirtualNodeARN = meshPtr("arn") }, "spec.provider.virtualNode", "only one of virtualNodeRef, virtualNodeARN may be set"},
		{"node ref name", func(vs *VirtualService) { node(vs).VirtualNodeRef.Name = "" }, "spec.provider.virtualNode.virtualNodeRef.name", "is required"},
		{"node arn not empty", func(vs *VirtualService) { n := node(vs); n.VirtualNodeRef, n.VirtualNodeARN = nil, meshPtr("") }, "spec.provider.virtualNode.virtualNodeARN", "must not be empty"},
		{"router needs a name", func(vs *VirtualService) { router(vs).VirtualRouterRef = nil }, "spec.provider.virtualRouter", "exactly one of virtualRouterRef, virtualRouterARN is required"},
		{"router one name", func(vs *VirtualService) { router(vs).VirtualRouterARN = meshPtr("arn") }, "spec.provider.virtualRouter", "only one of virtualRouterRef, virtualRouterARN may be set"},
		{"router ref name", func(vs *VirtualService) { router(vs).VirtualRouterRef.Name = "" }, "spec.provider.virtualRouter.virtualRouterRef.name", "is required"},
		{"router arn not empty", func(vs *VirtualService) {
			r := router(vs)
			r.VirtualRouterRef, r.VirtualRouterARN = nil, meshPtr("")
		}, "spec.provider.virtualRouter.virtualRouterARN", "must not be empty"},
	}
	runMeshRules(t, validVirtualService, rules)
}

func TestVirtualServiceValidVariants(t *testing.T) {
	noProvider := validVirtualService()
	noProvider.Spec.Provider = nil
	viaNode := validVirtualService()
	viaNode.Spec.Provider = &VirtualServiceProvider{VirtualNode: &VirtualNodeServiceProvider{VirtualNodeARN: meshPtr("arn:aws:appmesh:x")}}
	// A provider naming objects that do not exist is still valid: apply order must not matter.
	for _, vs := range []*VirtualService{noProvider, viaNode} {
		if errs := vs.Validate(); len(errs) > 0 {
			t.Errorf("unexpected errors: %v", errs)
		}
	}
}

func TestVirtualServiceDefault(t *testing.T) {
	vs := validVirtualService()
	vs.Default()
	if got := *vs.Spec.AWSName; got != "podinfo.test" {
		t.Errorf("awsName = %q, want podinfo.test", got)
	}
	vs.Spec.AWSName = meshPtr("podinfo.test.svc.cluster.local")
	vs.Default()
	if got := *vs.Spec.AWSName; got != "podinfo.test.svc.cluster.local" {
		t.Errorf("Default overwrote awsName: %q", got)
	}
	bare := &VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "s"}}
	bare.Default()
	if got := *bare.Spec.AWSName; got != "s.default" {
		t.Errorf("awsName without namespace = %q, want s.default", got)
	}
}

func TestVirtualServiceDecodesAppMeshFields(t *testing.T) {
	var vs VirtualService
	decodeMeshManifest(t, `{"apiVersion":"canarymesh.dev/v1alpha1","kind":"VirtualService","metadata":{"name":"s","namespace":"test"},
	"spec":{"awsName":"s.test.svc.cluster.local","meshRef":{"name":"m","uid":"u"},
	"provider":{"virtualNode":{"virtualNodeRef":{"name":"n","namespace":"test"}}}}}`, &vs)
	if errs := vs.Validate(); len(errs) > 0 {
		t.Errorf("decoded manifest is invalid: %v", errs)
	}
	var vr VirtualService
	decodeMeshManifest(t, `{"spec":{"provider":{"virtualRouter":{"virtualRouterARN":"arn:aws:appmesh:r"}}}}`, &vr)
}

func TestMeshKindsRegistered(t *testing.T) {
	for short, kind := range map[string]string{"vn": "VirtualNode", "vs": "VirtualService", "vr": "VirtualRouter", "vg": "VirtualGateway", "gr": "GatewayRoute"} {
		k, err := LookupKind(short)
		if err != nil {
			t.Fatalf("LookupKind(%q): %v", short, err)
		}
		if k.Kind != kind || !k.Namespaced || k.APIVersion != APIVersion {
			t.Errorf("%s: got %+v", short, k)
		}
		o := k.NewObject()
		if got := o.GetObjectKind().GroupVersionKind().Kind; got != kind {
			t.Errorf("%s: NewObject kind = %q", short, got)
		}
		if _, err := KindOf(o); err != nil {
			t.Errorf("%s: KindOf: %v", short, err)
		}
	}
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"VirtualNodeList", "VirtualServiceList", "VirtualRouterList", "VirtualGatewayList", "GatewayRouteList"} {
		if !s.Recognizes(GroupVersion.WithKind(kind)) {
			t.Errorf("scheme does not know %s", kind)
		}
	}
}

func TestMeshKindsDeepCopy(t *testing.T) {
	for _, o := range []runtime.Object{validVirtualNode(), validVirtualService(), validVirtualRouter(), validVirtualGateway(), validGatewayRoute()} {
		c := o.DeepCopyObject()
		if !reflect.DeepEqual(o, c) {
			t.Errorf("%T: copy differs", o)
		}
	}
	vn := validVirtualNode()
	c := vn.DeepCopy()
	c.Spec.Listeners[0].TLS.Validation.SubjectAlternativeNames.Match.Exact[0] = "changed"
	if vn.Spec.Listeners[0].TLS.Validation.SubjectAlternativeNames.Match.Exact[0] == "changed" {
		t.Error("DeepCopy shares memory with the original")
	}
}
