package inject

import (
	"context"
	"testing"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

// TestStoreLister decides from a real (standalone) store's VirtualNodes and gateways.
func TestStoreLister(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(ctx, t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	app := map[string]string{"app": "podinfo"}
	for _, obj := range []v1alpha1.Object{
		testVirtualNode("demo", "podinfo", app),
		testVirtualNode("other", "podinfo", app),
		func() v1alpha1.Object {
			gw := vgateway("demo", "gw", map[string]string{"app": "gw"})
			gw.Spec.Listeners = []v1alpha1.VirtualGatewayListener{{PortMapping: v1alpha1.VirtualGatewayPortMapping{Port: 8080, Protocol: "http"}}}
			return gw
		}(),
	} {
		if _, err := st.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	l := StoreLister(st)
	vns, err := l.VirtualNodes(ctx, "demo")
	if err != nil || len(vns) != 1 || vns[0].Namespace != "demo" {
		t.Fatalf("VirtualNodes(demo) = %v, %v", vns, err)
	}
	vgs, err := l.(VirtualGatewayLister).VirtualGateways(ctx, "demo")
	if err != nil || len(vgs) != 1 || vgs[0].Name != "gw" {
		t.Fatalf("VirtualGateways(demo) = %v, %v", vgs, err)
	}
	d := testConfig.mustDecide(t, Input{Pod: testPod(app, nil), Namespace: "demo", NamespaceLabels: map[string]string{LabelInject: Enabled}, VirtualNodes: vns, VirtualGateways: vgs})
	if d.VirtualNode != "demo/podinfo" {
		t.Fatalf("node = %q", d.VirtualNode)
	}
}
