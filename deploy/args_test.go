package deploy_test

import (
	"os/exec"
	"path/filepath"
	"strings"
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
	checkProxyTokenSecret(t, bin)
}

// checkProxyTokenSecret: the injector of the kustomize base gives sidecars the push
// stream's token through a Secret it writes, not as a literal in the pod spec (which any
// reader of pods could copy), and that Secret has the name `canarymesh inject` output
// refers to, so workloads injected offline start in a cluster installed from deploy/.
func checkProxyTokenSecret(t *testing.T, bin string) {
	t.Helper()
	var secret string
	for _, o := range loadKustomization(t, ".") {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			args, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, "--proxy-token-secret="); ok {
					secret = v
				}
			}
		}
	}
	if secret == "" {
		t.Fatal("the controller Deployment injects sidecars without --proxy-token-secret: the stream token would be written into every injected pod spec")
	}
	cmd := exec.Command(bin, "inject", "-f", "-")
	cmd.Stdin = strings.NewReader(`apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: cart, image: cart}]}
`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("canarymesh inject: %v", err)
	}
	if want := "name: " + secret + "\n"; !strings.Contains(string(out), want) {
		t.Errorf("canarymesh inject output does not read the token from Secret %s, the controller's --proxy-token-secret:\n%s", secret, out)
	}
}
