package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Event types, as Kubernetes names them.
const (
	EventTypeNormal  = "Normal"
	EventTypeWarning = "Warning"
)

// ObjectReference names the object an Event is about.
type ObjectReference struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// UID tells apart objects that had the same name at different times.
	// +optional
	UID string `json:"uid,omitempty"`
}

// Event records something that happened to an object — a canary advancing, a check
// failing, a promotion — for `describe` and `canarymesh events`. Its fields follow
// Kubernetes' core Event, so they read the same.
//
// +kubebuilder:object:root=true
type Event struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	InvolvedObject ObjectReference `json:"involvedObject"`
	// Type is Normal or Warning.
	Type string `json:"type"`
	// Reason is a short CamelCase word: Synced, Progressing, Promoted, Failed, ...
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Count is how many times the same event happened in a row.
	Count          int32       `json:"count"`
	FirstTimestamp metav1.Time `json:"firstTimestamp"`
	LastTimestamp  metav1.Time `json:"lastTimestamp"`
	// Source is the component that reported it, e.g. canary-controller.
	// +optional
	Source string `json:"source,omitempty"`
}

// EventList is a list of Event.
//
// +kubebuilder:object:root=true
type EventList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Event `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "Event", Plural: "events", Singular: "event", Short: []string{"ev"}, Namespaced: true,
		New: func() Object { return &Event{} }})
	registerList(func() runtime.Object { return &EventList{} })
}

// Validate checks an Event on its own.
func (e *Event) Validate() ErrorList {
	errs := validateMeta(e, true)
	if e.InvolvedObject.Kind == "" {
		errs = append(errs, Required(field.NewPath("involvedObject", "kind")))
	}
	if e.InvolvedObject.Name == "" {
		errs = append(errs, Required(field.NewPath("involvedObject", "name")))
	}
	if e.Type != EventTypeNormal && e.Type != EventTypeWarning {
		errs = append(errs, Invalid(field.NewPath("type"), "%q is not Normal or Warning", e.Type))
	}
	return errs
}
