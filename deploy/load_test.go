package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/template"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of a kustomization file the deploy/ tree uses. Any other
// field fails the loader, so the test never silently diverges from kustomize.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Patches    []struct {
		Target struct {
			Group   string `json:"group"`
			Version string `json:"version"`
			Kind    string `json:"kind"`
			Name    string `json:"name"`
		} `json:"target"`
		Patch string `json:"patch"`
	} `json:"patches"`
}

// loadKustomization builds a kustomization directory as kustomize does for the features
// used here: resources (files and directories) and JSON 6902 patches.
func loadKustomization(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s/kustomization.yaml: resource %s: %v", dir, r, err)
		}
		if st.IsDir() {
			objs = append(objs, loadKustomization(t, p)...)
			continue
		}
		objs = append(objs, loadYAML(t, p)...)
	}
	for _, p := range k.Patches {
		ops, err := yaml.YAMLToJSON([]byte(p.Patch))
		if err != nil {
			t.Fatalf("%s: patch: %v", dir, err)
		}
		patch, err := jsonpatch.DecodePatch(ops)
		if err != nil {
			t.Fatalf("%s: patch: %v", dir, err)
		}
		matched := 0
		for _, o := range objs {
			gvk := o.GroupVersionKind()
			if gvk.Group != p.Target.Group || gvk.Version != p.Target.Version || gvk.Kind != p.Target.Kind || o.GetName() != p.Target.Name {
				continue
			}
			matched++
			doc, _ := json.Marshal(o.Object)
			out, err := patch.Apply(doc)
			if err != nil {
				t.Fatalf("%s: patch %s/%s: %v", dir, p.Target.Kind, p.Target.Name, err)
			}
			o.Object = nil
			if err := o.UnmarshalJSON(out); err != nil {
				t.Fatal(err)
			}
		}
		if matched != 1 {
			t.Fatalf("%s: patch target %s/%s matched %d objects", dir, p.Target.Kind, p.Target.Name, matched)
		}
	}
	return objs
}

// loadYAML reads every object of a multi-document YAML file.
func loadYAML(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseYAML(t, path, b)
}

func parseYAML(t *testing.T, name string, b []byte) []*unstructured.Unstructured {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var objs []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s document %d: %v", name, doc, err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatalf("%s document %d: %v", name, doc, err)
		}
		if s := strings.TrimSpace(string(js)); s == "null" || s == "{}" {
			continue
		}
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(js); err != nil {
			t.Fatalf("%s document %d: %v", name, doc, err)
		}
		objs = append(objs, o)
	}
}

// renderChart renders the Helm chart's templates (and reads its crds/) with the given
// values over values.yaml. The templates use only value lookups, .Release.Namespace and
// `if`, which text/template evaluates as Helm does.
func renderChart(t *testing.T, namespace string, override map[string]any) []*unstructured.Unstructured {
	t.Helper()
	chart := filepath.Join("helm", "canarymesh")
	b, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	merge(values, override)
	data := map[string]any{"Values": values, "Release": map[string]any{"Namespace": namespace, "Name": "canarymesh"}}
	var objs []*unstructured.Unstructured
	crds, _ := filepath.Glob(filepath.Join(chart, "crds", "*.yaml"))
	for _, f := range crds {
		objs = append(objs, loadYAML(t, f)...)
	}
	templates, _ := filepath.Glob(filepath.Join(chart, "templates", "*.yaml"))
	sort.Strings(templates)
	for _, f := range templates {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tpl, err := template.New(filepath.Base(f)).Option("missingkey=error").Parse(string(src))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var out bytes.Buffer
		if err := tpl.Execute(&out, data); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		objs = append(objs, parseYAML(t, f, out.Bytes())...)
	}
	return objs
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				merge(dv, sv)
				continue
			}
		}
		dst[k] = v
	}
}

// key identifies an object in comparisons.
func key(o *unstructured.Unstructured) string {
	return o.GetAPIVersion() + " " + o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

func byKey(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		m[key(o)] = o
	}
	return m
}
