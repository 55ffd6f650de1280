package controlplane

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// decodeObject reads one object of a request body strictly, fills defaults and validates
// it. want, when set, is the kind the path names.
func decodeObject(data []byte, want *v1alpha1.KindInfo) (v1alpha1.Object, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return nil, newStatus(http.StatusBadRequest, ReasonBadRequest, "body is not a JSON object: "+err.Error())
	}
	k, err := v1alpha1.LookupKind(tm.Kind)
	if err != nil || tm.Kind != k.Kind || tm.APIVersion != k.APIVersion {
		return nil, newStatus(http.StatusBadRequest, ReasonBadRequest,
			fmt.Sprintf("apiVersion %q kind %q is not served here (import other formats with canarymesh apply)", tm.APIVersion, tm.Kind))
	}
	if want != nil && k != want {
		return nil, newStatus(http.StatusBadRequest, ReasonBadRequest, fmt.Sprintf("body is a %s, the path names %s", k.Kind, want.Plural))
	}
	obj := k.New()
	strict, err := kjson.UnmarshalStrict(data, obj)
	if err != nil {
		return nil, newStatus(http.StatusBadRequest, ReasonBadRequest, err.Error())
	}
	if len(strict) > 0 {
		return nil, newStatus(http.StatusBadRequest, ReasonBadRequest, strict[0].Error())
	}
	obj.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	if d, ok := obj.(v1alpha1.Defaulter); ok {
		d.Default()
	}
	if v, ok := obj.(v1alpha1.Validator); ok {
		if errs := v.Validate(); len(errs) > 0 {
			return nil, invalid(0, obj, errs)
		}
	}
	return obj, nil
}

// invalid builds a 422 status listing every field error of one object.
func invalid(index int, obj v1alpha1.Object, errs v1alpha1.ErrorList) *StatusError {
	st := newStatus(http.StatusUnprocessableEntity, ReasonInvalid,
		fmt.Sprintf("%s %s is invalid: %v", obj.GetObjectKind().GroupVersionKind().Kind, displayName(obj), errs))
	st.Status.Details = &StatusDetails{}
	for _, e := range errs {
		st.Status.Details.Causes = append(st.Status.Details.Causes, Cause{Index: index, Field: e.Field, Message: e.Detail})
	}
	return st
}

func displayName(o v1alpha1.Object) string {
	if o.GetNamespace() != "" {
		return o.GetNamespace() + "/" + o.GetName()
	}
	return o.GetName()
}

// toMap renders an object as generic JSON, the form merges work on.
func toMap(o v1alpha1.Object) (map[string]any, error) {
	data, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(data, &m)
}

func fromMap(k *v1alpha1.KindInfo, m map[string]any) (v1alpha1.Object, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	o := k.New()
	if err := json.Unmarshal(data, o); err != nil {
		return nil, err
	}
	o.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	return o, nil
}

// userFields are what a user's apply or update owns; everything else (status,
// uid, creation time, generation) belongs to the server and its controllers.
var userFields = []string{"spec", "data"}

// mergeUser lays the user-owned parts of incoming over existing and says whether
// anything changed.
func mergeUser(k *v1alpha1.KindInfo, existing, incoming v1alpha1.Object) (v1alpha1.Object, bool, error) {
	em, err := toMap(existing)
	if err != nil {
		return nil, false, err
	}
	im, err := toMap(incoming)
	if err != nil {
		return nil, false, err
	}
	before, _ := json.Marshal(em)
	for _, f := range userFields {
		if v, ok := im[f]; ok {
			em[f] = v
		} else {
			delete(em, f)
		}
	}
	emd, _ := em["metadata"].(map[string]any)
	imd, _ := im["metadata"].(map[string]any)
	for _, f := range []string{"labels", "annotations"} {
		if v, ok := imd[f]; ok {
			emd[f] = v
		} else {
			delete(emd, f)
		}
	}
	after, _ := json.Marshal(em)
	out, err := fromMap(k, em)
	return out, !reflect.DeepEqual(before, after), err
}

// mergeStatus lays incoming's status over existing.
func mergeStatus(k *v1alpha1.KindInfo, existing, incoming v1alpha1.Object) (v1alpha1.Object, error) {
	em, err := toMap(existing)
	if err != nil {
		return nil, err
	}
	im, err := toMap(incoming)
	if err != nil {
		return nil, err
	}
	if s, ok := im["status"]; ok {
		em["status"] = s
	} else {
		delete(em, "status")
	}
	return fromMap(k, em)
}
