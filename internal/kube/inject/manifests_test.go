package inject

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

var manifestConfig = Config{Image: "ghcr.io/canarymesh/canarymesh:test", ControlPlane: "canarymesh-controller.canarymesh-system.svc:7481", ProxyTokenSecret: "canarymesh-proxy-token"}

// runGolden injects srcs and compares the notes and output (or the error) with a golden
// file.
func runGolden(t *testing.T, golden string, srcs []Source, o ManifestOptions) {
	t.Helper()
	o.Config = manifestConfig
	out, notes, err := InjectManifests(srcs, o)
	var b strings.Builder
	if err != nil {
		b.WriteString("# error\n" + err.Error() + "\n")
	} else {
		for _, n := range notes {
			b.WriteString("# " + n + "\n")
		}
		b.Write(out)
		// The output must be valid YAML, every document of it.
		for i, doc := range strings.Split(string(out), "\n---\n") {
			var v any
			if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
				t.Errorf("%s: output document %d is not valid YAML: %v", golden, i+1, err)
			}
		}
	}
	path := filepath.Join("testdata", "golden", golden)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n%s", golden, b.String())
	}
}

func readSource(t *testing.T, path string) Source {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel("testdata/seeds", path)
	return Source{Name: rel, Data: b}
}

// TestInjectSeedFiles runs every seed manifest through the offline injector on its own.
func TestInjectSeedFiles(t *testing.T) {
	var files []string
	err := filepath.WalkDir("testdata/seeds", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("seeds: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		src := readSource(t, f)
		t.Run(src.Name, func(t *testing.T) {
			runGolden(t, "files/"+src.Name, []Source{src}, ManifestOptions{})
		})
	}
}

// TestInjectSeedScenarios injects whole scenarios, so workloads meet the VirtualNodes
// written beside them.
func TestInjectSeedScenarios(t *testing.T) {
	demo := []Source{
		readSource(t, "testdata/seeds/flagger-appmesh-demo/namespace.yaml"),
		readSource(t, "testdata/seeds/flagger-appmesh-demo/tester/virtual-node.yaml"),
		readSource(t, "testdata/seeds/flagger-appmesh-demo/tester/deployment.yaml"),
		readSource(t, "testdata/seeds/flagger-appmesh-demo/podinfo/deployment.yaml"),
	}
	runGolden(t, "scenario-flagger-demo.yaml", demo, ManifestOptions{})
	caseStudy := []Source{
		readSource(t, "testdata/seeds/case-study/mesh_component/nodes_representing_physical_services.yaml"),
		readSource(t, "testdata/seeds/case-study/inital_architecture/deploy.yml"),
	}
	runGolden(t, "scenario-case-study-flags.yaml", caseStudy, ManifestOptions{VirtualNode: "hello-v1", Mesh: "hello"})
}

func TestInjectManifestShapes(t *testing.T) {
	tests := []struct {
		name, in string
		o        ManifestOptions
	}{
		{"list-and-kinds", `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: bare, namespace: shop, labels: {app: cart}}
  spec: {containers: [{name: cart, image: cart, ports: [{containerPort: 8080}]}]}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings}
  data: {a: "1"}
---
# a comment-only document is dropped
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata:
      labels: {app: db}
      annotations: {canarymesh.dev/proxy-mode: explicit, appmesh.k8s.aws/egressIgnoredIPs: 169.254.169.254}
    spec: {containers: [{name: db, image: db}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        metadata: {annotations: {appmesh.k8s.aws/sidecarInjectorWebhook: disabled}}
        spec: {restartPolicy: Never, containers: [{name: job, image: job}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: agent}, {name: canarymesh-proxy, image: old}]}
---
apiVersion: canarymesh.dev/v1alpha1
kind: VirtualNode
metadata: {name: cart-v1, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: cart.shop.svc.cluster.local}}
`, ManifestOptions{}},
		{"two-nodes-match", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: cart-v1, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: cart.shop}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: cart-v2, namespace: shop}
spec:
  podSelector: {matchLabels: {app: cart}}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: cart.shop}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: cart, image: cart}]}
`, ManifestOptions{}},
		{"bad-annotation", `apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}, annotations: {appmesh.k8s.aws/egressIgnoredPorts: "22,ssh"}}
    spec: {containers: [{name: cart, image: cart}]}
`, ManifestOptions{}},
		{"bad-template", `apiVersion: apps/v1
kind: Deployment
metadata: {name: cart}
spec:
  template:
    spec: {containers: [{name: cart, image: cart, prots: [80]}]}
`, ManifestOptions{}},
		{"no-template", `apiVersion: apps/v1
kind: Deployment
metadata: {name: cart}
spec: {replicas: 2}
`, ManifestOptions{}},
		{"not-yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n", ManifestOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runGolden(t, "shapes/"+tt.name+".yaml", []Source{{Name: tt.name + ".yaml", Data: []byte(tt.in)}}, tt.o)
		})
	}
}

func TestInjectManifestsIsIdempotent(t *testing.T) {
	src := readSource(t, "testdata/seeds/flagger-appmesh-demo/podinfo/deployment.yaml")
	once, _, err := InjectManifests([]Source{src}, ManifestOptions{Config: manifestConfig})
	if err != nil {
		t.Fatal(err)
	}
	twice, notes, err := InjectManifests([]Source{{Name: "once.yaml", Data: once}}, ManifestOptions{Config: manifestConfig})
	if err != nil {
		t.Fatal(err)
	}
	if string(twice) != string(once) || len(notes) != 1 || !strings.Contains(notes[0], "skipped: already injected") {
		t.Fatalf("second injection changed the output or said %q", notes)
	}
}
