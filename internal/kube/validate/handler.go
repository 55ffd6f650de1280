package validate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/kube/controller"
)

// WebhookPath is where the validator serves AdmissionReviews.
const WebhookPath = "/validate-canarymesh"

// CompatResources are the App Mesh and Flagger resources validated: those of the kinds
// --serve-compat-apis mirrors (controller.CompatKinds), named by their plurals.
var CompatResources = compatResources()

func compatResources() []schema.GroupVersionResource {
	out := make([]schema.GroupVersionResource, 0, len(controller.CompatKinds))
	for _, gvk := range controller.CompatKinds {
		k, err := v1alpha1.LookupKind(gvk.Kind)
		if err != nil {
			panic("compat kind " + gvk.Kind + " is not a Canarymesh kind: " + err.Error())
		}
		out = append(out, gvk.GroupVersion().WithResource(k.Plural))
	}
	return out
}

// Handler is the validating admission webhook for CREATE and UPDATE of canarymesh.dev
// objects and of their App Mesh and Flagger counterparts.
type Handler struct {
	Log *slog.Logger
}

var _ admission.Handler = (*Handler)(nil)

// Handle answers one AdmissionReview: allowed, or refused with every problem found.
func (h *Handler) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.SubResource != "" {
		return admission.Allowed("subresource " + req.SubResource + " is not validated")
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("only creations and updates are validated")
	}
	gvk := schema.GroupVersionKind(req.Kind)
	if !validated(gvk) {
		return admission.Allowed(gvk.String() + " is not validated")
	}
	errs, err := Check(gvk, req.Namespace, req.Object.Raw, req.OldObject.Raw, req.Operation == admissionv1.Update)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if len(errs) == 0 {
		return admission.Allowed("")
	}
	name := displayName(req.Namespace, req.Name)
	h.log().Info("object refused", "kind", kindName(gvk), "name", name, "err", errs)
	return refused(kindName(gvk), name, errs)
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

// validated reports whether gvk is a canarymesh.dev kind the CRDs serve or a compat kind.
func validated(gvk schema.GroupVersionKind) bool {
	if gvk.GroupVersion() == v1alpha1.GroupVersion {
		k, err := v1alpha1.LookupKind(gvk.Kind)
		return err == nil && k.Kind == gvk.Kind && !k.ReadOnly
	}
	for _, r := range CompatResources {
		if r.GroupVersion() == gvk.GroupVersion() {
			return true
		}
	}
	return false
}

// FieldError is one problem of an object: its field path (empty when it concerns the
// whole object) and what is wrong.
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) String() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Check runs on one object what `canarymesh apply` runs: decoding as a manifest (which
// converts App Mesh and Flagger kinds), defaults and validation, and on update the checks
// of fields that cannot change. raw and oldRaw are the objects as JSON; oldRaw is only
// read when update is set. An update that leaves the spec as it was (metadata, finalizers,
// deletion) is not checked, so an object stored before the webhook existed can still be
// deleted. The error is for input that is not an object at all.
func Check(gvk schema.GroupVersionKind, namespace string, raw, oldRaw []byte, update bool) ([]FieldError, error) {
	cur, err := document(gvk, raw)
	if err != nil {
		return nil, err
	}
	var old map[string]any
	if update {
		if old, err = document(gvk, oldRaw); err != nil {
			return nil, fmt.Errorf("old object: %w", err)
		}
		if sameContent(old, cur) {
			return nil, nil
		}
	}
	obj, errs := decode(cur, namespace)
	if len(errs) > 0 || !update {
		return errs, nil
	}
	prev, perrs := decode(old, namespace)
	if len(perrs) > 0 {
		return nil, nil // the stored object predates validation: nothing to compare with
	}
	for _, fe := range v1alpha1.ValidateUpdate(prev, obj) {
		errs = append(errs, FieldError{Field: fe.Field, Msg: fe.Detail})
	}
	return errs, nil
}

// document keeps of an object what a user writes in a manifest; the rest (status, uid,
// managedFields...) is the server's and would be refused as unknown by the decoder.
func document(gvk schema.GroupVersionKind, raw []byte) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, errors.New("no object in the request")
	}
	var in map[string]any
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("decode %s: %w", gvk.Kind, err)
	}
	apiVersion, kind := gvk.GroupVersion().String(), gvk.Kind
	if v, ok := in["apiVersion"].(string); ok && v != "" {
		apiVersion = v
	}
	if k, ok := in["kind"].(string); ok && k != "" {
		kind = k
	}
	out := map[string]any{"apiVersion": apiVersion, "kind": kind}
	meta := map[string]any{}
	if m, ok := in["metadata"].(map[string]any); ok {
		for _, k := range []string{"name", "namespace", "labels"} {
			if v, ok := m[k]; ok {
				meta[k] = v
			}
		}
		if a, ok := m["annotations"].(map[string]any); ok {
			a = copyMap(a)
			delete(a, "kubectl.kubernetes.io/last-applied-configuration")
			if len(a) > 0 {
				meta["annotations"] = a
			}
		}
		if _, ok := meta["name"]; !ok {
			if g, ok := m["generateName"].(string); ok {
				meta["name"] = g // the server names it later; the prefix stands in
			}
		}
	}
	out["metadata"] = meta
	// The spec, or for an Event its top-level fields; status is the controller's.
	for k, v := range in {
		switch k {
		case "apiVersion", "kind", "metadata", "status":
		default:
			out[k] = v
		}
	}
	return out, nil
}

// sameContent reports whether two documents differ in metadata at most.
func sameContent(a, b map[string]any) bool {
	strip := func(m map[string]any) map[string]any {
		m = copyMap(m)
		delete(m, "metadata")
		return m
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// decode turns a document into its canarymesh.dev object, defaulted and validated, as
// manifest.Decode does for `canarymesh apply`.
func decode(doc map[string]any, namespace string) (v1alpha1.Object, []FieldError) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, []FieldError{{Msg: err.Error()}}
	}
	res, err := manifest.Decode("admission", raw, manifest.Options{Namespace: namespace})
	var merrs manifest.Errors
	if errors.As(err, &merrs) {
		out := make([]FieldError, 0, len(merrs))
		for _, e := range merrs {
			out = append(out, FieldError{Field: e.Field, Msg: e.Msg})
		}
		return nil, out
	}
	if err != nil {
		return nil, []FieldError{{Msg: err.Error()}}
	}
	if len(res.Items) != 1 {
		return nil, []FieldError{{Msg: fmt.Sprintf("decodes to %d objects, want 1", len(res.Items))}}
	}
	return res.Items[0].Object, nil
}

// refused words the answer as the control plane does for `canarymesh apply`
// ("Canary demo/podinfo is invalid: spec.targetRef.name: is required"), with each field
// as a cause, so kubectl shows the path.
func refused(kind, name string, errs []FieldError) admission.Response {
	msgs := make([]string, len(errs))
	causes := make([]metav1.StatusCause, len(errs))
	for i, e := range errs {
		msgs[i] = e.String()
		causes[i] = metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Field: e.Field, Message: e.Msg}
	}
	r := admission.Denied(fmt.Sprintf("%s %s is invalid: %s", kind, name, strings.Join(msgs, "; ")))
	r.Result.Code = http.StatusUnprocessableEntity
	r.Result.Reason = metav1.StatusReasonInvalid
	r.Result.Details = &metav1.StatusDetails{Name: name, Kind: kind, Causes: causes}
	return r
}

// kindName is the kind as users write it: Canary for canarymesh.dev, else qualified by
// its group (VirtualNode.appmesh.k8s.aws), so the two are told apart.
func kindName(gvk schema.GroupVersionKind) string {
	if gvk.Group == v1alpha1.Group {
		return gvk.Kind
	}
	return gvk.Kind + "." + gvk.Group
}

func displayName(namespace, name string) string {
	if namespace != "" {
		return namespace + "/" + name
	}
	return name
}
