package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const caseStudy = "../../examples/case-study"

// Given a fresh data directory, when the case-study manifests are applied in the
// tutorial's order, then every object reads back, the router shows the 90/10 canary,
// and after SIGKILL and a restart everything is still there unchanged.
func TestCaseStudySurvivesKill(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)

	info, err := os.Stat(filepath.Join(dir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("token mode = %v, want 0600", info.Mode().Perm())
	}

	for _, step := range []string{"inital_architecture", "CRD", "injector", "mesh_component", "canary"} {
		s.mustCLI("apply", "-f", filepath.Join(caseStudy, step))
	}

	routes := s.mustCLI("get", "vr", "-n", "case-study")
	if !strings.Contains(routes, "hello-route(hello-v1=90,hello-v2=10)") {
		t.Errorf("get vr does not show the 90/10 split:\n%s", routes)
	}
	several := s.mustCLI("get", "vs,vr", "-n", "case-study")
	for _, want := range []string{"hello.case-study.svc.cluster.local", "hello-route(hello-v1=90,hello-v2=10)"} {
		if !strings.Contains(several, want) {
			t.Errorf("get vs,vr lacks %q:\n%s", want, several)
		}
	}
	var list struct {
		Kind  string
		Items []struct{ Kind string }
	}
	if err := json.Unmarshal([]byte(s.mustCLI("get", "all", "-A", "-o", "json")), &list); err != nil {
		t.Fatalf("get all -o json: %v", err)
	}
	kinds := map[string]int{}
	for _, it := range list.Items {
		kinds[it.Kind]++
	}
	if list.Kind != "List" || kinds["Mesh"] != 1 || kinds["VirtualNode"] != 3 || kinds["VirtualRouter"] != 1 || kinds["VirtualService"] < 1 {
		t.Errorf("get all -A: kind %q, items by kind %v", list.Kind, kinds)
	}
	before := settled(t, s)
	ready := s.mustCLI("describe", "vr", "hello-router", "-n", "case-study")
	for _, want := range []string{"Conditions:", "ReferencesResolved", "True", "hello-v2"} {
		if !strings.Contains(ready, want) {
			t.Errorf("describe lacks %q:\n%s", want, ready)
		}
	}
	for _, want := range []string{"Mesh/hello", "Namespace/case-study", "Namespace/appmesh-system", "VirtualNode/case-study/hello",
		"VirtualNode/case-study/hello-v1", "VirtualNode/case-study/hello-v2", "VirtualService/case-study/hello.case-study.svc.cluster.local",
		"VirtualRouter/case-study/hello-router"} {
		if _, ok := before[want]; !ok {
			t.Errorf("%s was not stored; have %v", want, keys(before))
		}
	}

	s.kill()
	s = startServer(t, dir)
	after := settled(t, s)
	if len(after) != len(before) {
		t.Fatalf("after restart %d objects, before %d", len(after), len(before))
	}
	for k, rv := range before {
		if after[k] != rv {
			t.Errorf("%s: resourceVersion %s after restart, %s before", k, after[k], rv)
		}
	}

	// Applying the same input again changes nothing.
	out := s.mustCLI("apply", "-f", filepath.Join(caseStudy, "canary"))
	if !strings.Contains(out, "virtualrouter/hello-router unchanged") {
		t.Errorf("re-apply did not report unchanged:\n%s", out)
	}
}

// settled waits until the status reconciler has nothing left to write: two snapshots in
// a row are the same.
func settled(t *testing.T, s *server) map[string]string {
	t.Helper()
	prev := snapshot(t, s)
	for i := 0; i < 100; i++ {
		time.Sleep(200 * time.Millisecond)
		cur := snapshot(t, s)
		if equal(prev, cur) {
			return cur
		}
		prev = cur
	}
	t.Fatal("objects kept changing")
	return nil
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// snapshot lists every kind across namespaces and returns kind/ns/name → resourceVersion.
func snapshot(t *testing.T, s *server) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, kind := range []string{"namespaces", "meshes", "virtualnodes", "virtualservices", "virtualrouters", "virtualgateways",
		"gatewayroutes", "canaries", "metrictemplates", "alertproviders", "workloads"} {
		js := s.mustCLI("get", kind, "-A", "-o", "json")
		var l struct {
			Items []struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name, Namespace, ResourceVersion string
				} `json:"metadata"`
			} `json:"items"`
			Kind     string `json:"kind"`
			Metadata struct {
				Name, Namespace, ResourceVersion string
			} `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(js), &l); err != nil {
			t.Fatalf("get %s -o json: %v\n%s", kind, err, js)
		}
		if l.Kind != "List" { // a single object prints bare
			l.Items = append(l.Items, struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name, Namespace, ResourceVersion string
				} `json:"metadata"`
			}{Kind: l.Kind, Metadata: l.Metadata})
		}
		for _, it := range l.Items {
			k := it.Kind + "/" + it.Metadata.Name
			if it.Metadata.Namespace != "" {
				k = it.Kind + "/" + it.Metadata.Namespace + "/" + it.Metadata.Name
			}
			out[k] = it.Metadata.ResourceVersion
		}
	}
	return out
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A request without the token is refused with 401 and stores nothing.
func TestRequestWithoutTokenIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	url, err := os.ReadFile(filepath.Join(dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSpace(string(url))
	body := `{"items":[{"apiVersion":"canarymesh.dev/v1alpha1","kind":"Mesh","metadata":{"name":"sneaky"},"spec":{}}]}`
	for _, auth := range []string{"", "Bearer wrong"} {
		req, _ := http.NewRequest(http.MethodPost, base+"/apis/canarymesh.dev/v1alpha1/apply", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("auth %q: status %d, want 401: %s", auth, resp.StatusCode, msg)
		}
	}
	if out := s.mustCLI("get", "meshes", "-o", "json"); strings.Contains(out, "sneaky") {
		t.Errorf("an unauthenticated apply stored an object:\n%s", out)
	}
	if _, _, err := run(dir, "", "--token", "wrong", "get", "meshes"); err == nil {
		t.Error("the CLI with a wrong token succeeded")
	}
}

// One bad document in an input and nothing of that input is stored; the error names the
// file, the line and the field.
func TestBadInputAppliesNothing(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	in := filepath.Join(t.TempDir(), "mixed.yaml")
	if err := os.WriteFile(in, []byte(`apiVersion: canarymesh.dev/v1alpha1
kind: Mesh
metadata:
  name: good
spec: {}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata:
  name: bad-router
  namespace: shop
spec:
  listeners:
    - portMapping: {port: 8080, protocol: http}
  routes:
    - name: r
      httpRoute:
        match: {prefix: /}
        action:
          weightedTargets:
            - virtualNodeRef: {name: a}
              weight: 150
`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, err := s.cli("apply", "-f", in)
	if err == nil {
		t.Fatal("apply of a bad input succeeded")
	}
	want := "mixed.yaml:22: VirtualRouter shop/bad-router: spec.routes[0].httpRoute.action.weightedTargets[0].weight: 150 is above 100"
	if !strings.Contains(errOut, want) {
		t.Errorf("error does not say %q:\n%s", want, errOut)
	}
	if out := s.mustCLI("get", "meshes", "-o", "json"); strings.Contains(out, `"good"`) {
		t.Errorf("the good document of a bad input was stored:\n%s", out)
	}
}

// The seed's defective file is refused with its file and line, with no server at all.
func TestDryRunNeedsNoServerAndFindsTheMissingSeparator(t *testing.T) {
	dir := t.TempDir() // no server started here
	out, _, err := run(dir, "", "apply", "--dry-run", "-o", "yaml", "-f", filepath.Join(caseStudy, "mesh_component", "virtual-services.yaml"))
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	for _, want := range []string{"kind: VirtualService", "kind: VirtualRouter", "virtualNodeRef:", "name: hello-router"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	_, errOut, err := run(dir, "", "apply", "--dry-run", "-f", "../../api/v1alpha1/manifest/testdata/seeds/case-study/canary/hello_v2.yaml")
	if err == nil {
		t.Fatal("the defective seed applied")
	}
	if !strings.Contains(errOut, "hello_v2.yaml:24:") || !strings.Contains(errOut, "'---'") {
		t.Errorf("error does not name file, line 24 and the missing separator:\n%s", errOut)
	}
}
