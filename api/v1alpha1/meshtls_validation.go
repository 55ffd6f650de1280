package v1alpha1

import (
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation of TLS settings: every certificate and trust source is a union of which exactly
// one member is set, file paths are 1 to 255 characters, and ACM trusts list 1 to 3
// authorities (App Mesh's limits).

const (
	maxTLSPathLen   = 255
	maxACMAuthority = 3
)

func (c *ListenerTLSFileCertificate) validate(errs *ErrorList, p *field.Path) {
	if c != nil {
		checkRequiredString(errs, p.Child("certificateChain"), c.CertificateChain, maxTLSPathLen)
		checkRequiredString(errs, p.Child("privateKey"), c.PrivateKey, maxTLSPathLen)
	}
}

func checkSecretName(errs *ErrorList, p *field.Path, name *string) {
	if name == nil || *name == "" {
		*errs = append(*errs, Required(p.Child("secretName")))
	}
}

func (c *ListenerTLSCertificate) validate(errs *ErrorList, p *field.Path) {
	checkExactlyOne(errs, p, []string{"acm", "file", "sds"}, c.ACM != nil, c.File != nil, c.SDS != nil)
	if c.ACM != nil && c.ACM.CertificateARN == "" {
		*errs = append(*errs, Required(p.Child("acm", "certificateARN")))
	}
	c.File.validate(errs, p.Child("file"))
	if c.SDS != nil {
		checkSecretName(errs, p.Child("sds"), c.SDS.SecretName)
	}
}

func (c *ClientTLSCertificate) validate(errs *ErrorList, p *field.Path) {
	if c == nil {
		return
	}
	checkExactlyOne(errs, p, []string{"file", "sds"}, c.File != nil, c.SDS != nil)
	c.File.validate(errs, p.Child("file"))
	if c.SDS != nil {
		checkSecretName(errs, p.Child("sds"), c.SDS.SecretName)
	}
}

func (s *SubjectAlternativeNames) validate(errs *ErrorList, p *field.Path) {
	if s == nil {
		return
	}
	ep := p.Child("match", "exact")
	if len(s.Match.Exact) == 0 {
		*errs = append(*errs, Required(ep))
	}
	for i, name := range s.Match.Exact {
		if name == "" {
			*errs = append(*errs, Invalid(ep.Index(i), "must not be empty"))
		}
	}
}

func (t *TLSValidationContextFileTrust) validate(errs *ErrorList, p *field.Path) {
	if t != nil {
		checkRequiredString(errs, p.Child("certificateChain"), t.CertificateChain, maxTLSPathLen)
	}
}

func (t *TLSValidationContextSDSTrust) validate(errs *ErrorList, p *field.Path) {
	if t != nil {
		checkSecretName(errs, p, t.SecretName)
	}
}

func (t *TLSValidationContextACMTrust) validate(errs *ErrorList, p *field.Path) {
	if t == nil {
		return
	}
	ap := p.Child("certificateAuthorityARNs")
	checkCount(errs, ap, len(t.CertificateAuthorityARNs), 1, maxACMAuthority)
	for i, arn := range t.CertificateAuthorityARNs {
		if arn == "" {
			*errs = append(*errs, Invalid(ap.Index(i), "must not be empty"))
		}
	}
}

func (v *TLSValidationContext) validate(errs *ErrorList, p *field.Path) {
	tp := p.Child("trust")
	t := &v.Trust
	checkExactlyOne(errs, tp, []string{"acm", "file", "sds"}, t.ACM != nil, t.File != nil, t.SDS != nil)
	t.ACM.validate(errs, tp.Child("acm"))
	t.File.validate(errs, tp.Child("file"))
	t.SDS.validate(errs, tp.Child("sds"))
	v.SubjectAlternativeNames.validate(errs, p.Child("subjectAlternativeNames"))
}

func (v *ListenerTLSValidationContext) validate(errs *ErrorList, p *field.Path) {
	if v == nil {
		return
	}
	tp := p.Child("trust")
	t := &v.Trust
	checkExactlyOne(errs, tp, []string{"file", "sds"}, t.File != nil, t.SDS != nil)
	t.File.validate(errs, tp.Child("file"))
	t.SDS.validate(errs, tp.Child("sds"))
	v.SubjectAlternativeNames.validate(errs, p.Child("subjectAlternativeNames"))
}

func checkTLSMode(errs *ErrorList, p *field.Path, mode ListenerTLSMode) {
	if mode == "" {
		*errs = append(*errs, Required(p))
		return
	}
	checkOneOf(errs, p, string(mode), listenerTLSModes...)
}

func (t *ListenerTLS) validate(errs *ErrorList, p *field.Path) {
	if t == nil {
		return
	}
	t.Certificate.validate(errs, p.Child("certificate"))
	checkTLSMode(errs, p.Child("mode"), t.Mode)
	t.Validation.validate(errs, p.Child("validation"))
}

func (t *VirtualGatewayListenerTLS) validate(errs *ErrorList, p *field.Path) {
	if t == nil {
		return
	}
	t.Certificate.validate(errs, p.Child("certificate"))
	checkTLSMode(errs, p.Child("mode"), t.Mode)
	if t.Validation != nil {
		t.Validation.validate(errs, p.Child("validation"))
	}
}

func (c *ClientPolicy) validate(errs *ErrorList, p *field.Path) {
	if c == nil || c.TLS == nil {
		return
	}
	tp := p.Child("tls")
	for i, port := range c.TLS.Ports {
		checkPort(errs, tp.Child("ports").Index(i), port)
	}
	c.TLS.Certificate.validate(errs, tp.Child("certificate"))
	c.TLS.Validation.validate(errs, tp.Child("validation"))
}

func (d *BackendDefaults) validate(errs *ErrorList, p *field.Path) {
	if d != nil {
		d.ClientPolicy.validate(errs, p.Child("clientPolicy"))
	}
}
