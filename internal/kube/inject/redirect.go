package inject

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Redirect is one pod's traffic interception, in App Mesh's terms: inbound TCP to the
// application ports goes to the proxy's ingress port, outbound TCP goes to its egress
// port, except traffic of the ignored UID/GID (the proxy's own), to ignored ports and to
// ignored addresses. The init container receives it as App Mesh's APPMESH_* variables.
type Redirect struct {
	AppPorts           []int32
	EgressIgnoredPorts []int32
	EgressIgnoredIPs   []string // addresses or CIDR prefixes, as written
	IgnoredUID         int64
	IgnoredGID         *int64
	ProxyIngressPort   int32
	ProxyEgressPort    int32
}

// Environment variables of the init container, named as App Mesh's proxy route manager
// reads them.
const (
	EnvStartEnabled       = "APPMESH_START_ENABLED"
	EnvIgnoreUID          = "APPMESH_IGNORE_UID"
	EnvIgnoreGID          = "APPMESH_IGNORE_GID"
	EnvIngressPort        = "APPMESH_ENVOY_INGRESS_PORT"
	EnvEgressPort         = "APPMESH_ENVOY_EGRESS_PORT"
	EnvAppPorts           = "APPMESH_APP_PORTS"
	EnvEgressIgnoredIP    = "APPMESH_EGRESS_IGNORED_IP"
	EnvEgressIgnoredPorts = "APPMESH_EGRESS_IGNORED_PORTS"
)

// annotationError names the annotation and its value.
func annotationError(key, value, msg string) error {
	return fmt.Errorf("metadata.annotations[%s]: %q: %s", key, value, msg)
}

// redirectFor reads the interception settings of a pod from its annotations; appPorts
// are used when the pod does not name its ports (the VirtualNode's listener ports, else
// the containers' ports). clusterIgnoredIPs are ignored for every pod.
func redirectFor(ann map[string]string, appPorts []int32, clusterIgnoredIPs []string) (Redirect, error) {
	r := Redirect{
		AppPorts:         appPorts,
		EgressIgnoredIPs: append([]string(nil), clusterIgnoredIPs...),
		IgnoredUID:       DefaultIgnoredUID,
		ProxyIngressPort: DefaultProxyIngressPort,
		ProxyEgressPort:  DefaultProxyEgressPort,
	}
	var err error
	if v, ok := ann[AnnotationPorts]; ok {
		if r.AppPorts, err = parsePorts(v); err != nil {
			return r, annotationError(AnnotationPorts, v, err.Error())
		}
	}
	ignored := DefaultEgressIgnoredPorts
	if v, ok := ann[AnnotationEgressIgnoredPorts]; ok {
		ignored = v
	}
	if r.EgressIgnoredPorts, err = parsePorts(ignored); err != nil {
		return r, annotationError(AnnotationEgressIgnoredPorts, ignored, err.Error())
	}
	if v, ok := ann[AnnotationEgressIgnoredIPs]; ok {
		ips, err := parseIPs(v)
		if err != nil {
			return r, annotationError(AnnotationEgressIgnoredIPs, v, err.Error())
		}
		r.EgressIgnoredIPs = append(r.EgressIgnoredIPs, ips...)
	}
	if v, ok := ann[AnnotationIgnoredUID]; ok {
		if r.IgnoredUID, err = parseID(v); err != nil {
			return r, annotationError(AnnotationIgnoredUID, v, err.Error())
		}
	}
	if v, ok := ann[AnnotationIgnoredGID]; ok {
		gid, err := parseID(v)
		if err != nil {
			return r, annotationError(AnnotationIgnoredGID, v, err.Error())
		}
		r.IgnoredGID = &gid
	}
	for _, p := range []struct {
		key string
		dst *int32
	}{{AnnotationProxyIngressPort, &r.ProxyIngressPort}, {AnnotationProxyEgressPort, &r.ProxyEgressPort}} {
		if v, ok := ann[p.key]; ok {
			n, err := parsePort(strings.TrimSpace(v))
			if err != nil {
				return r, annotationError(p.key, v, err.Error())
			}
			*p.dst = n
		}
	}
	if r.ProxyIngressPort == r.ProxyEgressPort {
		return r, fmt.Errorf("metadata.annotations: the proxy's ingress and egress ports are both %d", r.ProxyIngressPort)
	}
	return r, nil
}

func parsePort(s string) (int32, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return int32(n), nil
}

// parsePorts reads a comma-separated port list; App Mesh writes "0" for none.
func parsePorts(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" || f == "0" {
			continue
		}
		p, err := parsePort(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return dedupePorts(out), nil
}

func dedupePorts(in []int32) []int32 {
	sort.Slice(in, func(i, j int) bool { return in[i] < in[j] })
	out := in[:0]
	for i, p := range in {
		if i == 0 || p != in[i-1] {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func parseIPs(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if _, err := netip.ParsePrefix(f); err != nil {
			if _, err := netip.ParseAddr(f); err != nil {
				return nil, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", f)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

func parseID(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > 1<<31-1 {
		return 0, fmt.Errorf("%q is not a user or group id", s)
	}
	return n, nil
}

func joinPorts(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

// Env is the init container's environment.
func (r Redirect) Env() []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: EnvStartEnabled, Value: "1"},
		{Name: EnvIgnoreUID, Value: strconv.FormatInt(r.IgnoredUID, 10)},
	}
	if r.IgnoredGID != nil {
		env = append(env, corev1.EnvVar{Name: EnvIgnoreGID, Value: strconv.FormatInt(*r.IgnoredGID, 10)})
	}
	return append(env,
		corev1.EnvVar{Name: EnvIngressPort, Value: strconv.Itoa(int(r.ProxyIngressPort))},
		corev1.EnvVar{Name: EnvEgressPort, Value: strconv.Itoa(int(r.ProxyEgressPort))},
		corev1.EnvVar{Name: EnvAppPorts, Value: joinPorts(r.AppPorts)},
		corev1.EnvVar{Name: EnvEgressIgnoredIP, Value: strings.Join(r.EgressIgnoredIPs, ",")},
		corev1.EnvVar{Name: EnvEgressIgnoredPorts, Value: joinPorts(r.EgressIgnoredPorts)},
	)
}

// RedirectFromEnv reads what Env wrote (or what App Mesh's injector wrote for its own
// init container), through getenv. Unset variables take App Mesh's defaults.
func RedirectFromEnv(getenv func(string) string) (Redirect, error) {
	r := Redirect{IgnoredUID: DefaultIgnoredUID, ProxyIngressPort: DefaultProxyIngressPort, ProxyEgressPort: DefaultProxyEgressPort}
	var err error
	bad := func(name, v string, err error) error { return fmt.Errorf("%s=%q: %w", name, v, err) }
	if v := getenv(EnvIgnoreUID); v != "" {
		if r.IgnoredUID, err = parseID(v); err != nil {
			return r, bad(EnvIgnoreUID, v, err)
		}
	}
	if v := getenv(EnvIgnoreGID); v != "" {
		gid, err := parseID(v)
		if err != nil {
			return r, bad(EnvIgnoreGID, v, err)
		}
		r.IgnoredGID = &gid
	}
	for _, p := range []struct {
		name string
		dst  *int32
	}{{EnvIngressPort, &r.ProxyIngressPort}, {EnvEgressPort, &r.ProxyEgressPort}} {
		if v := getenv(p.name); v != "" {
			if *p.dst, err = parsePort(v); err != nil {
				return r, bad(p.name, v, err)
			}
		}
	}
	if v := getenv(EnvAppPorts); v != "" {
		if r.AppPorts, err = parsePorts(v); err != nil {
			return r, bad(EnvAppPorts, v, err)
		}
	}
	if v := getenv(EnvEgressIgnoredPorts); v != "" {
		if r.EgressIgnoredPorts, err = parsePorts(v); err != nil {
			return r, bad(EnvEgressIgnoredPorts, v, err)
		}
	}
	if v := getenv(EnvEgressIgnoredIP); v != "" {
		if r.EgressIgnoredIPs, err = parseIPs(v); err != nil {
			return r, bad(EnvEgressIgnoredIP, v, err)
		}
	}
	return r, nil
}

// Chains the rules live in, so they can be found and flushed.
const (
	chainIngress = "CANARYMESH_INGRESS"
	chainEgress  = "CANARYMESH_EGRESS"
)

// IPTablesRules renders the redirection as iptables-restore input for the nat table
// (IPv4). IPv6 addresses in the ignored list are left to ip6tables and skipped here.
func (r Redirect) IPTablesRules() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("*nat")
	w(":%s - [0:0]", chainIngress)
	w(":%s - [0:0]", chainEgress)
	w("-A PREROUTING -p tcp -j %s", chainIngress)
	w("-A OUTPUT -p tcp -j %s", chainEgress)
	for _, group := range chunkPorts(r.AppPorts) {
		w("-A %s -p tcp -m multiport --dports %s -j REDIRECT --to-ports %d", chainIngress, group, r.ProxyIngressPort)
	}
	w("-A %s -m owner --uid-owner %d -j RETURN", chainEgress, r.IgnoredUID)
	if r.IgnoredGID != nil {
		w("-A %s -m owner --gid-owner %d -j RETURN", chainEgress, *r.IgnoredGID)
	}
	// The pod talking to itself (localhost or its own address) is not mesh traffic.
	w("-A %s -o lo -j RETURN", chainEgress)
	for _, group := range chunkPorts(r.EgressIgnoredPorts) {
		w("-A %s -p tcp -m multiport --dports %s -j RETURN", chainEgress, group)
	}
	for _, ip := range r.EgressIgnoredIPs {
		if a, err := netip.ParseAddr(ip); (err == nil && a.Is6()) || strings.Contains(ip, ":") {
			continue
		}
		w("-A %s -d %s -j RETURN", chainEgress, ip)
	}
	w("-A %s -p tcp -j REDIRECT --to-ports %d", chainEgress, r.ProxyEgressPort)
	w("COMMIT")
	return b.String()
}

// chunkPorts groups ports by 15, the most one multiport match takes.
func chunkPorts(ps []int32) []string {
	var out []string
	for len(ps) > 0 {
		n := min(len(ps), 15)
		out = append(out, joinPorts(ps[:n]))
		ps = ps[n:]
	}
	return out
}
