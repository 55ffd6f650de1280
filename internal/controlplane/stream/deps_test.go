package stream

import (
	"os/exec"
	"strings"
	"testing"
)

// The proxy links the client half of this package and must stay free of Kubernetes
// packages and of the API types that pull them in.
func TestNoKubernetesImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const module = "github.com/canarymesh/canarymesh/"
	allowed := map[string]bool{
		module + "internal/controlplane/stream": true,
		module + "internal/mesh/snapshot":       true,
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, "k8s.io/"), strings.HasPrefix(dep, "sigs.k8s.io/"):
			t.Errorf("depends on Kubernetes package %s", dep)
		case strings.HasPrefix(dep, module) && !allowed[dep]:
			t.Errorf("depends on %s; only internal/mesh/snapshot is allowed", dep)
		}
	}
}
