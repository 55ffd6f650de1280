package inject

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the certificate Secret. tls.crt and tls.key are the serving pair (the Secret
// is of type kubernetes.io/tls); ca.crt is the bundle the API server trusts (the current
// CA first, then a previous one still valid while it rotates out); ca.key signs.
const (
	SecretKeyCert   = corev1.TLSCertKey
	SecretKeyKey    = corev1.TLSPrivateKeyKey
	SecretKeyCA     = "ca.crt"
	SecretKeyCAKey  = "ca.key"
	defaultCAValid  = 5 * 365 * 24 * time.Hour
	defaultCrtValid = 365 * 24 * time.Hour
)

// CertOptions configure the webhook's serving certificate.
type CertOptions struct {
	// Namespace and SecretName locate the Secret that holds the CA and the serving pair,
	// shared by every replica.
	Namespace  string
	SecretName string
	// DNSNames and IPs the serving certificate is valid for (the webhook Service's names;
	// an address for a webhook called by URL).
	DNSNames []string
	IPs      []net.IP
	// WebhookConfigurations are the MutatingWebhookConfigurations, by name, whose
	// webhooks get the CA bundle; ValidatingWebhookConfigurations likewise.
	WebhookConfigurations           []string
	ValidatingWebhookConfigurations []string
	// CAValidity and CertValidity default to five years and one year. Each is renewed
	// when less than a third of it remains.
	CAValidity   time.Duration
	CertValidity time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// CertManager keeps the webhook's serving certificate: it creates a CA and a serving
// certificate, stores them in a Secret, renews them before they expire, serves the
// current pair to the TLS listener, and keeps the CA bundle patched into the
// Mutating- and ValidatingWebhookConfigurations it owns. Every replica runs one; they agree through the
// Secret's resourceVersion.
type CertManager struct {
	reader client.Reader // uncached: the manager's cache would watch every Secret
	writer client.Client
	opts   CertOptions
	log    *slog.Logger

	mu       sync.RWMutex
	cert     *tls.Certificate
	caBundle []byte
}

// NewCertManager returns a CertManager; reader should be uncached (the manager's
// APIReader).
func NewCertManager(reader client.Reader, writer client.Client, o CertOptions, log *slog.Logger) (*CertManager, error) {
	if o.Namespace == "" || o.SecretName == "" {
		return nil, errors.New("webhook certificate: the Secret's namespace and name are required")
	}
	if len(o.DNSNames) == 0 && len(o.IPs) == 0 {
		return nil, errors.New("webhook certificate: at least one DNS name or IP is required")
	}
	if o.CAValidity <= 0 {
		o.CAValidity = defaultCAValid
	}
	if o.CertValidity <= 0 {
		o.CertValidity = defaultCrtValid
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &CertManager{reader: reader, writer: writer, opts: o, log: log}, nil
}

// GetCertificate serves the current pair; for tls.Config.GetCertificate.
func (m *CertManager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.cert == nil {
		return nil, errors.New("webhook serving certificate not loaded yet")
	}
	return m.cert, nil
}

// CABundle is the PEM bundle clients must trust.
func (m *CertManager) CABundle() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return bytes.Clone(m.caBundle)
}

// Ensure makes the Secret hold a valid CA and serving pair (creating or renewing them),
// loads the pair for serving and patches the CA bundle into the webhook configurations.
func (m *CertManager) Ensure(ctx context.Context) error {
	var sec *corev1.Secret
	for attempt := 0; ; attempt++ {
		var err error
		sec, err = m.ensureSecret(ctx)
		if err == nil {
			break
		}
		if attempt < 5 && (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			continue // another replica wrote it first: read theirs
		}
		return err
	}
	pair, err := tls.X509KeyPair(sec.Data[SecretKeyCert], sec.Data[SecretKeyKey])
	if err != nil {
		return fmt.Errorf("webhook certificate: Secret %s/%s: %w", m.opts.Namespace, m.opts.SecretName, err)
	}
	m.mu.Lock()
	m.cert, m.caBundle = &pair, bytes.Clone(sec.Data[SecretKeyCA])
	m.mu.Unlock()
	return m.patchWebhooks(ctx, sec.Data[SecretKeyCA])
}

// ensureSecret reads the Secret and writes a renewed one when needed.
func (m *CertManager) ensureSecret(ctx context.Context) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: m.opts.Namespace, Name: m.opts.SecretName}
	sec := &corev1.Secret{}
	err := m.reader.Get(ctx, key, sec)
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("webhook certificate: read Secret %s: %w", key, err)
	}
	data, why, err := m.renew(sec.Data)
	if err != nil {
		return nil, err
	}
	if why == "" {
		return sec, nil
	}
	m.log.Info("webhook certificate renewed", "secret", key.String(), "reason", why)
	if !exists {
		sec = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "canarymesh"}},
			Type: corev1.SecretTypeTLS, Data: data}
		if err := m.writer.Create(ctx, sec); err != nil {
			return nil, fmt.Errorf("webhook certificate: create Secret %s: %w", key, err)
		}
		return sec, nil
	}
	sec.Data = data // the resourceVersion read makes this a compare-and-swap
	if err := m.writer.Update(ctx, sec); err != nil {
		return nil, fmt.Errorf("webhook certificate: update Secret %s: %w", key, err)
	}
	return sec, nil
}

// renew returns the Secret data to store and why it changed; why is empty when data is
// still good.
func (m *CertManager) renew(data map[string][]byte) (map[string][]byte, string, error) {
	now := m.opts.Now()
	cas := parseCerts(data[SecretKeyCA])
	ca, caKey := currentCA(cas, data[SecretKeyCAKey])
	why := ""
	switch {
	case ca == nil:
		why = "no CA"
	case renewDue(ca, now):
		why = "CA expires " + ca.NotAfter.UTC().Format(time.RFC3339)
	}
	if why != "" {
		var err error
		if ca, caKey, err = newCA(now, m.opts.CAValidity); err != nil {
			return nil, "", err
		}
		// The old CA stays trusted until it expires, for a replica still serving a
		// certificate it signed.
		cas = append([]*x509.Certificate{ca}, cas...)
	}
	cas = slices.DeleteFunc(cas, func(c *x509.Certificate) bool { return now.After(c.NotAfter) })
	leaf := parseCerts(data[SecretKeyCert])
	switch {
	case why != "":
	case len(leaf) == 0:
		why = "no serving certificate"
	case renewDue(leaf[0], now):
		why = "serving certificate expires " + leaf[0].NotAfter.UTC().Format(time.RFC3339)
	case leaf[0].CheckSignatureFrom(ca) != nil:
		why = "serving certificate not signed by the current CA"
	case !covers(leaf[0], m.opts.DNSNames, m.opts.IPs):
		why = "serving certificate names changed"
	}
	if _, err := tls.X509KeyPair(data[SecretKeyCert], data[SecretKeyKey]); why == "" && err != nil {
		why = "serving key does not match"
	}
	if why == "" {
		if bytes.Equal(encodeCerts(cas), data[SecretKeyCA]) {
			return data, "", nil
		}
		why = "expired CA dropped from the bundle"
		out := maps(data)
		out[SecretKeyCA] = encodeCerts(cas)
		return out, why, nil
	}
	crt, key, err := newServingCert(ca, caKey, now, m.opts.CertValidity, m.opts.DNSNames, m.opts.IPs)
	if err != nil {
		return nil, "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return nil, "", fmt.Errorf("webhook certificate: %w", err)
	}
	return map[string][]byte{
		SecretKeyCert:  crt,
		SecretKeyKey:   key,
		SecretKeyCA:    encodeCerts(cas),
		SecretKeyCAKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, why, nil
}

func maps(in map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// renewDue: less than a third of the certificate's lifetime remains.
func renewDue(c *x509.Certificate, now time.Time) bool {
	life := c.NotAfter.Sub(c.NotBefore)
	return now.After(c.NotAfter.Add(-life / 3))
}

func covers(c *x509.Certificate, dns []string, ips []net.IP) bool {
	for _, d := range dns {
		if !slices.Contains(c.DNSNames, d) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func parseCerts(pemData []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, pemData = pem.Decode(pemData)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

func encodeCerts(cs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range cs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// currentCA is the first CA of the bundle if the stored key is its key.
func currentCA(cas []*x509.Certificate, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey) {
	b, _ := pem.Decode(keyPEM)
	if len(cas) == 0 || b == nil {
		return nil, nil
	}
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, nil
	}
	pub, ok := cas[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) || !cas[0].IsCA {
		return nil, nil
	}
	return cas[0], key
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func newCA(now time.Time, valid time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, fmt.Errorf("webhook CA serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "canarymesh-webhook-ca", Organization: []string{"canarymesh"}},
		NotBefore:             now.Add(-time.Hour), // tolerate clock skew
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook CA: %w", err)
	}
	return ca, key, nil
}

func newServingCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time, valid time.Duration, dns []string, ips []net.IP) (crtPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook serving key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, fmt.Errorf("webhook serving serial: %w", err)
	}
	notAfter := now.Add(valid)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	cn := "canarymesh-webhook"
	if len(dns) > 0 {
		cn = dns[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook serving key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// patchWebhooks sets caBundle on every webhook of the owned configurations that lacks
// it. A configuration not there yet is skipped; the next Ensure tries again.
func (m *CertManager) patchWebhooks(ctx context.Context, bundle []byte) error {
	var errs []error
	for _, name := range m.opts.WebhookConfigurations {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		errs = append(errs, m.patchCABundle(ctx, name, "MutatingWebhookConfiguration", cfg, bundle, func() []*admissionregistrationv1.WebhookClientConfig {
			out := make([]*admissionregistrationv1.WebhookClientConfig, len(cfg.Webhooks))
			for i := range cfg.Webhooks {
				out[i] = &cfg.Webhooks[i].ClientConfig
			}
			return out
		}))
	}
	for _, name := range m.opts.ValidatingWebhookConfigurations {
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		errs = append(errs, m.patchCABundle(ctx, name, "ValidatingWebhookConfiguration", cfg, bundle, func() []*admissionregistrationv1.WebhookClientConfig {
			out := make([]*admissionregistrationv1.WebhookClientConfig, len(cfg.Webhooks))
			for i := range cfg.Webhooks {
				out[i] = &cfg.Webhooks[i].ClientConfig
			}
			return out
		}))
	}
	return errors.Join(errs...)
}

// patchCABundle reads the configuration name into cfg and patches bundle into the client
// configs clients returns (pointers into cfg).
func (m *CertManager) patchCABundle(ctx context.Context, name, kind string, cfg client.Object, bundle []byte, clients func() []*admissionregistrationv1.WebhookClientConfig) error {
	if err := m.reader.Get(ctx, types.NamespacedName{Name: name}, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			m.log.Warn("webhook configuration not found; its caBundle will be set once it exists", "kind", kind, "name", name)
			return nil
		}
		return fmt.Errorf("read %s %s: %w", kind, name, err)
	}
	orig, _ := cfg.DeepCopyObject().(client.Object)
	changed := false
	for _, cc := range clients() {
		if !bytes.Equal(cc.CABundle, bundle) {
			cc.CABundle = bundle
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := m.writer.Patch(ctx, cfg, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("patch caBundle of %s %s: %w", kind, name, err)
	}
	m.log.Info("webhook caBundle patched", "kind", kind, "configuration", name)
	return nil
}

// Start renews and re-patches every interval until ctx ends; for the manager. A
// failure is logged and retried at the next tick.
func (m *CertManager) Start(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Ensure(ctx); err != nil {
				m.log.Error("webhook certificate check failed", "err", err)
			}
		}
	}
}
