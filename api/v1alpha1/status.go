package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types every mesh object carries in status.
const (
	// ConditionReferencesResolved is true when every object this one names exists.
	ConditionReferencesResolved = "ReferencesResolved"
	// ConditionReady is true when the object is valid, resolved and in effect.
	ConditionReady = "Ready"
)

// MeshObjectStatus is the status shared by the mesh model's kinds.
type MeshObjectStatus struct {
	// ObservedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions say whether the object's references resolve and whether it is ready.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
