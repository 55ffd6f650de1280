package snapshot

// TLS as the proxy runs it. Certificates, keys and trusted authorities are paths of PEM
// files on the proxy's host, read by the proxy (and read again when they change), so a
// snapshot never carries key material. A source the proxy cannot read (App Mesh's sds
// and acm) compiles to Unavailable: the proxy then refuses the TLS it was asked for
// rather than fall back to plaintext.

// Listener TLS modes, as App Mesh's listener tls.mode (DISABLED compiles to no TLS).
const (
	// TLSStrict accepts TLS connections only.
	TLSStrict = "STRICT"
	// TLSPermissive accepts TLS and plaintext connections on the same port.
	TLSPermissive = "PERMISSIVE"
)

// ListenerTLS is the TLS a listener terminates.
type ListenerTLS struct {
	// Mode is TLSStrict or TLSPermissive.
	Mode string `json:"mode"`
	// CertificateChain and PrivateKey are the paths of what the listener presents.
	CertificateChain string `json:"certificateChain,omitempty"`
	PrivateKey       string `json:"privateKey,omitempty"`
	// Validation, when set, requires a client certificate and checks it (mutual TLS).
	Validation *TLSValidation `json:"validation,omitempty"`
	// Unavailable says why the listener's TLS cannot be served; when set, every TLS
	// handshake fails, so a STRICT listener serves nothing and a PERMISSIVE one serves
	// plaintext only.
	Unavailable string `json:"unavailable,omitempty"`
}

// TLSValidation is how a peer's certificate is checked: its chain must lead to an
// authority of TrustChain and, when SubjectAlternativeNames is set, it must carry one
// of those names exactly (DNS name, URI, IP address or e-mail address). The peer's
// host name is not checked otherwise, as in App Mesh.
type TLSValidation struct {
	TrustChain              string   `json:"trustChain"`
	SubjectAlternativeNames []string `json:"subjectAlternativeNames,omitempty"`
}

// ClientTLS is the TLS a proxy originates towards a cluster's endpoints.
type ClientTLS struct {
	Validation TLSValidation `json:"validation"`
	// CertificateChain and PrivateKey, when set, are presented to the endpoint (mutual
	// TLS).
	CertificateChain string `json:"certificateChain,omitempty"`
	PrivateKey       string `json:"privateKey,omitempty"`
	// SNI is the server name sent in the handshake.
	SNI string `json:"sni,omitempty"`
	// Unavailable says why the client TLS cannot be set up; when set, the proxy opens
	// no connection to the cluster: its requests fail rather than go out in plaintext.
	Unavailable string `json:"unavailable,omitempty"`
}
