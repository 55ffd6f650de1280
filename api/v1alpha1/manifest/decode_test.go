package manifest

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Each bad input yields one error naming the file, the line and the field.
func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // substring of the one error
	}{
		{"unknown field with its path", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: web, namespace: shop}
spec:
  listeners:
    - portMapping: {port: 80, protocol: http}
      helthCheck: {}
`, "in.yaml:7: VirtualNode shop/web: spec.listeners[0].helthCheck: unknown field"},
		{"wrong type", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: web, namespace: shop}
spec:
  listeners:
    - portMapping: {port: eighty, protocol: http}
`, "expected an integer, found string"},
		{"missing apiVersion", "kind: Mesh\nmetadata: {name: m}\n", "in.yaml:1: document 1: apiVersion: is required"},
		{"missing kind", "apiVersion: v1\nmetadata: {name: m}\n", "in.yaml:1: document 1: kind: is required"},
		{"unknown kind of ours", "apiVersion: canarymesh.dev/v1alpha1\nkind: Meshh\nmetadata: {name: m}\n", `canarymesh.dev/v1alpha1 has no kind "Meshh"`},
		{"unknown App Mesh version", "apiVersion: appmesh.k8s.aws/v1beta3\nkind: Mesh\nmetadata: {name: m}\n", `version "v1beta3" of App Mesh's API is not known`},
		{"unknown Flagger kind", "apiVersion: flagger.app/v1beta1\nkind: Canry\nmetadata: {name: m}\n", `flagger.app/v1beta1 has no kind "Canry"`},
		{"not a mapping", "- a\n- b\n", "expected a mapping with apiVersion and kind"},
		{"broken YAML", "apiVersion: v1\n\tkind: Namespace\n", "in.yaml:2: document 1: not valid YAML: found a tab character"},
		{"validation after v1beta1 conversion points at the source line", `apiVersion: appmesh.k8s.aws/v1beta1
kind: VirtualService
metadata: {name: hello.shop, namespace: shop}
spec:
  meshName: m
  virtualRouter: {name: hello-router}
  routes:
    - name: r
      http:
        match: {prefix: /}
        action:
          weightedTargets:
            - virtualNodeName: a
              weight: 150
`, "in.yaml:14: VirtualRouter shop/hello-router: spec.routes[0].httpRoute.action.weightedTargets[0].weight: 150 is above 100"},
		{"v1beta1 routes without a router", `apiVersion: appmesh.k8s.aws/v1beta1
kind: VirtualService
metadata: {name: hello.shop, namespace: shop}
spec:
  meshName: m
  routes:
    - name: r
      http: {match: {prefix: /}, action: {weightedTargets: [{virtualNodeName: a, weight: 1}]}}
`, "spec.virtualRouter: is required when routes are given"},
		{"duplicate key", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\nkind: Namespace\n", `in.yaml:4: document 1: key "kind" is defined a second time (first at line 2)`},
		{"invalid name", "apiVersion: canarymesh.dev/v1alpha1\nkind: Mesh\nmetadata: {name: Not_Valid}\n", "in.yaml:3: Mesh Not_Valid: metadata.name"},
		{"merge keys", "apiVersion: v1\nkind: Namespace\nmetadata:\n  <<: {name: a}\n", "merge keys"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode("in.yaml", []byte(c.in), Options{})
			if err == nil {
				t.Fatalf("no error; want %q", c.want)
			}
			errs, ok := err.(Errors)
			if !ok || len(errs) != 1 {
				t.Fatalf("want one error, got %T %v", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error\n  %v\nlacks\n  %s", err, c.want)
			}
		})
	}
}

// Every problem of an input is reported, not just the first.
func TestDecodeReportsEveryProblem(t *testing.T) {
	in := `apiVersion: canarymesh.dev/v1alpha1
kind: Mesh
metadata: {name: a}
spec: {egressFilter: {type: SOMETIMES}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: Mesh
metadata: {name: b}
spec: {colour: blue}
`
	_, err := Decode("in.yaml", []byte(in), Options{})
	errs, ok := err.(Errors)
	if !ok || len(errs) != 2 {
		t.Fatalf("want two errors, got %v", err)
	}
	if errs[0].Line != 4 || errs[0].Field != "spec.egressFilter.type" {
		t.Errorf("first error at line %d field %s", errs[0].Line, errs[0].Field)
	}
	if errs[1].Line != 9 || errs[1].Doc != 2 || errs[1].Field != "spec.colour" {
		t.Errorf("second error at line %d doc %d field %s", errs[1].Line, errs[1].Doc, errs[1].Field)
	}
}

func TestSkippedKindsGiveOneNoticeEach(t *testing.T) {
	in := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {whatever: [1, 2]}
---
apiVersion: example.com/v1
kind: Gadget
metadata: {name: g}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {mesh: m}}
`
	res, err := Decode("in.yaml", []byte(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notices) != 2 || !strings.Contains(res.Notices[0], "in.yaml:1: skipped apps/v1 Deployment shop/web") ||
		!strings.Contains(res.Notices[1], "in.yaml:6: skipped example.com/v1 Gadget g") {
		t.Errorf("notices: %q", res.Notices)
	}
	if len(res.Items) != 1 {
		t.Fatalf("items: %d", len(res.Items))
	}
	ns, ok := res.Items[0].Object.(*corev1.Namespace)
	if !ok || ns.Labels["mesh"] != "m" || ns.Kind != "Namespace" || ns.APIVersion != "v1" {
		t.Errorf("namespace kept wrongly: %#v", res.Items[0].Object)
	}
}

func TestNamespaces(t *testing.T) {
	in := "apiVersion: canarymesh.dev/v1alpha1\nkind: Workload\nmetadata: {name: w}\nspec: {command: [sleep, '1']}\n"
	res, err := Decode("in.yaml", []byte(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Items[0].Object.GetNamespace(); got != "default" {
		t.Errorf("namespace %q, want default", got)
	}
	res, err = Decode("in.yaml", []byte(in), Options{Namespace: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Items[0].Object.GetNamespace(); got != "prod" {
		t.Errorf("namespace %q, want prod", got)
	}
	other := "apiVersion: canarymesh.dev/v1alpha1\nkind: Workload\nmetadata: {name: w, namespace: dev}\nspec: {command: [sleep, '1']}\n"
	if _, err := Decode("in.yaml", []byte(other), Options{Namespace: "prod", Enforce: true}); err == nil ||
		!strings.Contains(err.Error(), `metadata.namespace: "dev" does not match the namespace "prod"`) {
		t.Errorf("mismatched namespace: %v", err)
	}
	mesh := "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: m, namespace: dev}\nspec: {}\n"
	res, err = Decode("in.yaml", []byte(mesh), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Items[0].Object.GetNamespace() != "" || len(res.Notices) != 1 {
		t.Errorf("a Mesh keeps namespace %q; notices %q", res.Items[0].Object.GetNamespace(), res.Notices)
	}
}

// A v1beta1 VirtualService with routes becomes a VirtualService provided by a router, and
// the router holding the routes, with every route field carried over.
func TestV1beta1VirtualServiceConversion(t *testing.T) {
	in := `apiVersion: appmesh.k8s.aws/v1beta1
kind: VirtualService
metadata: {name: web.shop, namespace: shop}
spec:
  meshName: m
  virtualRouter:
    name: web-router
    listeners: [{portMapping: {port: 8080, protocol: http}}]
  routes:
    - name: canary
      priority: 10
      http:
        match:
          prefix: /
          method: GET
          headers: [{name: x-canary, match: {exact: "on"}}, {name: x-v, invert: true, match: {range: {start: 1, end: 5}}}]
        action:
          weightedTargets: [{virtualNodeName: web-v1, weight: 90}, {virtualNodeName: web-v2, weight: 10}]
        retryPolicy: {perRetryTimeoutMillis: 250, maxRetries: 3, httpRetryEvents: [server-error]}
    - name: raw
      tcp: {action: {weightedTargets: [{virtualNodeName: web-v1, weight: 1}]}}
`
	res, err := Decode("in.yaml", []byte(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 2 {
		t.Fatalf("want a VirtualService and a VirtualRouter, got %d items", len(res.Items))
	}
	vs, ok := res.Items[0].Object.(*v1alpha1.VirtualService)
	if !ok {
		t.Fatalf("first item is %T", res.Items[0].Object)
	}
	vr, ok := res.Items[1].Object.(*v1alpha1.VirtualRouter)
	if !ok {
		t.Fatalf("second item is %T", res.Items[1].Object)
	}
	got := render(t, res)
	for _, want := range []string{
		"virtualRouterRef:\n        name: web-router",
		"awsName: web.shop",
		"meshRef:\n    name: m",
		"name: web-v1\n          weight: 90",
		"name: web-v2\n          weight: 10",
		"perRetryTimeout:\n          unit: ms\n          value: 250",
		"maxRetries: 3",
		"exact: \"on\"",
		"invert: true",
		"start: 1",
		"method: GET",
		"priority: 10",
		"tcpRoute:",
		"port: 8080",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("converted output lacks %q:\n%s", want, got)
		}
	}
	if vs.Name != "web.shop" || vr.Name != "web-router" || vr.Namespace != "shop" {
		t.Errorf("names: vs %s, vr %s/%s", vs.Name, vr.Namespace, vr.Name)
	}
}

// Given twice in one input, the later definition wins and a notice says so.
func TestLaterDefinitionWins(t *testing.T) {
	a := t.TempDir() + "/a.yaml"
	b := t.TempDir() + "/b.yaml"
	writeFile(t, a, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {v: '1'}}\n")
	writeFile(t, b, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {v: '2'}}\n")
	res, err := ReadPaths([]string{a, b}, nil, false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 1 || res.Items[0].Object.GetLabels()["v"] != "2" {
		t.Errorf("kept %v", res.Items[0].Object.GetLabels())
	}
	if len(res.Notices) != 1 || !strings.Contains(res.Notices[0], "the later definition wins") {
		t.Errorf("notices %q", res.Notices)
	}
}

// A bad file among good ones fails the whole input.
func TestReadPathsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/1-good.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
	writeFile(t, dir+"/2-bad.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, colour: red}\n")
	writeFile(t, dir+"/notes.txt", "not a manifest")
	res, err := ReadPaths([]string{dir}, nil, false, Options{})
	if err == nil || res != nil {
		t.Fatalf("want an error and no result, got %v, %v", res, err)
	}
	if !strings.Contains(err.Error(), "2-bad.yaml:3: Namespace shop: metadata.colour: unknown field") {
		t.Errorf("error: %v", err)
	}
}

func TestReadStdin(t *testing.T) {
	res, err := ReadPaths([]string{"-"}, strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"), false, Options{})
	if err != nil || len(res.Items) != 1 || res.Items[0].File != "-" {
		t.Fatalf("%v %v", res, err)
	}
}
