package v1alpha1

// TLS settings shared by virtual nodes and virtual gateways: what a listener presents and
// trusts, and what a client (a backend call) presents and trusts. Each certificate or trust
// source is a union: exactly one of its members is set.

// ListenerTLSMode says whether a listener requires TLS.
// +kubebuilder:validation:Enum=DISABLED;PERMISSIVE;STRICT
type ListenerTLSMode string

// Listener TLS modes.
const (
	// ListenerTLSModeStrict accepts TLS connections only.
	ListenerTLSModeStrict ListenerTLSMode = "STRICT"
	// ListenerTLSModePermissive accepts TLS and plain connections, for migrations.
	ListenerTLSModePermissive ListenerTLSMode = "PERMISSIVE"
	// ListenerTLSModeDisabled accepts plain connections only.
	ListenerTLSModeDisabled ListenerTLSMode = "DISABLED"
)

var listenerTLSModes = []string{string(ListenerTLSModeStrict), string(ListenerTLSModePermissive), string(ListenerTLSModeDisabled)}

// ListenerTLSACMCertificate is a certificate held in AWS Certificate Manager. It is kept so
// App Mesh manifests decode; a self-hosted mesh cannot fetch it.
type ListenerTLSACMCertificate struct {
	// CertificateARN is the certificate's Amazon Resource Name.
	CertificateARN string `json:"certificateARN"`
}

// ListenerTLSFileCertificate is a certificate and key read from files on the proxy's host.
type ListenerTLSFileCertificate struct {
	// CertificateChain is the path of the PEM certificate chain.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	CertificateChain string `json:"certificateChain"`
	// PrivateKey is the path of the PEM private key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	PrivateKey string `json:"privateKey"`
}

// ListenerTLSSDSCertificate is a certificate served by a secret discovery service.
type ListenerTLSSDSCertificate struct {
	// SecretName is the name of the secret to ask for.
	SecretName *string `json:"secretName"`
}

// ListenerTLSCertificate is the certificate a listener presents: exactly one source.
type ListenerTLSCertificate struct {
	// ACM is a certificate in AWS Certificate Manager.
	// +optional
	ACM *ListenerTLSACMCertificate `json:"acm,omitempty"`
	// File is a certificate on the proxy's file system.
	// +optional
	File *ListenerTLSFileCertificate `json:"file,omitempty"`
	// SDS is a certificate from a secret discovery service.
	// +optional
	SDS *ListenerTLSSDSCertificate `json:"sds,omitempty"`
}

// TLSValidationContextACMTrust trusts certificate authorities held in AWS Certificate Manager.
type TLSValidationContextACMTrust struct {
	// CertificateAuthorityARNs are the authorities' Amazon Resource Names.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	CertificateAuthorityARNs []string `json:"certificateAuthorityARNs"`
}

// TLSValidationContextFileTrust trusts the certificate chain in a file.
type TLSValidationContextFileTrust struct {
	// CertificateChain is the path of the PEM chain to trust.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	CertificateChain string `json:"certificateChain"`
}

// TLSValidationContextSDSTrust trusts a chain served by a secret discovery service.
type TLSValidationContextSDSTrust struct {
	// SecretName is the name of the secret to ask for.
	SecretName *string `json:"secretName"`
}

// SubjectAlternativeNameMatchers lists the names a peer certificate may carry.
type SubjectAlternativeNameMatchers struct {
	// Exact names, one of which the certificate must carry.
	Exact []string `json:"exact"`
}

// SubjectAlternativeNames narrows which peer certificates are accepted by their SANs.
type SubjectAlternativeNames struct {
	// Match lists the accepted names.
	Match SubjectAlternativeNameMatchers `json:"match"`
}

// TLSValidationContextTrust is where trusted authorities come from: exactly one source.
type TLSValidationContextTrust struct {
	// ACM trusts authorities in AWS Certificate Manager.
	// +optional
	ACM *TLSValidationContextACMTrust `json:"acm,omitempty"`
	// File trusts a chain on the proxy's file system.
	// +optional
	File *TLSValidationContextFileTrust `json:"file,omitempty"`
	// SDS trusts a chain from a secret discovery service.
	// +optional
	SDS *TLSValidationContextSDSTrust `json:"sds,omitempty"`
}

// TLSValidationContext is how a peer's certificate is checked.
type TLSValidationContext struct {
	// Trust says which authorities to trust.
	Trust TLSValidationContextTrust `json:"trust"`
	// SubjectAlternativeNames narrows the accepted certificates further.
	// +optional
	SubjectAlternativeNames *SubjectAlternativeNames `json:"subjectAlternativeNames,omitempty"`
}

// ListenerTLSValidationContextTrust is where a virtual node listener's trusted client
// authorities come from: exactly one of file or sds (App Mesh offers no ACM trust here).
type ListenerTLSValidationContextTrust struct {
	// File trusts a chain on the proxy's file system.
	// +optional
	File *TLSValidationContextFileTrust `json:"file,omitempty"`
	// SDS trusts a chain from a secret discovery service.
	// +optional
	SDS *TLSValidationContextSDSTrust `json:"sds,omitempty"`
}

// ListenerTLSValidationContext is how a virtual node listener checks client certificates
// (mutual TLS).
type ListenerTLSValidationContext struct {
	// Trust says which authorities to trust.
	Trust ListenerTLSValidationContextTrust `json:"trust"`
	// SubjectAlternativeNames narrows the accepted certificates further.
	// +optional
	SubjectAlternativeNames *SubjectAlternativeNames `json:"subjectAlternativeNames,omitempty"`
}

// ListenerTLS is the TLS a virtual node listener terminates.
type ListenerTLS struct {
	// Certificate the listener presents.
	Certificate ListenerTLSCertificate `json:"certificate"`
	// Mode is STRICT, PERMISSIVE or DISABLED.
	Mode ListenerTLSMode `json:"mode"`
	// Validation, when set, asks clients for certificates and checks them.
	// +optional
	Validation *ListenerTLSValidationContext `json:"validation,omitempty"`
}

// VirtualGatewayListenerTLS is the TLS a virtual gateway listener terminates. Unlike a
// virtual node's, its client validation may also trust ACM authorities.
type VirtualGatewayListenerTLS struct {
	// Certificate the listener presents.
	Certificate ListenerTLSCertificate `json:"certificate"`
	// Validation, when set, asks clients for certificates and checks them.
	// +optional
	Validation *TLSValidationContext `json:"validation,omitempty"`
	// Mode is STRICT, PERMISSIVE or DISABLED.
	Mode ListenerTLSMode `json:"mode"`
}

// ClientTLSCertificate is the certificate a proxy presents to a backend (mutual TLS):
// exactly one of file or sds.
type ClientTLSCertificate struct {
	// File is a certificate on the proxy's file system.
	// +optional
	File *ListenerTLSFileCertificate `json:"file,omitempty"`
	// SDS is a certificate from a secret discovery service.
	// +optional
	SDS *ListenerTLSSDSCertificate `json:"sds,omitempty"`
}

// ClientPolicyTLS is the TLS a proxy originates towards a backend.
type ClientPolicyTLS struct {
	// Enforce says whether TLS is required; App Mesh's default, true, is filled in.
	// +optional
	Enforce *bool `json:"enforce,omitempty"`
	// Ports limits the policy to these backend ports; every port when empty.
	// +optional
	Ports []PortNumber `json:"ports,omitempty"`
	// Certificate the proxy presents, for mutual TLS.
	// +optional
	Certificate *ClientTLSCertificate `json:"certificate,omitempty"`
	// Validation is how the backend's certificate is checked.
	Validation TLSValidationContext `json:"validation"`
}

// ClientPolicy is how a proxy talks to a backend.
type ClientPolicy struct {
	// TLS towards the backend.
	// +optional
	TLS *ClientPolicyTLS `json:"tls,omitempty"`
}

// BackendDefaults applies to every backend that sets no client policy of its own.
type BackendDefaults struct {
	// ClientPolicy for backends.
	// +optional
	ClientPolicy *ClientPolicy `json:"clientPolicy,omitempty"`
}
