package validate

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsyaml "sigs.k8s.io/yaml"
)

// canaryYAML is a valid canarymesh.dev Canary; the cases below break one field of it.
const canaryYAML = `apiVersion: canarymesh.dev/v1alpha1
kind: Canary
metadata: {name: podinfo, namespace: demo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 1m
`

const nodeYAML = `apiVersion: canarymesh.dev/v1alpha1
kind: VirtualNode
metadata: {name: front, namespace: demo}
spec:
  awsName: front_demo
  meshRef: {name: global, uid: 1a2b}
  podSelector: {matchLabels: {app: front}}
  listeners:
  - portMapping: {port: 8080, protocol: http}
  serviceDiscovery:
    dns: {hostname: front.demo.svc.cluster.local}
`

const eventYAML = `apiVersion: canarymesh.dev/v1alpha1
kind: Event
metadata: {name: podinfo.17a1, namespace: demo}
involvedObject: {kind: Canary, name: podinfo}
type: Normal
reason: Synced
message: Initialization done! podinfo.demo
count: 1
firstTimestamp: "2026-01-01T00:00:00Z"
lastTimestamp: "2026-01-01T00:00:00Z"
`

const appMeshNodeYAML = `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: front, namespace: demo}
spec:
  podSelector: {matchLabels: {app: front}}
  listeners:
  - portMapping: {port: 8080, protocol: http}
  serviceDiscovery:
    dns: {hostname: front.demo.svc.cluster.local}
`

func TestHandler(t *testing.T) {
	seed, err := os.ReadFile("../../../examples/podinfo/canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{Log: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		name     string
		op       admissionv1.Operation
		sub      string
		old, cur string
		edit     func(cur map[string]any)
		editOld  func(old map[string]any)
		want     []string // fragments of the refusal; none for allowed
	}{
		{name: "valid canary", op: admissionv1.Create, cur: canaryYAML},
		{name: "Flagger seed canary", op: admissionv1.Create, cur: string(seed)},
		{name: "empty metric name", op: admissionv1.Create, cur: canaryYAML,
			edit: func(m map[string]any) { set(m, "", "spec", "analysis", "metrics", 0, "name") },
			want: []string{"Canary demo/podinfo is invalid: ", "spec.analysis.metrics[0].name: is required"}},
		{name: "no analysis", op: admissionv1.Create, cur: canaryYAML,
			edit: func(m map[string]any) { delete(m["spec"].(map[string]any), "analysis") },
			want: []string{"spec.analysis: is required"}},
		{name: "empty targetRef name and metric name, both named", op: admissionv1.Create, cur: canaryYAML,
			edit: func(m map[string]any) {
				set(m, "", "spec", "targetRef", "name")
				set(m, "", "spec", "analysis", "metrics", 0, "name")
			},
			want: []string{"spec.targetRef.name: is required", "spec.analysis.metrics[0].name: is required"}},
		{name: "unknown field", op: admissionv1.Create, cur: canaryYAML,
			edit: func(m map[string]any) { set(m, "x", "spec", "targetRefs") },
			want: []string{"spec.targetRefs"}},
		{name: "invalid update of the spec", op: admissionv1.Update, old: canaryYAML, cur: canaryYAML,
			edit: func(m map[string]any) { set(m, "", "spec", "analysis", "metrics", 0, "name") },
			want: []string{"spec.analysis.metrics[0].name: is required"}},
		{name: "status update is not validated", op: admissionv1.Update, sub: "status", old: canaryYAML, cur: canaryYAML,
			edit: func(m map[string]any) { set(m, "", "spec", "analysis", "metrics", 0, "name") }},
		{name: "metadata-only update of a stored invalid object", op: admissionv1.Update, old: canaryYAML, cur: canaryYAML,
			editOld: func(m map[string]any) { set(m, "", "spec", "targetRef", "name") },
			edit: func(m map[string]any) {
				set(m, "", "spec", "targetRef", "name")
				set(m, []any{"canarymesh.dev/finalizer"}, "metadata", "finalizers")
			}},
		{name: "delete is not validated", op: admissionv1.Delete, cur: canaryYAML,
			edit: func(m map[string]any) { set(m, "", "spec", "targetRef", "name") }},
		{name: "valid node", op: admissionv1.Create, cur: nodeYAML},
		{name: "node awsName changed", op: admissionv1.Update, old: nodeYAML, cur: nodeYAML,
			edit: func(m map[string]any) { set(m, "other", "spec", "awsName") },
			want: []string{"VirtualNode demo/front is invalid: ", `spec.awsName: is immutable: "front_demo" cannot become "other"`}},
		{name: "node moved to another mesh", op: admissionv1.Update, old: nodeYAML, cur: nodeYAML,
			edit: func(m map[string]any) { set(m, map[string]any{"name": "other"}, "spec", "meshRef") },
			want: []string{`spec.meshRef.name: is immutable`}},
		{name: "node meshRef left out keeps the stored one", op: admissionv1.Update, old: nodeYAML, cur: nodeYAML,
			edit: func(m map[string]any) {
				delete(m["spec"].(map[string]any), "meshRef")
				set(m, "front.demo", "spec", "serviceDiscovery", "dns", "hostname")
			}},
		{name: "valid Event (its fields are not under spec)", op: admissionv1.Create, cur: eventYAML},
		{name: "Event of no type", op: admissionv1.Create, cur: eventYAML,
			edit: func(m map[string]any) { set(m, "Info", "type") },
			want: []string{"Event demo/podinfo.17a1 is invalid: type: \"Info\" is not Normal or Warning"}},
		{name: "Event count bumped", op: admissionv1.Update, old: eventYAML, cur: eventYAML,
			edit: func(m map[string]any) { set(m, int64(2), "count") }},
		{name: "valid App Mesh node", op: admissionv1.Create, cur: appMeshNodeYAML},
		{name: "invalid App Mesh node", op: admissionv1.Create, cur: appMeshNodeYAML,
			edit: func(m map[string]any) { set(m, int64(0), "spec", "listeners", 0, "portMapping", "port") },
			want: []string{"VirtualNode.appmesh.k8s.aws demo/front is invalid: ", "spec.listeners[0].portMapping.port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := fromYAML(t, tc.cur)
			if tc.edit != nil {
				tc.edit(cur)
			}
			var old map[string]any
			if tc.old != "" {
				old = fromYAML(t, tc.old)
				if tc.editOld != nil {
					tc.editOld(old)
				}
			}
			req := request(t, tc.op, tc.sub, cur, old)
			resp := h.Handle(context.Background(), req)
			if len(tc.want) == 0 {
				if !resp.Allowed {
					t.Fatalf("refused: %s", resp.Result.Message)
				}
				return
			}
			if resp.Allowed {
				t.Fatalf("allowed, want refused with %q", tc.want)
			}
			if resp.Result.Code != http.StatusUnprocessableEntity || resp.Result.Reason != metav1.StatusReasonInvalid {
				t.Errorf("code %d reason %s, want 422 Invalid", resp.Result.Code, resp.Result.Reason)
			}
			t.Log(resp.Result.Message)
			for _, w := range tc.want {
				if !strings.Contains(resp.Result.Message, w) {
					t.Errorf("message %q lacks %q", resp.Result.Message, w)
				}
			}
		})
	}
}

// TestHandlerLeavesOtherKindsAlone: a kind the webhook was not meant for is allowed.
func TestHandlerLeavesOtherKindsAlone(t *testing.T) {
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create,
		Object: runtime.RawExtension{Raw: []byte(`{"apiVersion":"v1","kind":"Pod"}`)}}}
	if resp := (&Handler{}).Handle(context.Background(), req); !resp.Allowed {
		t.Fatalf("Pod refused: %s", resp.Result.Message)
	}
}

func TestWebhookConfigurationCoversEveryStoredKind(t *testing.T) {
	cfg := WebhookConfiguration("v", admissionregistrationClient())
	got := map[string]bool{}
	for _, r := range cfg.Webhooks[0].Rules {
		for _, res := range r.Resources {
			got[r.APIGroups[0]+"/"+res] = true
			if strings.Contains(res, "/") {
				t.Errorf("rule matches subresource %s", res)
			}
		}
	}
	for _, want := range []string{"canarymesh.dev/canaries", "canarymesh.dev/virtualnodes", "canarymesh.dev/meshes",
		"canarymesh.dev/workloads", "appmesh.k8s.aws/virtualnodes", "flagger.app/canaries"} {
		if !got[want] {
			t.Errorf("no rule for %s (rules cover %v)", want, got)
		}
	}
	if got["canarymesh.dev/proxies"] {
		t.Error("proxies are computed, not stored; no rule expected")
	}
}

func fromYAML(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := sigsyaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// set writes v at path (map keys and slice indexes), creating maps on the way.
func set(m map[string]any, v any, path ...any) {
	var cur any = m
	for i, p := range path {
		last := i == len(path)-1
		switch k := p.(type) {
		case string:
			mm := cur.(map[string]any)
			if last {
				mm[k] = v
				return
			}
			if mm[k] == nil {
				mm[k] = map[string]any{}
			}
			cur = mm[k]
		case int:
			s := cur.([]any)
			if last {
				s[k] = v
				return
			}
			cur = s[k]
		}
	}
}

func request(t *testing.T, op admissionv1.Operation, sub string, cur, old map[string]any) admission.Request {
	t.Helper()
	raw := func(m map[string]any) []byte {
		b, err := sigsyaml.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		j, err := sigsyaml.YAMLToJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	av, _ := cur["apiVersion"].(string)
	group, version, _ := strings.Cut(av, "/")
	md, _ := cur["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	ns, _ := md["namespace"].(string)
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Kind:      metav1.GroupVersionKind{Group: group, Version: version, Kind: cur["kind"].(string)},
		Operation: op, SubResource: sub, Name: name, Namespace: ns,
		Object: runtime.RawExtension{Raw: raw(cur)},
	}}
	if old != nil {
		req.OldObject = runtime.RawExtension{Raw: raw(old)}
	}
	return req
}

func admissionregistrationClient() admissionregistrationv1.WebhookClientConfig {
	url := "https://127.0.0.1:9443" + WebhookPath
	return admissionregistrationv1.WebhookClientConfig{URL: &url}
}
