package deploy_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/canarymesh/canarymesh/deploy"
)

func TestEmbeddedCRDs(t *testing.T) {
	crds, err := deploy.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	compat, err := deploy.CompatCRDs()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, c := range crds {
		if c.Spec.Group != "canarymesh.dev" {
			t.Errorf("CRD %s: group %s", c.Name, c.Spec.Group)
		}
		kinds[c.Spec.Names.Kind] = true
	}
	for _, k := range []string{"Mesh", "VirtualNode", "VirtualService", "VirtualRouter", "VirtualGateway", "GatewayRoute", "Canary", "MetricTemplate", "AlertProvider"} {
		if !kinds[k] {
			t.Errorf("no canarymesh.dev CRD of kind %s", k)
		}
	}
	if kinds["Proxy"] {
		t.Error("Proxy is served from memory and must have no CRD")
	}
	want := 0
	for _, api := range deploy.CompatAPIs {
		want += len(api.Kinds)
	}
	if len(compat) != want {
		t.Fatalf("%d compatibility CRDs, want %d", len(compat), want)
	}
	for _, c := range compat {
		if len(c.Spec.Names.ShortNames) != 0 {
			t.Errorf("compatibility CRD %s has short names %v, which would make kubectl's ambiguous", c.Name, c.Spec.Names.ShortNames)
		}
		if c.Annotations[deploy.GeneratedFromAnnotation] == "" {
			t.Errorf("compatibility CRD %s does not say what it was generated from", c.Name)
		}
	}
}

func TestParseCRDsNamesFileAndDocument(t *testing.T) {
	fsys := fstest.MapFS{
		"crds/kustomization.yaml": {Data: []byte("resources: [a.yaml]\n")},
		"crds/a.yaml": {Data: []byte("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: as.example.com}\n" +
			"---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: bs.example.com}\nspec: {grop: example.com}\n")},
	}
	_, err := deploy.ParseCRDs(fsys, "crds")
	if err == nil {
		t.Fatal("unknown field accepted")
	}
	for _, want := range []string{"crds/a.yaml", "document 2", "grop"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	fsys["crds/a.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")}
	if _, err := deploy.ParseCRDs(fsys, "crds"); err == nil || !strings.Contains(err.Error(), "ConfigMap") {
		t.Errorf("a ConfigMap among CRDs: error %v", err)
	}
}
