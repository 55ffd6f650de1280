package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// runInjectCommand runs `canarymesh inject ARGS` with stdin and returns stdout, stderr
// and the error.
func runInjectCommand(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"inject"}, args...))
	err := root.Execute()
	return out.String(), errOut.String(), err
}

const injectDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: cart, namespace: shop}
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec: {containers: [{name: cart, image: cart, ports: [{containerPort: 8080}]}]}
`

func TestInjectCommand(t *testing.T) {
	out, notes, err := runInjectCommand(t, injectDeployment, "-f", "-", "--virtual-node", "cart-v1", "--mesh", "shop",
		"--image", "example/canarymesh:1", "--control-plane", "cp.example:7481", "--proxy-token", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notes, "Deployment shop/cart: injected (VirtualNode shop/cart-v1)") {
		t.Fatalf("stderr = %q", notes)
	}
	var dep struct {
		Spec struct {
			Template struct {
				Metadata struct{ Annotations map[string]string }
				Spec     struct {
					Containers     []struct{ Name string }
					InitContainers []struct {
						Name, Image string
						Args        []string
						Env         []struct{ Name, Value string }
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal([]byte(out), &dep); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out)
	}
	tmpl := dep.Spec.Template
	if len(tmpl.Spec.Containers) != 1 || len(tmpl.Spec.InitContainers) != 2 {
		t.Fatalf("output:\n%s", out)
	}
	proxy := tmpl.Spec.InitContainers[1]
	if proxy.Image != "example/canarymesh:1" || !strings.Contains(strings.Join(proxy.Args, " "), "--node shop/cart-v1 --control-plane cp.example:7481") {
		t.Errorf("proxy = %+v", proxy)
	}
	if len(proxy.Env) != 1 || proxy.Env[0].Value != "s3cret" {
		t.Errorf("proxy env = %+v, want the literal token (no Secret reference)", proxy.Env)
	}
	if tmpl.Metadata.Annotations["canarymesh.dev/mesh"] != "shop" {
		t.Errorf("annotations = %v", tmpl.Metadata.Annotations)
	}
}

func TestInjectCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(injectDeployment, "labels: {app: cart}}", "labels: {app: cart}, annotations: {appmesh.k8s.aws/ports: web}}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", bad}, bad + ":7: Deployment shop/cart: spec.template.metadata.annotations[appmesh.k8s.aws/ports]: \"web\": port \"web\" is not a number"},
		{[]string{"-f", dir + "/missing.yaml"}, "no such file"},
		{[]string{"-f", "-", "--image-pull-policy", "Sometimes"}, `--image-pull-policy "Sometimes"`},
		{[]string{"-f", "-", "--control-plane", "nohost"}, `control plane address "nohost"`},
		{[]string{}, `required flag(s) "filename" not set`},
	} {
		out, _, err := runInjectCommand(t, injectDeployment, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("inject %v: error %v, want one containing %q", tc.args, err, tc.want)
		}
		if out != "" {
			t.Errorf("inject %v printed output despite the error", tc.args)
		}
	}
}

func TestInjectInitDryRun(t *testing.T) {
	t.Setenv("APPMESH_APP_PORTS", "9898")
	t.Setenv("APPMESH_EGRESS_IGNORED_IP", "169.254.169.254")
	out, _, err := runInjectCommand(t, "", "init", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--dports 9898 -j REDIRECT --to-ports 15000", "--uid-owner 1337 -j RETURN", "-d 169.254.169.254 -j RETURN", "REDIRECT --to-ports 15001"} {
		if !strings.Contains(out, want) {
			t.Errorf("rules lack %q:\n%s", want, out)
		}
	}
}
