package inject

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func newTestCertManager(t *testing.T, now *time.Time, dns ...string) *CertManager {
	t.Helper()
	m, err := NewCertManager(nil, nil, CertOptions{Namespace: "canarymesh-system", SecretName: "cert", DNSNames: dns,
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, CAValidity: 300 * 24 * time.Hour, CertValidity: 30 * 24 * time.Hour,
		Now: func() time.Time { return *now }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// verify checks the serving pair against the bundle as the API server would.
func verify(t *testing.T, data map[string][]byte, host string, at time.Time) *x509.Certificate {
	t.Helper()
	pair, err := tls.X509KeyPair(data[SecretKeyCert], data[SecretKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data[SecretKeyCA]) {
		t.Fatal("ca.crt holds no certificate")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, CurrentTime: at}); err != nil {
		t.Fatalf("serving certificate does not verify for %s at %s: %v", host, at, err)
	}
	return leaf
}

func TestCertRenewal(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newTestCertManager(t, &now, "canarymesh-controller.canarymesh-system.svc")

	data, why, err := m.renew(nil)
	if err != nil || why != "no CA" {
		t.Fatalf("first renew: %q, %v", why, err)
	}
	first := verify(t, data, "canarymesh-controller.canarymesh-system.svc", now)
	verify(t, data, "127.0.0.1", now)

	// Still fresh: nothing changes.
	now = now.Add(10 * 24 * time.Hour)
	same, why, err := m.renew(data)
	if err != nil || why != "" || string(same[SecretKeyCert]) != string(data[SecretKeyCert]) {
		t.Fatalf("renew of a fresh pair: %q, %v", why, err)
	}

	// Less than a third of the serving certificate left: a new one, same CA.
	now = now.Add(11 * 24 * time.Hour)
	renewed, why, err := m.renew(data)
	if err != nil || !strings.HasPrefix(why, "serving certificate expires") {
		t.Fatalf("renew near expiry: %q, %v", why, err)
	}
	if string(renewed[SecretKeyCA]) != string(data[SecretKeyCA]) {
		t.Fatal("the CA changed with the serving certificate")
	}
	if leaf := verify(t, renewed, "canarymesh-controller.canarymesh-system.svc", now); !leaf.NotAfter.After(first.NotAfter) {
		t.Fatal("the renewed certificate does not outlive the first")
	}

	// Less than a third of the CA left: a new CA, the old one still in the bundle.
	now = now.Add(200 * 24 * time.Hour)
	rotated, why, err := m.renew(renewed)
	if err != nil || !strings.HasPrefix(why, "CA expires") {
		t.Fatalf("renew near CA expiry: %q, %v", why, err)
	}
	if n := len(parseCerts(rotated[SecretKeyCA])); n != 2 {
		t.Fatalf("bundle has %d CAs during rotation, want 2", n)
	}
	verify(t, rotated, "127.0.0.1", now)

	// Once the old CA expired, it leaves the bundle.
	now = now.Add(100 * 24 * time.Hour)
	later, why, err := m.renew(rotated)
	if err != nil || why == "" {
		t.Fatalf("renew after the old CA expired: %q, %v", why, err)
	}
	if n := len(parseCerts(later[SecretKeyCA])); n != 1 {
		t.Fatalf("bundle has %d CAs after the old one expired, want 1", n)
	}
	verify(t, later, "127.0.0.1", now)
}

func TestCertRenewedWhenNamesChangeOrDataIsBroken(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	data, _, err := newTestCertManager(t, &now, "old.svc").renew(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, why, err := newTestCertManager(t, &now, "new.svc").renew(data)
	if err != nil || why != "serving certificate names changed" {
		t.Fatalf("renew with new names: %q, %v", why, err)
	}
	broken := maps(data)
	broken[SecretKeyKey] = []byte("garbage")
	fixed, why, err := newTestCertManager(t, &now, "old.svc").renew(broken)
	if err != nil || why != "serving key does not match" {
		t.Fatalf("renew with a broken key: %q, %v", why, err)
	}
	verify(t, fixed, "old.svc", now)
	if string(fixed[SecretKeyCA]) != string(data[SecretKeyCA]) {
		t.Fatal("a broken serving key replaced the CA")
	}
	noKey := maps(data)
	delete(noKey, SecretKeyCAKey)
	if _, why, _ := newTestCertManager(t, &now, "old.svc").renew(noKey); why != "no CA" {
		t.Fatalf("renew without the CA key: %q", why)
	}
}

func TestNewCertManagerNeedsNames(t *testing.T) {
	if _, err := NewCertManager(nil, nil, CertOptions{Namespace: "x", SecretName: "y"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("no error without DNS names or IPs")
	}
	if _, err := NewCertManager(nil, nil, CertOptions{DNSNames: []string{"a"}}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("no error without the Secret's name")
	}
}
