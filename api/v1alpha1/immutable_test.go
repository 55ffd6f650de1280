package v1alpha1

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestValidateUpdateImmutableFields(t *testing.T) {
	str := func(s string) *string { return &s }
	node := func(awsName string, mesh string) *VirtualNode {
		vn := &VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "ns"}}
		if awsName != "" {
			vn.Spec.AWSName = str(awsName)
		}
		if mesh != "" {
			vn.Spec.MeshRef = &MeshReference{Name: mesh, UID: types.UID("uid-" + mesh)}
		}
		vn.Default()
		return vn
	}
	route := func(gw, gwNS string) *GatewayRoute {
		gr := &GatewayRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns"}}
		if gw != "" {
			gr.Spec.VirtualGatewayRef = &VirtualGatewayReference{Name: gw, UID: "g"}
			if gwNS != "" {
				gr.Spec.VirtualGatewayRef.Namespace = str(gwNS)
			}
		}
		gr.Default()
		return gr
	}
	for _, tc := range []struct {
		name     string
		old, cur Object
		err      string // "" for accepted
	}{
		{"same node", node("", "m"), node("", "m"), ""},
		{"awsName changed", node("a", "m"), node("b", "m"), `spec.awsName: is immutable: "a" cannot become "b"`},
		{"awsName defaulted both times", node("", ""), node("", ""), ""},
		{"explicit awsName dropped", node("custom", "m"), node("", "m"), `spec.awsName: is immutable: "custom" cannot become "n_ns"`},
		{"meshRef moved", node("", "m"), node("", "other"), `spec.meshRef.name: is immutable: the object belongs to mesh "m" and cannot move to "other"`},
		{"meshRef left out keeps the stored one", node("", "m"), node("", ""), ""},
		{"meshRef set later by the system", node("", ""), node("", "m"), ""},
		{"mesh awsName", &Mesh{ObjectMeta: metav1.ObjectMeta{Name: "m"}, Spec: MeshSpec{AWSName: str("x")}},
			&Mesh{ObjectMeta: metav1.ObjectMeta{Name: "m"}, Spec: MeshSpec{AWSName: str("y")}}, "spec.awsName: is immutable"},
		{"gateway moved", route("g1", ""), route("g2", ""), `spec.virtualGatewayRef: is immutable: the route is attached to gateway "g1" and cannot move to "g2"`},
		{"gateway namespace spelled out", route("g1", ""), route("g1", "ns"), ""},
		{"gateway left out", route("g1", ""), route("", ""), ""},
		{"other kinds are free", &Canary{}, &Canary{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateUpdate(tc.old, tc.cur)
			if tc.err == "" {
				if len(errs) > 0 {
					t.Fatalf("refused: %v", errs)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs.Error(), tc.err) {
				t.Fatalf("errors %v, want one containing %q", errs, tc.err)
			}
		})
	}

	// A reference the update leaves out is carried over, UID included.
	old, cur := node("", "m"), node("", "")
	if errs := ValidateUpdate(old, cur); len(errs) > 0 {
		t.Fatal(errs)
	}
	if cur.Spec.MeshRef == nil || cur.Spec.MeshRef.Name != "m" || cur.Spec.MeshRef.UID != "uid-m" {
		t.Errorf("meshRef not carried over: %+v", cur.Spec.MeshRef)
	}
	oldR, curR := route("g1", ""), route("", "")
	ValidateUpdate(oldR, curR)
	if curR.Spec.VirtualGatewayRef == nil || curR.Spec.VirtualGatewayRef.Name != "g1" || curR.Spec.VirtualGatewayRef.UID != "g" {
		t.Errorf("virtualGatewayRef not carried over: %+v", curR.Spec.VirtualGatewayRef)
	}
}
