package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
)

// seedDir holds the manifests Canarymesh's users bring: App Mesh v1beta1 objects (which
// the importer converts) and Flagger's demo (applied as it is).
const seedDir = "../api/v1alpha1/manifest/testdata/seeds"

// defectiveSeed lacks a '---' between two documents; the importer refuses it by design.
const defectiveSeed = "case-study/canary/hello_v2.yaml"

// client creates objects of any kind in the test's API server.
type client struct {
	t      *testing.T
	dyn    dynamic.Interface
	mapper meta.ResettableRESTMapper
	cs     kubernetes.Interface
}

func newClient(t *testing.T, cfg *rest.Config) *client {
	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	return &client{t: t, dyn: dynamic.NewForConfigOrDie(cfg), cs: kubernetes.NewForConfigOrDie(cfg),
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// create creates o with strict field validation (an unknown field is an error, as with
// kubectl apply), creating its namespace first when needed.
func (c *client) create(ctx context.Context, o *unstructured.Unstructured, opts metav1.CreateOptions) error {
	c.t.Helper()
	gvk := o.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return err
	}
	opts.FieldValidation = metav1.FieldValidationStrict
	if m.Scope.Name() == meta.RESTScopeNameRoot {
		o.SetNamespace("")
		_, err = c.dyn.Resource(m.Resource).Create(ctx, o, opts)
		return err
	}
	if o.GetNamespace() == "" {
		o.SetNamespace("default")
	}
	_, err = c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.GetNamespace()}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = c.dyn.Resource(m.Resource).Namespace(o.GetNamespace()).Create(ctx, o, opts)
	return err
}

// apply creates o, or replaces the object of that name, with strict field validation.
func (c *client) apply(ctx context.Context, o *unstructured.Unstructured) error {
	c.t.Helper()
	err := c.create(ctx, o.DeepCopy(), metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	ri, err := c.resource(o)
	if err != nil {
		return err
	}
	cur, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
	if err != nil {
		return err
	}
	u := o.DeepCopy()
	u.SetResourceVersion(cur.GetResourceVersion())
	_, err = ri.Update(ctx, u, metav1.UpdateOptions{FieldValidation: metav1.FieldValidationStrict})
	return err
}

// resource is the client of o's kind, in o's namespace when namespaced.
func (c *client) resource(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameRoot {
		return c.dyn.Resource(m.Resource), nil
	}
	return c.dyn.Resource(m.Resource).Namespace(o.GetNamespace()), nil
}

// check has the server validate o without storing it: a dry-run create, or a dry-run
// update when an object of that name exists.
func (c *client) check(ctx context.Context, o *unstructured.Unstructured) error {
	c.t.Helper()
	dry := []string{metav1.DryRunAll}
	err := c.create(ctx, o.DeepCopy(), metav1.CreateOptions{DryRun: dry})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	ri, err := c.resource(o)
	if err != nil {
		return err
	}
	cur, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
	if err != nil {
		return err
	}
	u := o.DeepCopy()
	u.SetResourceVersion(cur.GetResourceVersion())
	_, err = ri.Update(ctx, u, metav1.UpdateOptions{DryRun: dry, FieldValidation: metav1.FieldValidationStrict})
	return err
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestCRDsAcceptUsersObjects: with the CRDs installed, the objects users bring are
// accepted by the real API server, field by field (strict validation): App Mesh v1beta2
// and Flagger objects as written, App Mesh v1beta1 ones as the importer converts them.
func TestCRDsAcceptUsersObjects(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true, CompatCRDs: true})
	ctx := testContext(t)
	c := newClient(t, env.Config)

	for _, o := range loadYAML(t, filepath.Join("testdata", "appmesh-v1beta2.yaml")) {
		if err := c.create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Errorf("testdata/appmesh-v1beta2.yaml: %s: %v", key(o), err)
		}
	}

	applied := applyManifestDir(ctx, t, c, seedDir, defectiveSeed)
	// The project's own example, written for App Mesh v1beta2 and Flagger.
	applied += applyManifestDir(ctx, t, c, "../examples/podinfo", "")
	t.Logf("%d objects applied", applied)
}

// applyManifestDir applies every manifest under dir: App Mesh v1beta2 and Flagger objects
// as they are written, and everything the importer reads (App Mesh v1beta1 converted,
// Canarymesh's own kinds) as canarymesh.dev objects. Only the file defective may fail
// to import. It returns how many objects were applied.
func applyManifestDir(ctx context.Context, t *testing.T, c *client, dir, defective string) int {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("manifests in %s: %v (%d files)", dir, err, len(files))
	}
	applied := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, f)
		if strings.Contains(string(data), "flagger.app/") || strings.Contains(string(data), "appmesh.k8s.aws/v1beta2") {
			for _, o := range parseYAML(t, rel, data) {
				if g := o.GroupVersionKind().Group; g != "flagger.app" && g != "appmesh.k8s.aws" {
					continue
				}
				if err := c.apply(ctx, o); err != nil {
					t.Errorf("%s: %s: %v", rel, key(o), err)
				}
				applied++
			}
		}
		res, err := manifest.Decode(rel, data, manifest.Options{})
		if err != nil {
			if filepath.ToSlash(rel) != defective {
				t.Errorf("%s: %v", rel, err)
			}
			continue
		}
		for _, it := range res.Items {
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(it.Object)
			if err != nil {
				t.Fatal(err)
			}
			o := &unstructured.Unstructured{Object: u}
			o.SetGroupVersionKind(it.Object.GetObjectKind().GroupVersionKind())
			unstructured.RemoveNestedField(o.Object, "status")
			unstructured.RemoveNestedField(o.Object, "metadata", "creationTimestamp")
			// A later definition of the same object replaces the earlier one, as with
			// kubectl apply of a directory.
			if err := c.apply(ctx, o); err != nil {
				t.Errorf("%s document %d: %s: %v", rel, it.Doc, key(o), err)
			}
			applied++
		}
	}
	if applied == 0 {
		t.Fatalf("no object of %s applied", dir)
	}
	return applied
}

// TestCRDsRejectInvalidObjects: an object violating the schema is refused by the API
// server with the path of the offending field.
func TestCRDsRejectInvalidObjects(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true, CompatCRDs: true})
	ctx := testContext(t)
	c := newClient(t, env.Config)
	canary := func(apiVersion, analysis string) string {
		return `apiVersion: ` + apiVersion + `
kind: Canary
metadata: {name: podinfo, namespace: demo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
` + analysis
	}
	cases := []struct {
		name, doc, path string
	}{
		{"step weight above 100", canary("canarymesh.dev/v1alpha1", "    stepWeight: 150\n"), "spec.analysis.stepWeight"},
		{"interval not a duration", canary("flagger.app/v1beta1", "    interval: 1 minute\n"), "spec.analysis.interval"},
		{"unknown webhook type", canary("canarymesh.dev/v1alpha1", "    webhooks:\n    - {name: t, url: 'http://t/', type: sometimes}\n"), "spec.analysis.webhooks[0].type"},
		{"unknown field", canary("flagger.app/v1beta1", "    stepWieght: 5\n"), "spec.analysis.stepWieght"},
		{"listener protocol", `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: front, namespace: demo}
spec:
  listeners:
  - portMapping: {port: 8080, protocol: smtp}
`, "spec.listeners[0].portMapping.protocol"},
		{"weight above 100", `apiVersion: canarymesh.dev/v1alpha1
kind: VirtualRouter
metadata: {name: color, namespace: demo}
spec:
  listeners:
  - portMapping: {port: 8080, protocol: http}
  routes:
  - name: r
    httpRoute:
      match: {prefix: /}
      action:
        weightedTargets:
        - {virtualNodeRef: {name: blue}, weight: 101}
`, "spec.routes[0].httpRoute.action.weightedTargets[0].weight"},
		{"missing required field", `apiVersion: canarymesh.dev/v1alpha1
kind: Canary
metadata: {name: podinfo, namespace: demo}
spec:
  service: {port: 9898}
`, "spec.targetRef"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := parseYAML(t, tc.name, []byte(tc.doc))
			err := c.create(ctx, objs[0], metav1.CreateOptions{})
			if err == nil {
				t.Fatalf("accepted; want refused at %s", tc.path)
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("error %v (%T), want Invalid or BadRequest", err, err)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the field %s", err, tc.path)
			}
		})
	}
}

// TestPrinterColumns: `kubectl get canaries` and `kubectl get virtualrouters` show the
// columns users read, filled from the objects (the server renders the table).
func TestPrinterColumns(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true})
	ctx := testContext(t)
	c := newClient(t, env.Config)
	for _, o := range loadYAML(t, filepath.Join("testdata", "appmesh-v1beta2.yaml")) {
		if o.GetKind() != "VirtualRouter" {
			continue
		}
		o.SetAPIVersion("canarymesh.dev/v1alpha1")
		if err := c.create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Routers whose first route is not HTTP show their targets and weights too.
	for _, doc := range []string{`apiVersion: canarymesh.dev/v1alpha1
kind: VirtualRouter
metadata: {name: db, namespace: howto}
spec:
  listeners: [{portMapping: {port: 5432, protocol: tcp}}]
  routes:
  - name: db
    tcpRoute:
      action: {weightedTargets: [{virtualNodeRef: {name: db-a}, weight: 70}, {virtualNodeRef: {name: db-b}, weight: 30}]}
`, `apiVersion: canarymesh.dev/v1alpha1
kind: VirtualRouter
metadata: {name: rpc, namespace: howto}
spec:
  listeners: [{portMapping: {port: 9000, protocol: grpc}}]
  routes:
  - name: rpc
    grpcRoute:
      match: {serviceName: shop.Cart}
      action: {weightedTargets: [{virtualNodeRef: {name: rpc-a}, weight: 100}]}
`} {
		if err := c.create(ctx, parseYAML(t, "router", []byte(doc))[0], metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	table := getTable(t, env.Config, "/apis/canarymesh.dev/v1alpha1/namespaces/howto/virtualrouters")
	for name, cols := range map[string]map[string]any{
		"color": {"Target": "blue", "Weight": float64(90), "Target2": "green", "Weight2": float64(10)},
		"db":    {"Target": "db-a", "Weight": float64(70), "Target2": "db-b", "Weight2": float64(30)},
		"rpc":   {"Target": "rpc-a", "Weight": float64(100), "Target2": nil, "Weight2": nil},
	} {
		row := tableRow(t, table, name)
		for col, want := range cols {
			if got := row[col]; got != want {
				t.Errorf("virtualrouters %s: column %s = %v, want %v", name, col, got, want)
			}
		}
	}

	canary := parseYAML(t, "canary", []byte(`apiVersion: canarymesh.dev/v1alpha1
kind: Canary
metadata: {name: podinfo, namespace: howto}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
`))[0]
	if err := c.create(ctx, canary, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The status as the controller writes it, through the status subresource.
	gvr := schemaFor(t, c, canary)
	cur, err := c.dyn.Resource(gvr).Namespace("howto").Get(ctx, "podinfo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Object["status"] = map[string]any{"phase": "Progressing", "canaryWeight": int64(20), "failedChecks": int64(1),
		"iterations": int64(0), "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
	if _, err := c.dyn.Resource(gvr).Namespace("howto").UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status: %v", err)
	}
	table = getTable(t, env.Config, "/apis/canarymesh.dev/v1alpha1/namespaces/howto/canaries")
	var names []string
	for _, col := range table.ColumnDefinitions {
		if col.Priority == 0 {
			names = append(names, strings.ToUpper(col.Name))
		}
	}
	if got, want := strings.Join(names, " "), "NAME STATUS WEIGHT FAILEDCHECKS LASTTRANSITION"; got != want {
		t.Errorf("canaries columns %q, want %q", got, want)
	}
	row := tableRow(t, table, "podinfo")
	for col, want := range map[string]any{"Status": "Progressing", "Weight": float64(20), "FailedChecks": float64(1)} {
		if got := row[col]; got != want {
			t.Errorf("canaries column %s = %v, want %v", col, got, want)
		}
	}
	if row["LastTransition"] == nil || row["LastTransition"] == "" {
		t.Errorf("canaries column LastTransition empty")
	}
}

func schemaFor(t *testing.T, c *client, o *unstructured.Unstructured) schema.GroupVersionResource {
	t.Helper()
	gvk := o.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatal(err)
	}
	return m.Resource
}

// getTable asks the API server for a list rendered as a Table, as kubectl get does.
func getTable(t *testing.T, cfg *rest.Config, path string) *metav1.Table {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, cfg.Host+path, nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(b, table); err != nil {
		t.Fatal(err)
	}
	return table
}

// tableRow returns the row of the named object, by column name.
func tableRow(t *testing.T, table *metav1.Table, name string) map[string]any {
	t.Helper()
	for _, r := range table.Rows {
		if len(r.Cells) > 0 && r.Cells[0] == name {
			m := map[string]any{}
			for i, col := range table.ColumnDefinitions {
				if i < len(r.Cells) {
					m[col.Name] = r.Cells[i]
				}
			}
			return m
		}
	}
	t.Fatalf("no row %q in table", name)
	return nil
}

// TestKustomizeBaseAndChart: every object of the kustomize base (deploy/) and of the
// compatibility overlay (deploy/compat) is created in a real API server; the Helm chart
// renders to the same objects, and with other values to objects the server accepts.
func TestKustomizeBaseAndChart(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{})
	ctx := testContext(t)
	c := newClient(t, env.Config)

	base := loadKustomization(t, ".")
	compat := loadKustomization(t, "compat")
	createAll(ctx, t, c, base, metav1.CreateOptions{})
	checkAccess(ctx, t, c, baseAccess)
	baseKeys := byKey(base)
	var extra []*unstructured.Unstructured
	for _, o := range compat {
		if _, ok := baseKeys[key(o)]; !ok {
			extra = append(extra, o)
		}
	}
	if len(extra) == 0 {
		t.Fatal("the compat overlay adds nothing to the base")
	}
	createAll(ctx, t, c, extra, metav1.CreateOptions{})
	checkAccess(ctx, t, c, compatAccess)
	// The overlay's patched Deployment is valid too.
	for _, o := range compat {
		if o.GetKind() == "Deployment" {
			if !strings.Contains(mustJSON(t, o), `"--serve-compat-apis=true"`) {
				t.Errorf("compat overlay: Deployment does not serve the compatibility APIs")
			}
			d := o.DeepCopy()
			d.SetNamespace("compat-check")
			createAll(ctx, t, c, []*unstructured.Unstructured{d}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		}
	}

	// The chart with its default values is the base without the Namespace object (Helm
	// installs into a namespace it is given); with compatAPIs.enabled it is the overlay.
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   []*unstructured.Unstructured
	}{
		{"defaults", nil, base},
		{"compatAPIs", map[string]any{"compatAPIs": map[string]any{"enabled": true}}, compat},
	} {
		t.Run("chart "+tc.name, func(t *testing.T) {
			got := byKey(renderChart(t, "canarymesh-system", tc.values))
			want := byKey(tc.want)
			for k, w := range want {
				if w.GetKind() == "Namespace" {
					continue
				}
				g, ok := got[k]
				if !ok {
					t.Errorf("chart lacks %s", k)
					continue
				}
				ann := g.GetAnnotations()
				delete(ann, "helm.sh/resource-policy")
				if len(ann) == 0 {
					ann = nil
				}
				g.SetAnnotations(ann)
				if !reflect.DeepEqual(g.Object, w.Object) {
					t.Errorf("chart's %s differs from the kustomize base:\n chart: %s\n base:  %s", k, mustJSON(t, g), mustJSON(t, w))
				}
				delete(got, k)
			}
			for k := range got {
				t.Errorf("chart has %s, the kustomize base has not", k)
			}
		})
	}

	// Other values render to objects the server accepts, in another namespace.
	other := renderChart(t, "mesh-system", map[string]any{
		"image": map[string]any{"repository": "registry.example/canarymesh", "tag": "v9.9.9"}, "replicas": 3,
		"compatAPIs": map[string]any{"enabled": true},
		"grafana":    map[string]any{"dashboard": map[string]any{"enabled": true}},
	})
	// The Grafana dashboard's ConfigMap carries deploy/grafana's JSON as it is, Grafana's
	// own {{...}} legends included.
	wantDash, err := os.ReadFile(filepath.Join("grafana", "canarymesh-canary.json"))
	if err != nil {
		t.Fatal(err)
	}
	dashFound := false
	for _, o := range other {
		if o.GetKind() != "ConfigMap" || o.GetName() != "canarymesh-grafana-dashboard" {
			continue
		}
		dashFound = true
		got, _, _ := unstructured.NestedString(o.Object, "data", "canarymesh-canary.json")
		if got != strings.TrimRight(string(wantDash), "\n") {
			t.Errorf("chart's dashboard ConfigMap differs from deploy/grafana/canarymesh-canary.json")
		}
		if o.GetLabels()["grafana_dashboard"] != "1" {
			t.Errorf("dashboard ConfigMap labels %v lack grafana_dashboard: \"1\"", o.GetLabels())
		}
	}
	if !dashFound {
		t.Error("grafana.dashboard.enabled rendered no dashboard ConfigMap")
	}
	var others []*unstructured.Unstructured
	for _, o := range other {
		if o.GetKind() != "CustomResourceDefinition" {
			if o.GetNamespace() != "" && o.GetNamespace() != "mesh-system" {
				t.Errorf("chart object %s is not in the release namespace", key(o))
			}
			others = append(others, o)
		}
	}
	createAll(ctx, t, c, others, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	for _, o := range others {
		if o.GetKind() == "Deployment" && !strings.Contains(mustJSON(t, o), `"registry.example/canarymesh:v9.9.9"`) {
			t.Errorf("chart Deployment does not use the image value: %s", mustJSON(t, o))
		}
	}
}

// createAll creates objects in dependency order: CRDs, namespaces, then the rest.
func createAll(ctx context.Context, t *testing.T, c *client, objs []*unstructured.Unstructured, opts metav1.CreateOptions) {
	t.Helper()
	rank := func(o *unstructured.Unstructured) int {
		switch o.GetKind() {
		case "CustomResourceDefinition":
			return 0
		case "Namespace":
			return 1
		}
		return 2
	}
	for r := 0; r <= 2; r++ {
		var crds []string
		for _, o := range objs {
			if rank(o) != r {
				continue
			}
			create := func() error { return c.create(ctx, o.DeepCopy(), opts) }
			if len(opts.DryRun) > 0 {
				create = func() error { return c.check(ctx, o) }
			}
			if err := create(); err != nil {
				t.Errorf("create %s: %v", key(o), err)
			}
			if r == 0 {
				crds = append(crds, o.GetName())
			}
		}
		if len(crds) > 0 && len(opts.DryRun) == 0 {
			waitEstablished(ctx, t, c, crds)
		}
	}
}

func waitEstablished(ctx context.Context, t *testing.T, c *client, names []string) {
	t.Helper()
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, n := range names {
		for {
			o, err := c.dyn.Resource(gvr).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("CRD %s: %v", n, err)
			}
			conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
			done := false
			for _, cd := range conds {
				m, _ := cd.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					done = true
				}
			}
			if done {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("CRD %s not established", n)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	c.mapper.Reset()
}

func mustJSON(t *testing.T, o *unstructured.Unstructured) string {
	t.Helper()
	b, err := json.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
