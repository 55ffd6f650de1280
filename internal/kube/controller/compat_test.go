package controller_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/kube/controller"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
	"github.com/canarymesh/canarymesh/internal/store"
)

const compatVirtualNode = `
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata:
  name: podinfo
  namespace: test
  labels: {team: web}
spec:
  podSelector:
    matchLabels: {app: podinfo}
  listeners:
    - portMapping: {port: 9898, protocol: http}
  serviceDiscovery:
    dns: {hostname: podinfo.test.svc.cluster.local}
`

func unstructuredOf(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// The twin of an App Mesh object is decoded by the import, labelled and owned.
func TestTwinOfCompatObject(t *testing.T) {
	u := unstructuredOf(t, compatVirtualNode)
	u.SetUID("0c9f4a2e-5d7c-4b59-9d43-2f1a7e3c8b10")
	twin, err := controller.Twin(u)
	if err != nil {
		t.Fatal(err)
	}
	vn, ok := twin.(*v1alpha1.VirtualNode)
	if !ok {
		t.Fatalf("twin is %T", twin)
	}
	if vn.Namespace != "test" || vn.Name != "podinfo" || vn.Labels["team"] != "web" ||
		vn.Labels[controller.LabelMirrorOf] != "VirtualNode.appmesh.k8s.aws" {
		t.Errorf("twin metadata = %+v", vn.ObjectMeta)
	}
	if len(vn.OwnerReferences) != 1 || vn.OwnerReferences[0].UID != u.GetUID() || vn.OwnerReferences[0].APIVersion != "appmesh.k8s.aws/v1beta2" {
		t.Errorf("twin owners = %+v", vn.OwnerReferences)
	}
	if len(vn.Spec.Listeners) != 1 || vn.Spec.Listeners[0].PortMapping.Port != 9898 || vn.Spec.ServiceDiscovery.DNS.Hostname != "podinfo.test.svc.cluster.local" {
		t.Errorf("twin spec = %+v", vn.Spec)
	}

	bad := unstructuredOf(t, compatVirtualNode)
	bad.Object["spec"].(map[string]any)["listeners"] = []any{map[string]any{"portMapping": map[string]any{"port": "many"}}}
	if _, err := controller.Twin(bad); err == nil {
		t.Error("a listener port that is not a number decodes")
	}
}

// An App Mesh v1beta2 object is reconciled untouched: its twin appears, its status is
// filled, and its spec stays byte for byte what the user wrote.
func TestCompatAPIsLeaveSpecUntouched(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true, CompatCRDs: true})
	s := newStore(t, env)
	startController(t, env, func(o *controller.Options) { o.ServeCompatAPIs = true })
	dyn := dynamic.NewForConfigOrDie(env.Config)
	ctx := t.Context()
	apply(t, s, decode(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: test, labels: {appmesh.k8s.aws/sidecarInjectorWebhook: enabled}}\n"))

	meshes := dyn.Resource(schema.GroupVersionResource{Group: "appmesh.k8s.aws", Version: "v1beta2", Resource: "meshes"})
	nodes := dyn.Resource(schema.GroupVersionResource{Group: "appmesh.k8s.aws", Version: "v1beta2", Resource: "virtualnodes"}).Namespace("test")
	if _, err := meshes.Create(ctx, unstructuredOf(t, `
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: global}
spec:
  namespaceSelector: {matchLabels: {appmesh.k8s.aws/sidecarInjectorWebhook: enabled}}
`), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created, err := nodes.Create(ctx, unstructuredOf(t, compatVirtualNode), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	specBefore, _ := json.Marshal(created.Object["spec"])

	var got *unstructured.Unstructured
	eventually(t, "the App Mesh VirtualNode's status is filled", func() (string, bool) {
		got, err = nodes.Get(ctx, "podinfo", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		types := map[string]string{}
		for _, c := range conds {
			m, _ := c.(map[string]any)
			types[fmt.Sprint(m["type"])] = fmt.Sprint(m["status"])
		}
		if types[controller.ConditionMirrored] != "True" || types[v1alpha1.ConditionReady] == "" || types[v1alpha1.ConditionReferencesResolved] == "" {
			return fmt.Sprintf("conditions %v", types), false
		}
		return "", true
	})
	specAfter, _ := json.Marshal(got.Object["spec"])
	if string(specAfter) != string(specBefore) {
		t.Errorf("spec changed:\nbefore %s\nafter  %s", specBefore, specAfter)
	}
	if got.GetGeneration() != created.GetGeneration() {
		t.Errorf("generation %d → %d: the spec was written", created.GetGeneration(), got.GetGeneration())
	}
	if !equalMaps(got.GetLabels(), created.GetLabels()) || !equalMaps(got.GetAnnotations(), created.GetAnnotations()) {
		t.Errorf("metadata changed: labels %v annotations %v", got.GetLabels(), got.GetAnnotations())
	}

	twin, err := s.Get(ctx, store.Key{Kind: "VirtualNode", Namespace: "test", Name: "podinfo"})
	if err != nil {
		t.Fatal(err)
	}
	if twin.GetLabels()[controller.LabelMirrorOf] != "VirtualNode.appmesh.k8s.aws" || len(twin.GetOwnerReferences()) != 1 ||
		twin.GetOwnerReferences()[0].UID != created.GetUID() {
		t.Errorf("twin labels %v owners %v", twin.GetLabels(), twin.GetOwnerReferences())
	}

	// Flagger's demo Canary, as it is, is mirrored the same way.
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "flagger-appmesh-demo", "podinfo", "canary.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, decode(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n"))
	canaries := dyn.Resource(schema.GroupVersionResource{Group: "flagger.app", Version: "v1beta1", Resource: "canaries"}).Namespace("demo")
	fc, err := canaries.Create(ctx, unstructuredOf(t, string(raw)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fcSpec, _ := json.Marshal(fc.Object["spec"])
	eventually(t, "the Flagger Canary is mirrored", func() (string, bool) {
		got, err := canaries.Get(ctx, "podinfo", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			if m, _ := c.(map[string]any); m["type"] == controller.ConditionMirrored && m["status"] == "True" {
				spec, _ := json.Marshal(got.Object["spec"])
				if string(spec) != string(fcSpec) || got.GetGeneration() != fc.GetGeneration() {
					t.Errorf("the Flagger Canary's spec was written:\nbefore %s\nafter  %s", fcSpec, spec)
				}
				return "", true
			}
		}
		return fmt.Sprintf("conditions %v", conds), false
	})
	twinCanary, err := s.Get(ctx, store.Key{Kind: "Canary", Namespace: "demo", Name: "podinfo"})
	if err != nil {
		t.Fatal(err)
	}
	if cd := twinCanary.(*v1alpha1.Canary); cd.Spec.TargetRef.Name != "podinfo" || cd.Labels[controller.LabelMirrorOf] != "Canary.flagger.app" {
		t.Errorf("Canary twin: targetRef %+v labels %v", cd.Spec.TargetRef, cd.Labels)
	}

	// Deleting the App Mesh object removes its twin.
	if err := nodes.Delete(ctx, "podinfo", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the twin goes with its App Mesh object", func() (string, bool) {
		_, err := s.Get(ctx, store.Key{Kind: "VirtualNode", Namespace: "test", Name: "podinfo"})
		if errors.Is(err, store.ErrNotFound) {
			return "", true
		}
		return fmt.Sprintf("twin: %v", err), false
	})
}

func equalMaps(a, b map[string]string) bool {
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
