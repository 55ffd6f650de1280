package v1alpha1

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// meshRule is one row of a validation table: a mutation of a valid object and the error it
// must produce (exact field path, substring of the detail).
type meshRule[T any] struct {
	name   string
	mutate func(*T)
	field  string
	detail string
}

// runMeshRules checks that valid() passes and that every rule's mutation reports its error.
func runMeshRules[T any, P interface {
	*T
	Validator
}](t *testing.T, valid func() *T, rules []meshRule[T]) {
	t.Helper()
	if errs := P(valid()).Validate(); len(errs) > 0 {
		t.Fatalf("baseline object is invalid: %v", errs)
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			o := valid()
			r.mutate(o)
			errs := P(o).Validate()
			for _, e := range errs {
				if e.Field == r.field && strings.Contains(e.Detail, r.detail) {
					return
				}
			}
			t.Errorf("want error %s: ...%s...\ngot: %v", r.field, r.detail, errs)
		})
	}
}

// decodeMeshManifest decodes an App Mesh style JSON manifest, failing on any field our types lack.
func decodeMeshManifest(t *testing.T, doc string, into any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewBufferString(doc))
	d.DisallowUnknownFields()
	if err := d.Decode(into); err != nil {
		t.Fatalf("decode: %v", err)
	}
}

func meshPtr[T any](v T) *T { return &v }

func validVirtualNode() *VirtualNode {
	sec := func(d int64) Duration { return Duration{Unit: DurationUnitS, Value: d} }
	return &VirtualNode{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo-primary", Namespace: "test"},
		Spec: VirtualNodeSpec{
			PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo-primary"}},
			Listeners: []Listener{{
				PortMapping: PortMapping{Port: 9898, Protocol: PortProtocolHTTP},
				HealthCheck: &HealthCheckPolicy{HealthyThreshold: 2, IntervalMillis: 5000, Path: meshPtr("/healthz"),
					Port: meshPtr(PortNumber(9898)), Protocol: PortProtocolHTTP, TimeoutMillis: 2000, UnhealthyThreshold: 2},
				OutlierDetection: &OutlierDetection{MaxServerErrors: 5, Interval: sec(10), BaseEjectionDuration: sec(30), MaxEjectionPercent: 50},
				ConnectionPool:   &VirtualNodeConnectionPool{HTTP: &HTTPConnectionPool{MaxConnections: 100, MaxPendingRequests: meshPtr(int64(10))}},
				TLS: &ListenerTLS{
					Certificate: ListenerTLSCertificate{File: &ListenerTLSFileCertificate{CertificateChain: "/certs/chain.pem", PrivateKey: "/certs/key.pem"}},
					Mode:        ListenerTLSModeStrict,
					Validation: &ListenerTLSValidationContext{
						Trust:                   ListenerTLSValidationContextTrust{SDS: &TLSValidationContextSDSTrust{SecretName: meshPtr("ca")}},
						SubjectAlternativeNames: &SubjectAlternativeNames{Match: SubjectAlternativeNameMatchers{Exact: []string{"frontend.test"}}},
					},
				},
				Timeout: &ListenerTimeout{HTTP: &HTTPTimeout{PerRequest: meshPtr(sec(15)), Idle: &Duration{Unit: DurationUnitMS, Value: 300000}}},
			}},
			ServiceDiscovery: &ServiceDiscovery{DNS: &DNSServiceDiscovery{Hostname: "podinfo-primary.test.svc.cluster.local",
				ResponseType: meshPtr(DNSResponseTypeEndpoints), IPPreference: meshPtr(IPPreferenceIPv4Preferred)}},
			Backends: []Backend{
				{VirtualService: VirtualServiceBackend{VirtualServiceRef: &VirtualServiceReference{Name: "backend"},
					ClientPolicy: &ClientPolicy{TLS: &ClientPolicyTLS{Ports: []PortNumber{9898},
						Certificate: &ClientTLSCertificate{SDS: &ListenerTLSSDSCertificate{SecretName: meshPtr("client")}},
						Validation: TLSValidationContext{Trust: TLSValidationContextTrust{ACM: &TLSValidationContextACMTrust{
							CertificateAuthorityARNs: []string{"arn:aws:acm-pca:us-west-2:123456789012:certificate-authority/ca"}}}}}}}},
				{VirtualService: VirtualServiceBackend{VirtualServiceARN: meshPtr("arn:aws:appmesh:us-west-2:123456789012:mesh/m/virtualService/other")}},
				{VirtualService: VirtualServiceBackend{VirtualServiceName: "legacy.test.svc.cluster.local"}},
			},
			BackendGroups: []BackendGroupReference{{Name: "all"}},
			BackendDefaults: &BackendDefaults{ClientPolicy: &ClientPolicy{TLS: &ClientPolicyTLS{Validation: TLSValidationContext{
				Trust: TLSValidationContextTrust{File: &TLSValidationContextFileTrust{CertificateChain: "/certs/ca.pem"}}}}}},
			Logging: &Logging{AccessLog: &AccessLog{File: &FileAccessLog{Path: "/dev/stdout",
				Format: &LoggingFormat{JSON: []JSONFormatRef{{Key: "status", Value: "%RESPONSE_CODE%"}}}}}},
		},
	}
}

type vnRule = meshRule[VirtualNode]

func listener0(vn *VirtualNode) *Listener { return &vn.Spec.Listeners[0] }

func TestVirtualNodeValidate(t *testing.T) {
	long := strings.Repeat("a", 256)
	l0 := "spec.listeners[0]"
	bad := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Bogus"}}}
	rules := []vnRule{
		{"name required", func(vn *VirtualNode) { vn.Name = "" }, "metadata.name", "is required"},
		{"awsName length", func(vn *VirtualNode) { vn.Spec.AWSName = &long }, "spec.awsName", "has 256 characters, at most 255 allowed"},
		{"podSelector parses", func(vn *VirtualNode) { vn.Spec.PodSelector = bad }, "spec.podSelector", "not a valid"},
		{"at most one listener", func(vn *VirtualNode) { vn.Spec.Listeners = append(vn.Spec.Listeners, vn.Spec.Listeners[0]) }, "spec.listeners", "has 2 items, at most 1 allowed"},
		{"listener needs discovery", func(vn *VirtualNode) { vn.Spec.ServiceDiscovery = nil }, "spec.serviceDiscovery", "is required when a listener is set"},
		{"port below 1", func(vn *VirtualNode) { listener0(vn).PortMapping.Port = 0 }, l0 + ".portMapping.port", "0 is below 1"},
		{"port above 65535", func(vn *VirtualNode) { listener0(vn).PortMapping.Port = 70000 }, l0 + ".portMapping.port", "70000 is above 65535"},
		{"protocol enum", func(vn *VirtualNode) { listener0(vn).PortMapping.Protocol = "udp" }, l0 + ".portMapping.protocol", `"udp" is not one of grpc, http, http2, tcp`},
		{"protocol required", func(vn *VirtualNode) { listener0(vn).PortMapping.Protocol = "" }, l0 + ".portMapping.protocol", "is required"},
		// Health check ranges.
		{"healthyThreshold min", func(vn *VirtualNode) { listener0(vn).HealthCheck.HealthyThreshold = 1 }, l0 + ".healthCheck.healthyThreshold", "1 is below 2"},
		{"healthyThreshold max", func(vn *VirtualNode) { listener0(vn).HealthCheck.HealthyThreshold = 11 }, l0 + ".healthCheck.healthyThreshold", "11 is above 10"},
		{"unhealthyThreshold min", func(vn *VirtualNode) { listener0(vn).HealthCheck.UnhealthyThreshold = 1 }, l0 + ".healthCheck.unhealthyThreshold", "1 is below 2"},
		{"unhealthyThreshold max", func(vn *VirtualNode) { listener0(vn).HealthCheck.UnhealthyThreshold = 11 }, l0 + ".healthCheck.unhealthyThreshold", "11 is above 10"},
		{"intervalMillis min", func(vn *VirtualNode) { listener0(vn).HealthCheck.IntervalMillis = 4999 }, l0 + ".healthCheck.intervalMillis", "4999 is below 5000"},
		{"intervalMillis max", func(vn *VirtualNode) { listener0(vn).HealthCheck.IntervalMillis = 300001 }, l0 + ".healthCheck.intervalMillis", "300001 is above 300000"},
		{"timeoutMillis min", func(vn *VirtualNode) { listener0(vn).HealthCheck.TimeoutMillis = 1999 }, l0 + ".healthCheck.timeoutMillis", "1999 is below 2000"},
		{"timeoutMillis max", func(vn *VirtualNode) { listener0(vn).HealthCheck.TimeoutMillis = 60001 }, l0 + ".healthCheck.timeoutMillis", "60001 is above 60000"},
		{"health protocol enum", func(vn *VirtualNode) { listener0(vn).HealthCheck.Protocol = "icmp" }, l0 + ".healthCheck.protocol", `"icmp" is not one of`},
		{"health port range", func(vn *VirtualNode) { listener0(vn).HealthCheck.Port = meshPtr(PortNumber(0)) }, l0 + ".healthCheck.port", "0 is below 1"},
		{"health path not empty", func(vn *VirtualNode) { listener0(vn).HealthCheck.Path = meshPtr("") }, l0 + ".healthCheck.path", "must not be empty"},
		// Outlier detection: all four fields, with their ranges.
		{"maxServerErrors min", func(vn *VirtualNode) { listener0(vn).OutlierDetection.MaxServerErrors = 0 }, l0 + ".outlierDetection.maxServerErrors", "0 is below 1"},
		{"outlier interval required", func(vn *VirtualNode) { listener0(vn).OutlierDetection.Interval = Duration{} }, l0 + ".outlierDetection.interval", "is required"},
		{"outlier base ejection required", func(vn *VirtualNode) { listener0(vn).OutlierDetection.BaseEjectionDuration = Duration{} }, l0 + ".outlierDetection.baseEjectionDuration", "is required"},
		{"maxEjectionPercent max", func(vn *VirtualNode) { listener0(vn).OutlierDetection.MaxEjectionPercent = 101 }, l0 + ".outlierDetection.maxEjectionPercent", "101 is above 100"},
		{"maxEjectionPercent min", func(vn *VirtualNode) { listener0(vn).OutlierDetection.MaxEjectionPercent = -1 }, l0 + ".outlierDetection.maxEjectionPercent", "-1 is below 0"},
		{"duration unit enum", func(vn *VirtualNode) { listener0(vn).OutlierDetection.Interval.Unit = "m" }, l0 + ".outlierDetection.interval.unit", `"m" is not one of ms, s`},
		{"duration unit required", func(vn *VirtualNode) { listener0(vn).OutlierDetection.Interval.Unit = "" }, l0 + ".outlierDetection.interval.unit", "is required"},
		{"duration value min", func(vn *VirtualNode) { listener0(vn).OutlierDetection.Interval.Value = -1 }, l0 + ".outlierDetection.interval.value", "-1 is below 0"},
		// Connection pools: one member, the listener's protocol, positive limits.
		{"pool one member", func(vn *VirtualNode) { listener0(vn).ConnectionPool.TCP = &TCPConnectionPool{MaxConnections: 1} }, l0 + ".connectionPool", "only one of tcp, http, http2, grpc may be set, found tcp and http"},
		{"pool needs member", func(vn *VirtualNode) { listener0(vn).ConnectionPool = &VirtualNodeConnectionPool{} }, l0 + ".connectionPool", "exactly one of tcp, http, http2, grpc is required"},
		{"pool matches protocol", func(vn *VirtualNode) {
			listener0(vn).ConnectionPool = &VirtualNodeConnectionPool{HTTP2: &HTTP2ConnectionPool{MaxRequests: 1}}
		}, l0 + ".connectionPool.http2", `does not match the listener's protocol "http"`},
		{"http maxConnections min", func(vn *VirtualNode) { listener0(vn).ConnectionPool.HTTP.MaxConnections = 0 }, l0 + ".connectionPool.http.maxConnections", "0 is below 1"},
		{"http maxPendingRequests min", func(vn *VirtualNode) { listener0(vn).ConnectionPool.HTTP.MaxPendingRequests = meshPtr(int64(0)) }, l0 + ".connectionPool.http.maxPendingRequests", "0 is below 1"},
		{"tcp maxConnections min", func(vn *VirtualNode) { useProtocol(vn, PortProtocolTCP) }, l0 + ".connectionPool.tcp.maxConnections", "0 is below 1"},
		{"http2 maxRequests min", func(vn *VirtualNode) { useProtocol(vn, PortProtocolHTTP2) }, l0 + ".connectionPool.http2.maxRequests", "0 is below 1"},
		{"grpc maxRequests min", func(vn *VirtualNode) { useProtocol(vn, PortProtocolGRPC) }, l0 + ".connectionPool.grpc.maxRequests", "0 is below 1"},
		// Listener timeouts: at most one member, the listener's protocol, valid durations.
		{"timeout one member", func(vn *VirtualNode) { listener0(vn).Timeout.TCP = &TCPTimeout{} }, l0 + ".timeout", "only one of tcp, http, http2, grpc may be set, found tcp and http"},
		{"timeout matches protocol", func(vn *VirtualNode) { listener0(vn).Timeout = &ListenerTimeout{GRPC: &GRPCTimeout{}} }, l0 + ".timeout.grpc", `does not match the listener's protocol "http"`},
		{"http timeout unit", func(vn *VirtualNode) { listener0(vn).Timeout.HTTP.PerRequest.Unit = "h" }, l0 + ".timeout.http.perRequest.unit", `"h" is not one of ms, s`},
		{"http idle value", func(vn *VirtualNode) { listener0(vn).Timeout.HTTP.Idle.Value = -5 }, l0 + ".timeout.http.idle.value", "-5 is below 0"},
		{"tcp idle unit", func(vn *VirtualNode) { useProtocol(vn, PortProtocolTCP) }, l0 + ".timeout.tcp.idle.unit", "is required"},
		{"http2 per request unit", func(vn *VirtualNode) { useProtocol(vn, PortProtocolHTTP2) }, l0 + ".timeout.http2.perRequest.unit", "is required"},
		{"grpc idle unit", func(vn *VirtualNode) { useProtocol(vn, PortProtocolGRPC) }, l0 + ".timeout.grpc.idle.unit", "is required"},
	}
	rules = append(rules, virtualNodeTLSRules()...)
	rules = append(rules, virtualNodeDiscoveryRules()...)
	rules = append(rules, virtualNodeBackendRules()...)
	runMeshRules(t, validVirtualNode, rules)
}

// useProtocol switches the listener to protocol with an empty pool and timeout of that
// protocol, so their own checks fire.
func useProtocol(vn *VirtualNode, protocol PortProtocol) {
	l := listener0(vn)
	l.PortMapping.Protocol = protocol
	l.HealthCheck.Protocol = protocol
	switch protocol {
	case PortProtocolTCP:
		l.ConnectionPool = &VirtualNodeConnectionPool{TCP: &TCPConnectionPool{}}
		l.Timeout = &ListenerTimeout{TCP: &TCPTimeout{Idle: &Duration{}}}
	case PortProtocolHTTP2:
		l.ConnectionPool = &VirtualNodeConnectionPool{HTTP2: &HTTP2ConnectionPool{}}
		l.Timeout = &ListenerTimeout{HTTP2: &HTTPTimeout{PerRequest: &Duration{}}}
	case PortProtocolGRPC:
		l.ConnectionPool = &VirtualNodeConnectionPool{GRPC: &GRPCConnectionPool{}}
		l.Timeout = &ListenerTimeout{GRPC: &GRPCTimeout{Idle: &Duration{}}}
	}
}

func virtualNodeTLSRules() []vnRule {
	l0 := "spec.listeners[0]"
	long := strings.Repeat("a", 256)
	return []vnRule{
		{"tls certificate needs source", func(vn *VirtualNode) { listener0(vn).TLS.Certificate = ListenerTLSCertificate{} }, l0 + ".tls.certificate", "exactly one of acm, file, sds is required"},
		{"tls certificate one source", func(vn *VirtualNode) {
			listener0(vn).TLS.Certificate.SDS = &ListenerTLSSDSCertificate{SecretName: meshPtr("x")}
		}, l0 + ".tls.certificate", "only one of acm, file, sds may be set, found file and sds"},
		{"tls chain required", func(vn *VirtualNode) { listener0(vn).TLS.Certificate.File.CertificateChain = "" }, l0 + ".tls.certificate.file.certificateChain", "is required"},
		{"tls key length", func(vn *VirtualNode) { listener0(vn).TLS.Certificate.File.PrivateKey = long }, l0 + ".tls.certificate.file.privateKey", "has 256 characters, at most 255 allowed"},
		{"tls sds secret required", func(vn *VirtualNode) {
			listener0(vn).TLS.Certificate = ListenerTLSCertificate{SDS: &ListenerTLSSDSCertificate{}}
		}, l0 + ".tls.certificate.sds.secretName", "is required"},
		{"tls acm arn required", func(vn *VirtualNode) {
			listener0(vn).TLS.Certificate = ListenerTLSCertificate{ACM: &ListenerTLSACMCertificate{}}
		}, l0 + ".tls.certificate.acm.certificateARN", "is required"},
		{"tls mode required", func(vn *VirtualNode) { listener0(vn).TLS.Mode = "" }, l0 + ".tls.mode", "is required"},
		{"tls mode enum", func(vn *VirtualNode) { listener0(vn).TLS.Mode = "OPTIONAL" }, l0 + ".tls.mode", `"OPTIONAL" is not one of STRICT, PERMISSIVE, DISABLED`},
		{"tls trust needs source", func(vn *VirtualNode) { listener0(vn).TLS.Validation.Trust = ListenerTLSValidationContextTrust{} }, l0 + ".tls.validation.trust", "exactly one of file, sds is required"},
		{"tls trust file chain", func(vn *VirtualNode) {
			listener0(vn).TLS.Validation.Trust = ListenerTLSValidationContextTrust{File: &TLSValidationContextFileTrust{}}
		}, l0 + ".tls.validation.trust.file.certificateChain", "is required"},
		{"tls trust sds secret", func(vn *VirtualNode) { listener0(vn).TLS.Validation.Trust.SDS.SecretName = meshPtr("") }, l0 + ".tls.validation.trust.sds.secretName", "is required"},
		{"tls SAN required", func(vn *VirtualNode) { listener0(vn).TLS.Validation.SubjectAlternativeNames.Match.Exact = nil }, l0 + ".tls.validation.subjectAlternativeNames.match.exact", "is required"},
		{"tls SAN not empty", func(vn *VirtualNode) { listener0(vn).TLS.Validation.SubjectAlternativeNames.Match.Exact = []string{""} }, l0 + ".tls.validation.subjectAlternativeNames.match.exact[0]", "must not be empty"},
	}
}

func virtualNodeDiscoveryRules() []vnRule {
	sd := "spec.serviceDiscovery"
	cloudMap := func(vn *VirtualNode) *AWSCloudMapServiceDiscovery {
		c := &AWSCloudMapServiceDiscovery{NamespaceName: "ns", ServiceName: "svc", Attributes: []AWSCloudMapInstanceAttribute{{Key: "k", Value: "v"}}}
		vn.Spec.ServiceDiscovery = &ServiceDiscovery{AWSCloudMap: c}
		return c
	}
	static := func(vn *VirtualNode, e ...StaticEndpoint) { vn.Spec.ServiceDiscovery = &ServiceDiscovery{Static: e} }
	return []vnRule{
		{"discovery needs a kind", func(vn *VirtualNode) { vn.Spec.ServiceDiscovery = &ServiceDiscovery{} }, sd, "exactly one of dns, awsCloudMap, static is required"},
		{"discovery one kind", func(vn *VirtualNode) {
			vn.Spec.ServiceDiscovery.Static = []StaticEndpoint{{Address: "10.0.0.1", Port: 80}}
		}, sd, "only one of dns, awsCloudMap, static may be set, found dns and static"},
		{"dns hostname required", func(vn *VirtualNode) { vn.Spec.ServiceDiscovery.DNS.Hostname = "" }, sd + ".dns.hostname", "is required"},
		{"dns responseType enum", func(vn *VirtualNode) { vn.Spec.ServiceDiscovery.DNS.ResponseType = meshPtr("ROUND_ROBIN") }, sd + ".dns.responseType", `"ROUND_ROBIN" is not one of ENDPOINTS, LOADBALANCER`},
		{"dns ipPreference enum", func(vn *VirtualNode) { vn.Spec.ServiceDiscovery.DNS.IPPreference = meshPtr("IPv5") }, sd + ".dns.ipPreference", `"IPv5" is not one of`},
		{"cloud map namespace required", func(vn *VirtualNode) { cloudMap(vn).NamespaceName = "" }, sd + ".awsCloudMap.namespaceName", "is required"},
		{"cloud map service length", func(vn *VirtualNode) { cloudMap(vn).ServiceName = strings.Repeat("s", 1025) }, sd + ".awsCloudMap.serviceName", "has 1025 characters, at most 1024 allowed"},
		{"cloud map attribute key", func(vn *VirtualNode) { cloudMap(vn).Attributes[0].Key = "" }, sd + ".awsCloudMap.attributes[0].key", "is required"},
		{"cloud map attribute value", func(vn *VirtualNode) { cloudMap(vn).Attributes[0].Value = strings.Repeat("v", 1025) }, sd + ".awsCloudMap.attributes[0].value", "at most 1024 allowed"},
		{"cloud map ipPreference enum", func(vn *VirtualNode) { cloudMap(vn).IPPreference = meshPtr("any") }, sd + ".awsCloudMap.ipPreference", `"any" is not one of`},
		{"static address required", func(vn *VirtualNode) { static(vn, StaticEndpoint{Port: 80}) }, sd + ".static[0].address", "is required"},
		{"static address without port", func(vn *VirtualNode) { static(vn, StaticEndpoint{Address: "10.0.0.1:80", Port: 80}) }, sd + ".static[0].address", "is neither an IP address nor a host name"},
		{"static port range", func(vn *VirtualNode) { static(vn, StaticEndpoint{Address: "vm-1.lan", Port: 0}) }, sd + ".static[0].port", "0 is below 1"},
		{"static no duplicates", func(vn *VirtualNode) {
			static(vn, StaticEndpoint{Address: "VM-1.lan", Port: 80}, StaticEndpoint{Address: "vm-1.lan", Port: 80})
		}, sd + ".static[1]", "vm-1.lan:80 is listed twice"},
	}
}

func virtualNodeBackendRules() []vnRule {
	b0 := "spec.backends[0].virtualService"
	tls0 := func(vn *VirtualNode) *ClientPolicyTLS { return vn.Spec.Backends[0].VirtualService.ClientPolicy.TLS }
	log := "spec.logging.accessLog.file"
	format := func(vn *VirtualNode) *LoggingFormat { return vn.Spec.Logging.AccessLog.File.Format }
	return []vnRule{
		{"backend needs a name", func(vn *VirtualNode) { vn.Spec.Backends[0].VirtualService.VirtualServiceRef = nil }, b0, "exactly one of virtualServiceRef, virtualServiceARN, virtualServiceName is required"},
		{"backend one name", func(vn *VirtualNode) { vn.Spec.Backends[0].VirtualService.VirtualServiceName = "x" }, b0, "only one of virtualServiceRef, virtualServiceARN, virtualServiceName may be set"},
		{"backend ref name", func(vn *VirtualNode) { vn.Spec.Backends[0].VirtualService.VirtualServiceRef.Name = "" }, b0 + ".virtualServiceRef.name", "is required"},
		{"backend arn not empty", func(vn *VirtualNode) { vn.Spec.Backends[1].VirtualService.VirtualServiceARN = meshPtr("") }, "spec.backends[1].virtualService.virtualServiceARN", "must not be empty"},
		{"backend name length", func(vn *VirtualNode) {
			vn.Spec.Backends[2].VirtualService.VirtualServiceName = strings.Repeat("n", 256)
		}, "spec.backends[2].virtualService.virtualServiceName", "at most 255 allowed"},
		{"backend no duplicates", func(vn *VirtualNode) {
			vn.Spec.Backends = append(vn.Spec.Backends, Backend{VirtualService: VirtualServiceBackend{
				VirtualServiceRef: &VirtualServiceReference{Namespace: meshPtr("test"), Name: "backend"}}})
		}, "spec.backends[3].virtualService", "names the same virtual service as spec.backends[0]"},
		{"client tls port range", func(vn *VirtualNode) { tls0(vn).Ports = []PortNumber{0} }, b0 + ".clientPolicy.tls.ports[0]", "0 is below 1"},
		{"client certificate source", func(vn *VirtualNode) { tls0(vn).Certificate = &ClientTLSCertificate{} }, b0 + ".clientPolicy.tls.certificate", "exactly one of file, sds is required"},
		{"client certificate file", func(vn *VirtualNode) {
			tls0(vn).Certificate = &ClientTLSCertificate{File: &ListenerTLSFileCertificate{CertificateChain: "/c"}}
		}, b0 + ".clientPolicy.tls.certificate.file.privateKey", "is required"},
		{"client trust source", func(vn *VirtualNode) { tls0(vn).Validation.Trust = TLSValidationContextTrust{} }, b0 + ".clientPolicy.tls.validation.trust", "exactly one of acm, file, sds is required"},
		{"acm authorities at most 3", func(vn *VirtualNode) {
			tls0(vn).Validation.Trust.ACM.CertificateAuthorityARNs = []string{"a", "b", "c", "d"}
		}, b0 + ".clientPolicy.tls.validation.trust.acm.certificateAuthorityARNs", "has 4 items, at most 3 allowed"},
		{"acm authorities at least 1", func(vn *VirtualNode) { tls0(vn).Validation.Trust.ACM.CertificateAuthorityARNs = nil }, b0 + ".clientPolicy.tls.validation.trust.acm.certificateAuthorityARNs", "has 0 items, at least 1 expected"},
		{"acm authority not empty", func(vn *VirtualNode) { tls0(vn).Validation.Trust.ACM.CertificateAuthorityARNs = []string{""} }, b0 + ".clientPolicy.tls.validation.trust.acm.certificateAuthorityARNs[0]", "must not be empty"},
		{"client trust sds secret", func(vn *VirtualNode) {
			tls0(vn).Validation.Trust = TLSValidationContextTrust{SDS: &TLSValidationContextSDSTrust{}}
		}, b0 + ".clientPolicy.tls.validation.trust.sds.secretName", "is required"},
		{"backend group name", func(vn *VirtualNode) { vn.Spec.BackendGroups[0].Name = "" }, "spec.backendGroups[0].name", "is required"},
		{"backend group no duplicates", func(vn *VirtualNode) {
			vn.Spec.BackendGroups = append(vn.Spec.BackendGroups, BackendGroupReference{Name: "all", Namespace: meshPtr("test")})
		}, "spec.backendGroups[1]", "names the same backend group as spec.backendGroups[0]"},
		{"backend defaults trust", func(vn *VirtualNode) {
			vn.Spec.BackendDefaults.ClientPolicy.TLS.Validation.Trust.File.CertificateChain = ""
		}, "spec.backendDefaults.clientPolicy.tls.validation.trust.file.certificateChain", "is required"},
		{"log path required", func(vn *VirtualNode) { vn.Spec.Logging.AccessLog.File.Path = "" }, log + ".path", "is required"},
		{"log path length", func(vn *VirtualNode) { vn.Spec.Logging.AccessLog.File.Path = "/" + strings.Repeat("p", 255) }, log + ".path", "has 256 characters, at most 255 allowed"},
		{"log format one kind", func(vn *VirtualNode) { format(vn).Text = meshPtr("%START_TIME%") }, log + ".format", "only one of json, text may be set, found json and text"},
		{"log format needs a kind", func(vn *VirtualNode) { vn.Spec.Logging.AccessLog.File.Format = &LoggingFormat{} }, log + ".format", "exactly one of json, text is required"},
		{"log text not empty", func(vn *VirtualNode) { *format(vn) = LoggingFormat{Text: meshPtr("")} }, log + ".format.text", "must not be empty"},
		{"log text length", func(vn *VirtualNode) { *format(vn) = LoggingFormat{Text: meshPtr(strings.Repeat("t", 1001))} }, log + ".format.text", "has 1001 characters, at most 1000 allowed"},
		{"log json key required", func(vn *VirtualNode) { format(vn).JSON[0].Key = "" }, log + ".format.json[0].key", "is required"},
		{"log json key length", func(vn *VirtualNode) { format(vn).JSON[0].Key = strings.Repeat("k", 101) }, log + ".format.json[0].key", "has 101 characters, at most 100 allowed"},
		{"log json value required", func(vn *VirtualNode) { format(vn).JSON[0].Value = "" }, log + ".format.json[0].value", "is required"},
		{"log json keys unique", func(vn *VirtualNode) { format(vn).JSON = append(format(vn).JSON, format(vn).JSON[0]) }, log + ".format.json[1].key", `"status" is used twice`},
	}
}

func TestVirtualNodeValidVariants(t *testing.T) {
	for name, mutate := range map[string]func(*VirtualNode){
		"no listener, no discovery": func(vn *VirtualNode) { vn.Spec.Listeners, vn.Spec.ServiceDiscovery = nil, nil },
		"static endpoints": func(vn *VirtualNode) {
			vn.Spec.ServiceDiscovery = &ServiceDiscovery{Static: []StaticEndpoint{{Address: "VM-1.lan", Port: 80}, {Address: "fd00::1", Port: 80}, {Address: "10.0.0.7", Port: 8080}}}
		},
		"text log format": func(vn *VirtualNode) {
			*vn.Spec.Logging.AccessLog.File.Format = LoggingFormat{Text: meshPtr("%START_TIME% %RESPONSE_CODE%\n")}
		},
		"empty awsName": func(vn *VirtualNode) { vn.Spec.AWSName = meshPtr("") },
		"tcp listener": func(vn *VirtualNode) {
			l := listener0(vn)
			l.PortMapping.Protocol, l.ConnectionPool, l.Timeout = PortProtocolTCP, nil, nil
		},
	} {
		vn := validVirtualNode()
		mutate(vn)
		if errs := vn.Validate(); len(errs) > 0 {
			t.Errorf("%s: unexpected errors: %v", name, errs)
		}
	}
}

func TestVirtualNodeDefault(t *testing.T) {
	vn := validVirtualNode()
	vn.Spec.ServiceDiscovery.DNS.ResponseType = nil
	vn.Spec.Backends[0].VirtualService.ClientPolicy.TLS.Enforce = nil
	vn.Default()
	if got := *vn.Spec.AWSName; got != "podinfo-primary_test" {
		t.Errorf("awsName = %q, want podinfo-primary_test", got)
	}
	if got := *vn.Spec.ServiceDiscovery.DNS.ResponseType; got != DNSResponseTypeLoadBalancer {
		t.Errorf("responseType = %q, want %s", got, DNSResponseTypeLoadBalancer)
	}
	if e := vn.Spec.Backends[0].VirtualService.ClientPolicy.TLS.Enforce; e == nil || !*e {
		t.Errorf("backend tls.enforce = %v, want true", e)
	}
	if e := vn.Spec.BackendDefaults.ClientPolicy.TLS.Enforce; e == nil || !*e {
		t.Errorf("backendDefaults tls.enforce = %v, want true", e)
	}
	if errs := vn.Validate(); len(errs) > 0 {
		t.Errorf("defaulted object is invalid: %v", errs)
	}

	kept := validVirtualNode()
	kept.Spec.AWSName = meshPtr("custom")
	kept.Spec.Backends[0].VirtualService.ClientPolicy.TLS.Enforce = meshPtr(false)
	kept.Default()
	if *kept.Spec.AWSName != "custom" || *kept.Spec.ServiceDiscovery.DNS.ResponseType != DNSResponseTypeEndpoints ||
		*kept.Spec.Backends[0].VirtualService.ClientPolicy.TLS.Enforce {
		t.Errorf("Default overwrote set fields: %+v", kept.Spec)
	}

	bare := &VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Spec: VirtualNodeSpec{AWSName: meshPtr("")}}
	bare.Default()
	if *bare.Spec.AWSName != "n_default" {
		t.Errorf("awsName without namespace = %q, want n_default", *bare.Spec.AWSName)
	}
}

func TestVirtualNodeDecodesAppMeshFields(t *testing.T) {
	var vn VirtualNode
	decodeMeshManifest(t, `{"apiVersion":"canarymesh.dev/v1alpha1","kind":"VirtualNode","metadata":{"name":"n","namespace":"test"},
	"spec":{"awsName":"n_test","podSelector":{"matchLabels":{"app":"n"}},
	"listeners":[{"portMapping":{"port":8080,"protocol":"http"},
	  "healthCheck":{"healthyThreshold":2,"intervalMillis":5000,"path":"/ping","port":8080,"protocol":"http","timeoutMillis":2000,"unhealthyThreshold":2},
	  "outlierDetection":{"maxServerErrors":5,"interval":{"unit":"s","value":10},"baseEjectionDuration":{"unit":"s","value":10},"maxEjectionPercent":10},
	  "connectionPool":{"http":{"maxConnections":10,"maxPendingRequests":5}},
	  "tls":{"certificate":{"sds":{"secretName":"s"}},"mode":"STRICT","validation":{"trust":{"file":{"certificateChain":"/c"}},"subjectAlternativeNames":{"match":{"exact":["a"]}}}},
	  "timeout":{"http":{"perRequest":{"unit":"s","value":5},"idle":{"unit":"s","value":60}}}}],
	"serviceDiscovery":{"dns":{"hostname":"n.test.svc.cluster.local","responseType":"ENDPOINTS","ipPreference":"IPv4_ONLY"}},
	"backends":[{"virtualService":{"virtualServiceRef":{"name":"b","namespace":"test"},"clientPolicy":{"tls":{"enforce":true,"ports":[80],
	  "certificate":{"file":{"certificateChain":"/c","privateKey":"/k"}},"validation":{"trust":{"acm":{"certificateAuthorityARNs":["arn"]}}}}}}},
	  {"virtualService":{"virtualServiceName":"legacy.test"}}],
	"backendGroups":[{"name":"g","namespace":"test"}],
	"backendDefaults":{"clientPolicy":{"tls":{"validation":{"trust":{"sds":{"secretName":"ca"}}}}}},
	"logging":{"accessLog":{"file":{"path":"/dev/stdout","format":{"json":[{"key":"k","value":"%PROTOCOL%"}]}}}},
	"meshRef":{"name":"m","uid":"u"}}}`, &vn)
	if errs := vn.Validate(); len(errs) > 0 {
		t.Errorf("decoded manifest is invalid: %v", errs)
	}
}
