package inject

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// staticNodes and staticNamespaces are the handler's two small inputs, held in memory.
type staticNodes []*v1alpha1.VirtualNode

func (s staticNodes) VirtualNodes(context.Context, string) ([]*v1alpha1.VirtualNode, error) {
	return s, nil
}

type staticNamespaces map[string]map[string]string

func (s staticNamespaces) NamespaceLabels(_ context.Context, name string) (map[string]string, error) {
	l, ok := s[name]
	if !ok {
		return nil, errors.New("namespace " + name + " unreadable")
	}
	return l, nil
}

func review(t *testing.T, ns string, pod *corev1.Pod) admission.Request {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create, Namespace: ns,
		Object: runtime.RawExtension{Raw: raw},
	}}
}

func TestHandler(t *testing.T) {
	app := map[string]string{"app": "podinfo"}
	h := &Handler{Config: testConfig, Log: slog.New(slog.DiscardHandler),
		VirtualNodes: staticNodes{vnode("demo", "podinfo", app, 9898), vnode("demo", "twin", map[string]string{"twin": "1"}), vnode("demo", "twin2", map[string]string{"twin": "1"})},
		Namespaces:   staticNamespaces{"demo": {LabelInject: Enabled}, "plain": nil}}
	ctx := context.Background()

	resp := h.Handle(ctx, review(t, "demo", testPod(app, nil)))
	if !resp.Allowed || len(resp.Patches) == 0 || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("labelled namespace: allowed %v, %d patches", resp.Allowed, len(resp.Patches))
	}
	var paths []string
	for _, p := range resp.Patches {
		paths = append(paths, p.Operation+" "+p.Path)
	}
	joined := strings.Join(paths, "\n")
	for _, want := range []string{"add /spec/initContainers", "add /metadata/annotations"} {
		if !strings.Contains(joined, want) {
			t.Errorf("patch lacks %q:\n%s", want, joined)
		}
	}

	if resp := h.Handle(ctx, review(t, "plain", testPod(app, nil))); !resp.Allowed || len(resp.Patches) != 0 {
		t.Fatalf("unlabelled namespace: allowed %v, %d patches", resp.Allowed, len(resp.Patches))
	}
	resp = h.Handle(ctx, review(t, "demo", testPod(map[string]string{"twin": "1"}, nil)))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "found multiple matching VirtualNodes for pod demo/podinfo-7d9f-*: demo/twin,demo/twin2") {
		t.Fatalf("two matches: allowed %v, %v", resp.Allowed, resp.Result)
	}
	resp = h.Handle(ctx, review(t, "gone", testPod(app, nil)))
	if resp.Allowed || resp.Result.Code != http.StatusInternalServerError {
		t.Fatalf("unreadable namespace: allowed %v, %+v; want an error for failurePolicy to decide", resp.Allowed, resp.Result)
	}
	upd := review(t, "demo", testPod(app, nil))
	upd.Operation = admissionv1.Update
	if resp := h.Handle(ctx, upd); !resp.Allowed || len(resp.Patches) != 0 {
		t.Fatal("an update was mutated")
	}
}
