package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// ApplyRequest is a batch of objects to create or update together.
type ApplyRequest struct {
	Items  []json.RawMessage `json:"items"`
	DryRun bool              `json:"dryRun,omitempty"`
}

// Apply actions, as kubectl prints them.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionUnchanged  = "unchanged"
)

// ApplyResult says what happened to one item.
type ApplyResult struct {
	Kind            string `json:"kind"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name"`
	Action          string `json:"action"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// ApplyResponse lists the results in the order of the request's items.
type ApplyResponse struct {
	Results []ApplyResult `json:"results"`
	DryRun  bool          `json:"dryRun,omitempty"`
}

func (s *Server) serveApply(w http.ResponseWriter, r *http.Request) {
	data, err := s.readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req ApplyRequest
	if err := json.Unmarshal(data, &req); err != nil {
		writeError(w, newStatus(http.StatusBadRequest, ReasonBadRequest, "body is not an apply request: "+err.Error()))
		return
	}
	resp, err := s.Apply(r, req)
	respond(w, http.StatusOK, resp, err)
}

// Apply validates every item, then stores all of them in one transaction, or none.
func (s *Server) Apply(r *http.Request, req ApplyRequest) (*ApplyResponse, error) {
	objs := make([]v1alpha1.Object, len(req.Items))
	var causes []Cause
	for i, raw := range req.Items {
		obj, err := decodeObject(raw, nil)
		if err != nil {
			se := statusFor(err)
			if se.Status.Details != nil {
				for _, c := range se.Status.Details.Causes {
					c.Index = i
					causes = append(causes, c)
				}
			} else {
				causes = append(causes, Cause{Index: i, Message: se.Status.Message})
			}
			continue
		}
		if k, _ := v1alpha1.KindOf(obj); k.Namespaced && obj.GetNamespace() == "" {
			obj.SetNamespace("default")
		}
		objs[i] = obj
	}
	if len(causes) > 0 {
		st := newStatus(http.StatusUnprocessableEntity, ReasonInvalid, fmt.Sprintf("%d problem(s) in the input; nothing was applied", len(causes)))
		st.Status.Details = &StatusDetails{Causes: causes}
		return nil, st
	}
	resp := &ApplyResponse{DryRun: req.DryRun, Results: make([]ApplyResult, len(objs))}
	err := s.store.Txn(r.Context(), func(tx store.Tx) error {
		// Namespaces and Meshes go first, so that the objects of the same input join
		// the mesh that input declares.
		for _, i := range applyOrder(objs) {
			obj := objs[i]
			res, err := applyOne(tx, obj)
			if err != nil {
				return indexed(i, obj, err)
			}
			resp.Results[i] = res
		}
		if req.DryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	if !req.DryRun {
		for _, res := range resp.Results {
			if res.Action != ActionUnchanged {
				s.log.InfoContext(r.Context(), "object applied", "kind", res.Kind, "namespace", res.Namespace, "name", res.Name, "action", res.Action)
			}
		}
	}
	return resp, nil
}

// indexed attaches the batch index to an error found while storing.
func indexed(i int, obj v1alpha1.Object, err error) error {
	st := statusFor(err)
	out := *st
	out.Status.Message = fmt.Sprintf("%s %s: %s; nothing was applied", obj.GetObjectKind().GroupVersionKind().Kind, displayName(obj), st.Status.Message)
	if out.Status.Details == nil {
		out.Status.Details = &StatusDetails{Causes: []Cause{{Index: i, Message: st.Status.Message}}}
	} else {
		d := *out.Status.Details
		d.Causes = append([]Cause(nil), d.Causes...)
		for j := range d.Causes {
			d.Causes[j].Index = i
		}
		out.Status.Details = &d
	}
	return &out
}

func applyOne(tx store.Tx, obj v1alpha1.Object) (ApplyResult, error) {
	k, err := v1alpha1.KindOf(obj)
	if err != nil {
		return ApplyResult{}, err
	}
	res := ApplyResult{Kind: k.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	if err := resolveMesh(tx, obj); err != nil {
		return res, err
	}
	key, _ := store.KeyOf(obj)
	cur, err := tx.Get(key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		obj.SetResourceVersion("")
		obj.SetDeletionTimestamp(nil) // only a DELETE sets it
		out, err := tx.Create(obj)
		if err != nil {
			return res, err
		}
		res.Action, res.ResourceVersion = ActionCreated, out.GetResourceVersion()
		return res, nil
	case err != nil:
		return res, err
	}
	keepSystemState(cur, obj)
	if errs := v1alpha1.ValidateUpdate(cur, obj); len(errs) > 0 {
		return res, invalid(0, obj, errs)
	}
	next, changed, err := mergeUser(k, cur, obj)
	if err != nil {
		return res, err
	}
	if !changed {
		res.Action, res.ResourceVersion = ActionUnchanged, cur.GetResourceVersion()
		return res, nil
	}
	out, err := tx.Update(next)
	if err != nil {
		return res, err
	}
	res.Action, res.ResourceVersion = ActionConfigured, out.GetResourceVersion()
	return res, nil
}

// keepSystemState makes re-applying a manifest leave alone what Canarymesh itself keeps on
// the object, as kubectl apply's three-way merge leaves fields the manifest never set:
//   - Canarymesh's own annotations (a pending promote/abort command, a parked canary's
//     replica count, a promoted revision) that the manifest does not mention stay;
//   - a Workload the canary controller parked at zero replicas stays parked: the
//     manifest's replica count becomes the count restored when the next analysis starts.
//
// Only apply does this; a PUT replaces the object as sent.
func keepSystemState(cur, incoming v1alpha1.Object) {
	curAnn := cur.GetAnnotations()
	ann := incoming.GetAnnotations()
	for k, v := range curAnn {
		if !v1alpha1.IsSystemAnnotation(k) {
			continue
		}
		if _, set := ann[k]; set {
			continue
		}
		if ann == nil {
			ann = map[string]string{}
		}
		ann[k] = v
	}
	if ann != nil {
		incoming.SetAnnotations(ann)
	}
	cw, ok1 := cur.(*v1alpha1.Workload)
	iw, ok2 := incoming.(*v1alpha1.Workload)
	if !ok1 || !ok2 || curAnn[v1alpha1.AnnotationCanaryReplicas] == "" || cw.GetReplicas() != 0 {
		return
	}
	if want := iw.GetReplicas(); want > 0 {
		ann[v1alpha1.AnnotationCanaryReplicas] = strconv.Itoa(int(want))
		incoming.SetAnnotations(ann)
	}
	zero := int32(0)
	iw.Spec.Replicas = &zero
}

// resolveMesh fills spec.meshRef of a mesh object that names no mesh, the way App Mesh's
// controller does: the object's namespace joins the one Mesh whose namespaceSelector
// matches the namespace's labels. No match leaves meshRef empty, which status reports
// until a Mesh or label appears; several matches are refused, as App Mesh refuses them.
func resolveMesh(tx store.Tx, obj v1alpha1.Object) error {
	if _, isMesh := obj.(*v1alpha1.Mesh); isMesh {
		return nil
	}
	if _, ref, ok := meshStatus(obj); !ok || ref != nil && ref.Name != "" {
		return nil
	}
	var nsLabels map[string]string
	if ns, err := tx.Get(store.Key{Kind: "Namespace", Name: obj.GetNamespace()}); err == nil {
		nsLabels = ns.(*corev1.Namespace).Labels
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	meshes, err := tx.List(store.Filter{Kind: "Mesh"})
	if err != nil {
		return err
	}
	matched := selectingMeshes(meshes, nsLabels)
	switch len(matched) {
	case 0:
		return nil
	case 1:
		setMeshRef(obj, matched[0])
		return nil
	}
	return newStatus(http.StatusUnprocessableEntity, ReasonInvalid,
		fmt.Sprintf("namespace %q matches %d meshes (%s, %s, ...); a namespace must match exactly one Mesh's namespaceSelector",
			obj.GetNamespace(), len(matched), matched[0].Name, matched[1].Name))
}

// selectingMeshes returns the meshes whose namespaceSelector matches namespace labels.
func selectingMeshes(meshes []v1alpha1.Object, nsLabels map[string]string) []*v1alpha1.Mesh {
	var out []*v1alpha1.Mesh
	for _, o := range meshes {
		if m, ok := o.(*v1alpha1.Mesh); ok && MeshSelects(m, nsLabels) {
			out = append(out, m)
		}
	}
	return out
}

// setMeshRef points a mesh member at a mesh; false for kinds that belong to none.
func setMeshRef(o v1alpha1.Object, m *v1alpha1.Mesh) bool {
	ref := &v1alpha1.MeshReference{Name: m.Name, UID: m.UID}
	switch x := o.(type) {
	case *v1alpha1.VirtualNode:
		x.Spec.MeshRef = ref
	case *v1alpha1.VirtualService:
		x.Spec.MeshRef = ref
	case *v1alpha1.VirtualRouter:
		x.Spec.MeshRef = ref
	case *v1alpha1.VirtualGateway:
		x.Spec.MeshRef = ref
	case *v1alpha1.GatewayRoute:
		x.Spec.MeshRef = ref
	default:
		return false
	}
	return true
}

// MeshSelects reports whether a mesh's namespaceSelector matches namespace labels. An
// empty selector matches every namespace; a missing one matches none.
func MeshSelects(m *v1alpha1.Mesh, nsLabels map[string]string) bool {
	if m.Spec.NamespaceSelector == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(m.Spec.NamespaceSelector)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(nsLabels))
}

// applyOrder returns the indexes of objs with Namespaces first, then Meshes, then the
// rest, each group in input order.
func applyOrder(objs []v1alpha1.Object) []int {
	rank := func(o v1alpha1.Object) int {
		switch o.(type) {
		case *corev1.Namespace:
			return 0
		case *v1alpha1.Mesh:
			return 1
		}
		return 2
	}
	var out []int
	for r := 0; r <= 2; r++ {
		for i, o := range objs {
			if rank(o) == r {
				out = append(out, i)
			}
		}
	}
	return out
}
