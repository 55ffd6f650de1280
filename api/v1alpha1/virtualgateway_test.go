package v1alpha1

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validVirtualGateway() *VirtualGateway {
	return &VirtualGateway{
		ObjectMeta: metav1.ObjectMeta{Name: "appmesh-gateway", Namespace: "appmesh-gateway"},
		Spec: VirtualGatewaySpec{
			NamespaceSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{"gateway": "ingress"}},
			PodSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"app": "appmesh-gateway"}},
			GatewayRouteSelector: &metav1.LabelSelector{},
			Listeners: []VirtualGatewayListener{{
				PortMapping: VirtualGatewayPortMapping{Port: 8088, Protocol: VirtualGatewayPortProtocolHTTP},
				HealthCheck: &VirtualGatewayHealthCheckPolicy{HealthyThreshold: 2, IntervalMillis: 10000, Path: meshPtr("/ready"),
					Protocol: VirtualGatewayPortProtocolHTTP, TimeoutMillis: 2000, UnhealthyThreshold: 3},
				ConnectionPool: &VirtualGatewayConnectionPool{HTTP: &HTTPConnectionPool{MaxConnections: 1024}},
				TLS: &VirtualGatewayListenerTLS{
					Certificate: ListenerTLSCertificate{ACM: &ListenerTLSACMCertificate{CertificateARN: "arn:aws:acm:us-west-2:123456789012:certificate/c"}},
					Mode:        ListenerTLSModePermissive,
					Validation: &TLSValidationContext{Trust: TLSValidationContextTrust{ACM: &TLSValidationContextACMTrust{
						CertificateAuthorityARNs: []string{"arn:aws:acm-pca:ca"}}}},
				},
			}},
			Logging: &Logging{AccessLog: &AccessLog{File: &FileAccessLog{Path: "/dev/stdout"}}},
			BackendDefaults: &BackendDefaults{ClientPolicy: &ClientPolicy{TLS: &ClientPolicyTLS{
				Certificate: &ClientTLSCertificate{File: &ListenerTLSFileCertificate{CertificateChain: "/c.pem", PrivateKey: "/k.pem"}},
				Validation:  TLSValidationContext{Trust: TLSValidationContextTrust{SDS: &TLSValidationContextSDSTrust{SecretName: meshPtr("ca")}}},
			}}},
		},
	}
}

func gatewayListener0(vg *VirtualGateway) *VirtualGatewayListener { return &vg.Spec.Listeners[0] }

func TestVirtualGatewayValidate(t *testing.T) {
	l0 := "spec.listeners[0]"
	bad := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: metav1.LabelSelectorOpIn}}}
	rules := []meshRule[VirtualGateway]{
		{"name required", func(vg *VirtualGateway) { vg.Name = "" }, "metadata.name", "is required"},
		{"awsName length", func(vg *VirtualGateway) { vg.Spec.AWSName = meshPtr(strings.Repeat("g", 256)) }, "spec.awsName", "at most 255 allowed"},
		{"namespaceSelector parses", func(vg *VirtualGateway) { vg.Spec.NamespaceSelector = bad }, "spec.namespaceSelector", "values set can't be empty"},
		{"podSelector parses", func(vg *VirtualGateway) { vg.Spec.PodSelector = bad }, "spec.podSelector", "values set can't be empty"},
		{"gatewayRouteSelector parses", func(vg *VirtualGateway) { vg.Spec.GatewayRouteSelector = bad }, "spec.gatewayRouteSelector", "values set can't be empty"},
		{"one listener required", func(vg *VirtualGateway) { vg.Spec.Listeners = nil }, "spec.listeners", "has 0 items, at least 1 expected"},
		{"at most one listener", func(vg *VirtualGateway) { vg.Spec.Listeners = append(vg.Spec.Listeners, vg.Spec.Listeners[0]) }, "spec.listeners", "has 2 items, at most 1 allowed"},
		{"port range", func(vg *VirtualGateway) { gatewayListener0(vg).PortMapping.Port = 0 }, l0 + ".portMapping.port", "0 is below 1"},
		{"no tcp listener", func(vg *VirtualGateway) { gatewayListener0(vg).PortMapping.Protocol = "tcp" }, l0 + ".portMapping.protocol", `"tcp" is not one of grpc, http, http2`},
		{"protocol required", func(vg *VirtualGateway) { gatewayListener0(vg).PortMapping.Protocol = "" }, l0 + ".portMapping.protocol", "is required"},
		{"health protocol enum", func(vg *VirtualGateway) { gatewayListener0(vg).HealthCheck.Protocol = "tcp" }, l0 + ".healthCheck.protocol", `"tcp" is not one of grpc, http, http2`},
		{"healthyThreshold max", func(vg *VirtualGateway) { gatewayListener0(vg).HealthCheck.HealthyThreshold = 11 }, l0 + ".healthCheck.healthyThreshold", "11 is above 10"},
		{"unhealthyThreshold min", func(vg *VirtualGateway) { gatewayListener0(vg).HealthCheck.UnhealthyThreshold = 0 }, l0 + ".healthCheck.unhealthyThreshold", "0 is below 2"},
		{"intervalMillis min", func(vg *VirtualGateway) { gatewayListener0(vg).HealthCheck.IntervalMillis = 1000 }, l0 + ".healthCheck.intervalMillis", "1000 is below 5000"},
		{"timeoutMillis max", func(vg *VirtualGateway) { gatewayListener0(vg).HealthCheck.TimeoutMillis = 90000 }, l0 + ".healthCheck.timeoutMillis", "90000 is above 60000"},
		{"health port", func(vg *VirtualGateway) { gatewayListener0(vg).HealthCheck.Port = meshPtr(PortNumber(65536)) }, l0 + ".healthCheck.port", "65536 is above 65535"},
		{"pool needs member", func(vg *VirtualGateway) { gatewayListener0(vg).ConnectionPool = &VirtualGatewayConnectionPool{} }, l0 + ".connectionPool", "exactly one of http, http2, grpc is required"},
		{"pool one member", func(vg *VirtualGateway) {
			gatewayListener0(vg).ConnectionPool.GRPC = &GRPCConnectionPool{MaxRequests: 1}
		}, l0 + ".connectionPool", "only one of http, http2, grpc may be set, found http and grpc"},
		{"pool matches protocol", func(vg *VirtualGateway) {
			gatewayListener0(vg).ConnectionPool = &VirtualGatewayConnectionPool{GRPC: &GRPCConnectionPool{MaxRequests: 1}}
		}, l0 + ".connectionPool.grpc", `does not match the listener's protocol "http"`},
		{"http pool max connections", func(vg *VirtualGateway) { gatewayListener0(vg).ConnectionPool.HTTP.MaxConnections = 0 }, l0 + ".connectionPool.http.maxConnections", "0 is below 1"},
		{"http2 pool max requests", func(vg *VirtualGateway) {
			l := gatewayListener0(vg)
			l.PortMapping.Protocol = VirtualGatewayPortProtocolHTTP2
			l.ConnectionPool = &VirtualGatewayConnectionPool{HTTP2: &HTTP2ConnectionPool{}}
		}, l0 + ".connectionPool.http2.maxRequests", "0 is below 1"},
		{"grpc pool max requests", func(vg *VirtualGateway) {
			l := gatewayListener0(vg)
			l.PortMapping.Protocol = VirtualGatewayPortProtocolGRPC
			l.ConnectionPool = &VirtualGatewayConnectionPool{GRPC: &GRPCConnectionPool{MaxRequests: -1}}
		}, l0 + ".connectionPool.grpc.maxRequests", "-1 is below 1"},
		{"tls certificate source", func(vg *VirtualGateway) { gatewayListener0(vg).TLS.Certificate = ListenerTLSCertificate{} }, l0 + ".tls.certificate", "exactly one of acm, file, sds is required"},
		{"tls mode enum", func(vg *VirtualGateway) { gatewayListener0(vg).TLS.Mode = "strict" }, l0 + ".tls.mode", `"strict" is not one of STRICT, PERMISSIVE, DISABLED`},
		{"tls trust source", func(vg *VirtualGateway) {
			gatewayListener0(vg).TLS.Validation.Trust.File = &TLSValidationContextFileTrust{CertificateChain: "/ca"}
		}, l0 + ".tls.validation.trust", "only one of acm, file, sds may be set, found acm and file"},
		{"tls SANs", func(vg *VirtualGateway) {
			gatewayListener0(vg).TLS.Validation.SubjectAlternativeNames = &SubjectAlternativeNames{}
		}, l0 + ".tls.validation.subjectAlternativeNames.match.exact", "is required"},
		{"log path", func(vg *VirtualGateway) { vg.Spec.Logging.AccessLog.File.Path = "" }, "spec.logging.accessLog.file.path", "is required"},
		{"backend defaults certificate", func(vg *VirtualGateway) {
			vg.Spec.BackendDefaults.ClientPolicy.TLS.Certificate.SDS = &ListenerTLSSDSCertificate{SecretName: meshPtr("s")}
		}, "spec.backendDefaults.clientPolicy.tls.certificate", "only one of file, sds may be set"},
		{"backend defaults trust", func(vg *VirtualGateway) {
			vg.Spec.BackendDefaults.ClientPolicy.TLS.Validation.Trust.SDS.SecretName = nil
		}, "spec.backendDefaults.clientPolicy.tls.validation.trust.sds.secretName", "is required"},
	}
	runMeshRules(t, validVirtualGateway, rules)
}

func TestVirtualGatewayDefault(t *testing.T) {
	vg := validVirtualGateway()
	vg.Default()
	if got := *vg.Spec.AWSName; got != "appmesh-gateway_appmesh-gateway" {
		t.Errorf("awsName = %q, want appmesh-gateway_appmesh-gateway", got)
	}
	if e := vg.Spec.BackendDefaults.ClientPolicy.TLS.Enforce; e == nil || !*e {
		t.Errorf("backendDefaults tls.enforce = %v, want true", e)
	}
	if errs := vg.Validate(); len(errs) > 0 {
		t.Errorf("defaulted object is invalid: %v", errs)
	}
	vg.Spec.AWSName = meshPtr("kept")
	vg.Default()
	if got := *vg.Spec.AWSName; got != "kept" {
		t.Errorf("Default overwrote awsName: %q", got)
	}
	bare := &VirtualGateway{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns"}}
	bare.Default() // no listeners, no backend defaults: must not panic
	if got := *bare.Spec.AWSName; got != "g_ns" {
		t.Errorf("awsName = %q, want g_ns", got)
	}
}

func TestVirtualGatewayDecodesAppMeshFields(t *testing.T) {
	var vg VirtualGateway
	decodeMeshManifest(t, `{"apiVersion":"canarymesh.dev/v1alpha1","kind":"VirtualGateway","metadata":{"name":"gw","namespace":"gw"},
	"spec":{"awsName":"gw_gw","meshRef":{"name":"m","uid":"u"},
	"namespaceSelector":{"matchLabels":{"gateway":"gw"}},"podSelector":{"matchLabels":{"app":"gw"}},"gatewayRouteSelector":{"matchLabels":{"r":"1"}},
	"listeners":[{"portMapping":{"port":8088,"protocol":"http"},
	  "healthCheck":{"healthyThreshold":2,"intervalMillis":5000,"path":"/","port":8088,"protocol":"http","timeoutMillis":2000,"unhealthyThreshold":2},
	  "connectionPool":{"http":{"maxConnections":10,"maxPendingRequests":10}},
	  "tls":{"certificate":{"file":{"certificateChain":"/c","privateKey":"/k"}},"mode":"STRICT",
	    "validation":{"trust":{"acm":{"certificateAuthorityARNs":["arn"]}},"subjectAlternativeNames":{"match":{"exact":["x"]}}}}}],
	"logging":{"accessLog":{"file":{"path":"/dev/stdout","format":{"text":"%START_TIME%"}}}},
	"backendDefaults":{"clientPolicy":{"tls":{"enforce":false,"ports":[443],"certificate":{"sds":{"secretName":"s"}},
	  "validation":{"trust":{"file":{"certificateChain":"/ca"}}}}}}}}`, &vg)
	if errs := vg.Validate(); len(errs) > 0 {
		t.Errorf("decoded manifest is invalid: %v", errs)
	}
}
