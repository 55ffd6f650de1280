package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Alert provider types. All but generic are Flagger's.
const (
	AlertProviderSlack   = "slack"
	AlertProviderMSTeams = "msteams"
	AlertProviderDiscord = "discord"
	AlertProviderRocket  = "rocket"
	AlertProviderGChat   = "gchat"
	// AlertProviderGeneric posts each event as a JSON object to address; a Canarymesh
	// extension for receivers that are not chat services.
	AlertProviderGeneric = "generic"
)

// AlertProviderTypes lists every alert provider type.
var AlertProviderTypes = []string{AlertProviderSlack, AlertProviderMSTeams, AlertProviderDiscord,
	AlertProviderRocket, AlertProviderGChat, AlertProviderGeneric}

// AlertProvider is where a Canary's alerts are sent: a chat service's incoming webhook,
// or any HTTP endpoint. Field names are Flagger's.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=canarymesh,shortName=ap
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AlertProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AlertProviderSpec `json:"spec,omitempty"`
	Status MeshObjectStatus  `json:"status,omitempty"`
}

// AlertProviderList is a list of AlertProvider.
//
// +kubebuilder:object:root=true
type AlertProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AlertProvider `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "AlertProvider", Plural: "alertproviders", Singular: "alertprovider", Short: []string{"ap"},
		Namespaced: true, New: func() Object { return &AlertProvider{} }})
	registerList(func() runtime.Object { return &AlertProviderList{} })
}

// AlertProviderSpec is the desired state of an AlertProvider. The webhook address is
// given either in Address or, to keep it out of the manifest, in the Secret SecretRef
// names (key address).
type AlertProviderSpec struct {
	// Type is slack, msteams, discord, rocket, gchat or generic.
	Type string `json:"type"`
	// Channel overrides the webhook's default channel, where the service allows it.
	// +optional
	Channel string `json:"channel,omitempty"`
	// Username the messages are posted as, where the service allows it.
	// +optional
	Username string `json:"username,omitempty"`
	// Address is the webhook URL.
	// +optional
	Address string `json:"address,omitempty"`
	// Proxy is the URL of an HTTP(S) proxy to post through.
	// +optional
	Proxy string `json:"proxy,omitempty"`
	// SecretRef names a Secret whose key address holds the webhook URL.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
}

// Default does nothing: an AlertProvider has no defaults. It exists so that every kind
// is a Defaulter.
func (a *AlertProvider) Default() {}

// Validate checks the AlertProvider on its own.
func (a *AlertProvider) Validate() ErrorList {
	errs := validateMeta(a, true)
	spec := field.NewPath("spec")
	s := &a.Spec
	if s.Type == "" {
		errs = append(errs, Required(spec.Child("type")))
	} else {
		checkOneOf(&errs, spec.Child("type"), s.Type, AlertProviderTypes...)
	}
	switch {
	case s.Address == "" && s.SecretRef == nil:
		errs = append(errs, Invalid(spec, "sets neither address nor secretRef: set exactly one"))
	case s.Address != "" && s.SecretRef != nil:
		errs = append(errs, Invalid(spec, "sets both address and secretRef: set exactly one"))
	}
	if s.Address != "" {
		checkWebURL(&errs, spec.Child("address"), s.Address)
	}
	if s.SecretRef != nil && s.SecretRef.Name == "" {
		errs = append(errs, Required(spec.Child("secretRef", "name")))
	}
	if s.Proxy != "" {
		checkWebURL(&errs, spec.Child("proxy"), s.Proxy)
	}
	return errs
}
