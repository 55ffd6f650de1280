package v1alpha1

import (
	"math"
	"net"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// VirtualNode limits (App Mesh).
const (
	maxVirtualNodeListeners = 1
	maxCloudMapNameLen      = 1024
	maxCloudMapKeyLen       = 255
	maxCloudMapValueLen     = 1024
)

// Validate checks the VirtualNode on its own; the virtual services and groups it names need
// not exist.
func (vn *VirtualNode) Validate() ErrorList {
	errs := validateMeta(vn, true)
	spec := field.NewPath("spec")
	s := &vn.Spec
	checkAWSName(&errs, spec.Child("awsName"), s.AWSName)
	checkLabelSelector(&errs, spec.Child("podSelector"), s.PodSelector)
	lp := spec.Child("listeners")
	checkCount(&errs, lp, len(s.Listeners), 0, maxVirtualNodeListeners)
	for i := range s.Listeners {
		s.Listeners[i].validate(&errs, lp.Index(i))
	}
	if len(s.Listeners) > 0 && s.ServiceDiscovery == nil {
		errs = append(errs, Invalid(spec.Child("serviceDiscovery"), "is required when a listener is set"))
	}
	s.ServiceDiscovery.validate(&errs, spec.Child("serviceDiscovery"))
	vn.validateBackends(&errs, spec)
	s.BackendDefaults.validate(&errs, spec.Child("backendDefaults"))
	s.Logging.validate(&errs, spec.Child("logging"))
	return errs
}

func (l *Listener) validate(errs *ErrorList, p *field.Path) {
	l.PortMapping.validate(errs, p.Child("portMapping"), portProtocols)
	if l.HealthCheck != nil {
		l.HealthCheck.validate(errs, p.Child("healthCheck"), portProtocols)
	}
	l.OutlierDetection.validate(errs, p.Child("outlierDetection"))
	l.ConnectionPool.validate(errs, p.Child("connectionPool"), l.PortMapping.Protocol)
	l.TLS.validate(errs, p.Child("tls"))
	l.Timeout.validate(errs, p.Child("timeout"), l.PortMapping.Protocol)
}

func (o *OutlierDetection) validate(errs *ErrorList, p *field.Path) {
	if o == nil {
		return
	}
	checkRange(errs, p.Child("maxServerErrors"), o.MaxServerErrors, 1, math.MaxInt64)
	o.Interval.validateRequired(errs, p.Child("interval"))
	o.BaseEjectionDuration.validateRequired(errs, p.Child("baseEjectionDuration"))
	checkRange(errs, p.Child("maxEjectionPercent"), o.MaxEjectionPercent, 0, 100)
}

var listenerProtocolMembers = []PortProtocol{PortProtocolTCP, PortProtocolHTTP, PortProtocolHTTP2, PortProtocolGRPC}

func (c *VirtualNodeConnectionPool) validate(errs *ErrorList, p *field.Path, protocol PortProtocol) {
	if c == nil {
		return
	}
	set := []bool{c.TCP != nil, c.HTTP != nil, c.HTTP2 != nil, c.GRPC != nil}
	checkExactlyOne(errs, p, []string{"tcp", "http", "http2", "grpc"}, set...)
	checkMemberProtocol(errs, p, protocol, listenerProtocolMembers, set...)
	c.TCP.validate(errs, p.Child("tcp"))
	c.HTTP.validate(errs, p.Child("http"))
	c.HTTP2.validate(errs, p.Child("http2"))
	c.GRPC.validate(errs, p.Child("grpc"))
}

func (t *ListenerTimeout) validate(errs *ErrorList, p *field.Path, protocol PortProtocol) {
	if t == nil {
		return
	}
	set := []bool{t.TCP != nil, t.HTTP != nil, t.HTTP2 != nil, t.GRPC != nil}
	checkAtMostOne(errs, p, []string{"tcp", "http", "http2", "grpc"}, set...)
	checkMemberProtocol(errs, p, protocol, listenerProtocolMembers, set...)
	t.TCP.validate(errs, p.Child("tcp"))
	t.HTTP.validate(errs, p.Child("http"))
	t.HTTP2.validate(errs, p.Child("http2"))
	t.GRPC.validate(errs, p.Child("grpc"))
}

func (sd *ServiceDiscovery) validate(errs *ErrorList, p *field.Path) {
	if sd == nil {
		return
	}
	checkExactlyOne(errs, p, []string{"dns", "awsCloudMap", "static"}, sd.DNS != nil, sd.AWSCloudMap != nil, len(sd.Static) > 0)
	if d := sd.DNS; d != nil {
		dp := p.Child("dns")
		if d.Hostname == "" {
			*errs = append(*errs, Required(dp.Child("hostname")))
		}
		if d.ResponseType != nil {
			checkOneOf(errs, dp.Child("responseType"), *d.ResponseType, DNSResponseTypeEndpoints, DNSResponseTypeLoadBalancer)
		}
		checkIPPreference(errs, dp.Child("ipPreference"), d.IPPreference)
	}
	if c := sd.AWSCloudMap; c != nil {
		cp := p.Child("awsCloudMap")
		checkRequiredString(errs, cp.Child("namespaceName"), c.NamespaceName, maxCloudMapNameLen)
		checkRequiredString(errs, cp.Child("serviceName"), c.ServiceName, maxCloudMapNameLen)
		for i, a := range c.Attributes {
			ap := cp.Child("attributes").Index(i)
			checkRequiredString(errs, ap.Child("key"), a.Key, maxCloudMapKeyLen)
			checkRequiredString(errs, ap.Child("value"), a.Value, maxCloudMapValueLen)
		}
		checkIPPreference(errs, cp.Child("ipPreference"), c.IPPreference)
	}
	validateStaticEndpoints(errs, p.Child("static"), sd.Static)
}

func checkIPPreference(errs *ErrorList, p *field.Path, pref *string) {
	if pref != nil {
		checkOneOf(errs, p, *pref, ipPreferences...)
	}
}

func validateStaticEndpoints(errs *ErrorList, p *field.Path, endpoints []StaticEndpoint) {
	seen := map[string]bool{}
	for i, e := range endpoints {
		ep := p.Index(i)
		checkPort(errs, ep.Child("port"), e.Port)
		switch {
		case e.Address == "":
			*errs = append(*errs, Required(ep.Child("address")))
			continue
		case !isHostOrIP(e.Address):
			*errs = append(*errs, Invalid(ep.Child("address"), "%q is neither an IP address nor a host name (give the port in port)", e.Address))
			continue
		}
		key := net.JoinHostPort(strings.ToLower(e.Address), strconv.FormatInt(int64(e.Port), 10))
		if seen[key] {
			*errs = append(*errs, Invalid(ep, "%s is listed twice", key))
		}
		seen[key] = true
	}
}

// isHostOrIP accepts an IPv4 or IPv6 address, or a DNS host name of any letter case.
func isHostOrIP(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	return len(validation.IsDNS1123Subdomain(strings.ToLower(s))) == 0
}

func (vn *VirtualNode) validateBackends(errs *ErrorList, spec *field.Path) {
	seen := map[string]int{}
	for i := range vn.Spec.Backends {
		bp := spec.Child("backends").Index(i).Child("virtualService")
		b := &vn.Spec.Backends[i].VirtualService
		checkExactlyOne(errs, bp, []string{"virtualServiceRef", "virtualServiceARN", "virtualServiceName"},
			b.VirtualServiceRef != nil, b.VirtualServiceARN != nil, b.VirtualServiceName != "")
		var key string
		switch {
		case b.VirtualServiceRef != nil:
			checkRefName(errs, bp.Child("virtualServiceRef"), b.VirtualServiceRef.Name)
			key = "ref " + refKey(b.VirtualServiceRef.Namespace, b.VirtualServiceRef.Name, vn.Namespace)
		case b.VirtualServiceARN != nil:
			checkNonEmpty(errs, bp.Child("virtualServiceARN"), b.VirtualServiceARN)
			key = "arn " + *b.VirtualServiceARN
		case b.VirtualServiceName != "":
			checkMaxLength(errs, bp.Child("virtualServiceName"), b.VirtualServiceName, maxAWSNameLen)
			key = "name " + b.VirtualServiceName
		}
		if j, dup := seen[key]; dup && key != "" {
			*errs = append(*errs, Invalid(bp, "names the same virtual service as spec.backends[%d]", j))
		} else {
			seen[key] = i
		}
		b.ClientPolicy.validate(errs, bp.Child("clientPolicy"))
	}
	groups := map[string]int{}
	for i, g := range vn.Spec.BackendGroups {
		gp := spec.Child("backendGroups").Index(i)
		checkRefName(errs, gp, g.Name)
		key := refKey(g.Namespace, g.Name, vn.Namespace)
		if j, dup := groups[key]; dup && g.Name != "" {
			*errs = append(*errs, Invalid(gp, "names the same backend group as spec.backendGroups[%d]", j))
		} else {
			groups[key] = i
		}
	}
}
