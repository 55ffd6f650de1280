package controlplane

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// TLS that cannot be served here (a certificate from SDS) shows in the node's Ready
// condition, saying what happens to its traffic.
func TestUnservableTLSShowsAsCondition(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx := context.Background()
	r := &StatusReconciler{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return time.Unix(1000, 0) }}

	secret := "web-cert"
	node := func(tls *v1alpha1.ListenerTLS) *v1alpha1.VirtualNode {
		o := &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}}
		o.Spec.MeshRef = &v1alpha1.MeshReference{Name: "m"}
		o.Spec.Listeners = []v1alpha1.Listener{{PortMapping: v1alpha1.PortMapping{Port: 8080, Protocol: v1alpha1.PortProtocolHTTP}, TLS: tls}}
		o.Spec.ServiceDiscovery = &v1alpha1.ServiceDiscovery{DNS: &v1alpha1.DNSServiceDiscovery{Hostname: "web.shop"}}
		o.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("VirtualNode"))
		return o
	}
	sds := node(&v1alpha1.ListenerTLS{Mode: v1alpha1.ListenerTLSModeStrict,
		Certificate: v1alpha1.ListenerTLSCertificate{SDS: &v1alpha1.ListenerTLSSDSCertificate{SecretName: &secret}}})
	if _, err := c.Apply(ctx, []v1alpha1.Object{mesh("m", nil), sds}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := condOf(t, st, "VirtualNode", "shop", "web", v1alpha1.ConditionReady)
	if got == nil || got.Status != metav1.ConditionFalse || got.Reason != "TLSUnavailable" ||
		!strings.Contains(got.Message, "spec.listeners[0].tls.certificate.sds") || !strings.Contains(got.Message, "refuses every connection") {
		t.Fatalf("ready: %+v", got)
	}

	file := node(&v1alpha1.ListenerTLS{Mode: v1alpha1.ListenerTLSModeStrict,
		Certificate: v1alpha1.ListenerTLSCertificate{File: &v1alpha1.ListenerTLSFileCertificate{CertificateChain: "/certs/web.pem", PrivateKey: "/certs/web-key.pem"}}})
	if _, err := c.Apply(ctx, []v1alpha1.Object{file}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := condOf(t, st, "VirtualNode", "shop", "web", v1alpha1.ConditionReady); got == nil || got.Status != metav1.ConditionTrue {
		t.Fatalf("ready with a file certificate: %+v", got)
	}
}
