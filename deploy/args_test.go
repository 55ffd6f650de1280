package deploy_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestControllerArgsAreFlags: the controller Deployment's arguments (base and
// compatibility overlay) are a command and flags the canarymesh binary accepts, so a
// renamed flag cannot leave the manifests crash-looping.
func TestControllerArgsAreFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the canarymesh binary")
	}
	bin := filepath.Join(t.TempDir(), "canarymesh")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/canarymesh").CombinedOutput(); err != nil {
		t.Fatalf("build canarymesh: %v\n%s", err, out)
	}
	for _, dir := range []string{".", "compat"} {
		n := 0
		for _, o := range loadKustomization(t, dir) {
			if o.GetKind() != "Deployment" {
				continue
			}
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				args, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
				if len(args) == 0 {
					t.Fatalf("%s: Deployment %s has a container without args", dir, o.GetName())
				}
				n++
				// --help after the flags: cobra parses them all, refuses an unknown one,
				// and prints the help instead of running.
				out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
				if err != nil {
					t.Errorf("%s: canarymesh %v: %v\n%s", dir, args, err, out)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no controller Deployment", dir)
		}
	}
}
