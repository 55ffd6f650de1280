package gen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canarymesh/canarymesh/deploy"
)

// copyDir copies the regular files of src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChartValueMustOccurInBase(t *testing.T) {
	src := t.TempDir()
	copyDir(t, "../../crds", filepath.Join(src, "crds"))
	copyDir(t, "../../kustomize", filepath.Join(src, "kustomize"))
	copyDir(t, "../../grafana", filepath.Join(src, "grafana"))
	if _, err := Generate(src); err != nil {
		t.Fatalf("a copy of the tree: %v", err)
	}
	p := filepath.Join(src, "kustomize", "controller.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "replicas: 2", "replicas: 3")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Generate(src)
	if err == nil || !strings.Contains(err.Error(), `"replicas: 2"`) {
		t.Fatalf("a base without the replicas literal: error %v, want one naming it", err)
	}
}

func TestWriteRemovesStaleFiles(t *testing.T) {
	dst := t.TempDir()
	stale := filepath.Join(dst, "compat-crds", "flagger.app_gone.yaml")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := write(dst, map[string][]byte{"compat-crds/kustomization.yaml": []byte("y")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale file kept: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "compat-crds", "kustomization.yaml")); err != nil || string(b) != "y" {
		t.Errorf("generated file: %q, %v", b, err)
	}
}

func TestCompatNeedsEveryKind(t *testing.T) {
	crds, err := deploy.CRDs()
	if err != nil {
		t.Fatal(err)
	}
	var without = crds[:0:0]
	for _, c := range crds {
		if c.Spec.Names.Kind != "GatewayRoute" {
			without = append(without, c)
		}
	}
	_, err = deploy.CompatCRDsFrom(without)
	if err == nil || !strings.Contains(err.Error(), "GatewayRoute") {
		t.Fatalf("error %v, want one naming the missing kind", err)
	}
}
