package mesh

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// loadInputs decodes every manifest of a directory under testdata.
func loadInputs(t *testing.T, dir string) *Inputs {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in testdata/%s: %v", dir, err)
	}
	in := &Inputs{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := manifest.Decode(f, data, manifest.Options{})
		if err != nil {
			t.Fatalf("decode %s: %v", f, err)
		}
		for _, it := range res.Items {
			addObject(t, in, it.Object)
		}
	}
	return in
}

func addObject(t *testing.T, in *Inputs, o v1alpha1.Object) {
	if !in.Add(o) {
		t.Fatalf("unexpected %T in test manifests", o)
	}
}

// TestGolden compiles the seed scenarios for every node and compares each snapshot, as
// indented JSON, with its golden file; the problems of all nodes go to problems.txt.
func TestGolden(t *testing.T) {
	scenarios := map[string][]string{
		"case-study": {snapshot.EgressNode, "VirtualNode/case-study/hello", "VirtualNode/case-study/hello-v1",
			"VirtualNode/case-study/hello-v2"},
		"flagger-demo": {snapshot.EgressNode, "VirtualGateway/demo/appmesh-gateway", "VirtualNode/demo/flagger-loadtester",
			"VirtualNode/demo/podinfo-canary", "VirtualNode/demo/podinfo-primary"},
	}
	for dir, nodes := range scenarios {
		t.Run(dir, func(t *testing.T) {
			in := loadInputs(t, dir)
			if got := Nodes(in); strings.Join(got, " ") != strings.Join(nodes, " ") {
				t.Errorf("Nodes = %v, want %v", got, nodes)
			}
			var problems bytes.Buffer
			for _, node := range nodes {
				s, ps, err := Compile(in, node, nil, Options{})
				if err != nil {
					t.Fatalf("Compile(%s): %v", node, err)
				}
				b, err := json.MarshalIndent(s, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				file := strings.ReplaceAll(node, "/", "_") + ".json"
				golden(t, filepath.Join("testdata", "golden", dir, file), append(b, '\n'))
				for _, p := range ps {
					fmt.Fprintf(&problems, "%s: %s\n", node, p)
				}
			}
			golden(t, filepath.Join("testdata", "golden", dir, "problems.txt"), problems.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/mesh -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the compiled output (run with -update if the change is intended):\n%s", path, got)
	}
}
