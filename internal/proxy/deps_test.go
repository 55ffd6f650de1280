package proxy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoKubernetesImports keeps the data plane free of Kubernetes and of the API types:
// a sidecar links only the snapshot and libraries.
func TestNoKubernetesImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/") ||
			strings.HasSuffix(dep, "/api/v1alpha1") || strings.Contains(dep, "/api/v1alpha1/") {
			t.Errorf("internal/proxy depends on %s", dep)
		}
	}
}
