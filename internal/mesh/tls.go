package mesh

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// TLS: what a listener terminates (spec.listeners[].tls) and what a node or gateway
// originates towards its backends (spec.backendDefaults.clientPolicy.tls, overridden per
// backend by spec.backends[].virtualService.clientPolicy.tls). Only file sources can be
// served here; sds and acm compile to snapshot Unavailable, which the proxy answers by
// refusing the TLS traffic rather than sending or accepting it in plaintext, and are
// reported as problems of the node.

// listenerTLS compiles a listener's tls at field of object id. validation is nil when
// the listener checks no client certificates.
func (c *compiler) listenerTLS(id, field string, mode v1alpha1.ListenerTLSMode, cert *v1alpha1.ListenerTLSCertificate,
	validation *v1alpha1.TLSValidationContext) *snapshot.ListenerTLS {
	if mode != v1alpha1.ListenerTLSModeStrict && mode != v1alpha1.ListenerTLSModePermissive {
		return nil
	}
	out := &snapshot.ListenerTLS{Mode: string(mode)}
	refused := "the listener refuses every connection"
	if mode == v1alpha1.ListenerTLSModePermissive {
		refused = "the listener refuses TLS connections and serves plaintext only"
	}
	switch {
	case cert.File != nil:
		out.CertificateChain, out.PrivateKey = cert.File.CertificateChain, cert.File.PrivateKey
	default:
		src := certSource(cert.SDS != nil, cert.ACM != nil)
		out.Unavailable = fmt.Sprintf("a certificate from %s cannot be loaded by this proxy", src)
		c.problem(id, field+".certificate."+src, "%s; %s", out.Unavailable, refused)
	}
	if validation != nil {
		v, why, src := c.validation(validation)
		out.Validation = v
		if why != "" && out.Unavailable == "" {
			out.Unavailable = why
		}
		if why != "" {
			c.problem(id, field+".validation.trust."+src, "%s; %s", why, refused)
		}
	}
	return out
}

// certSource names the source of a certificate that is not a file.
func certSource(sds, acm bool) string {
	switch {
	case sds:
		return "sds"
	case acm:
		return "acm"
	}
	return "file"
}

// validation compiles a validation context; why (with the source it names) is set when
// its trust cannot be read here.
func (c *compiler) validation(v *v1alpha1.TLSValidationContext) (out *snapshot.TLSValidation, why, src string) {
	out = &snapshot.TLSValidation{}
	if s := v.SubjectAlternativeNames; s != nil && len(s.Match.Exact) > 0 {
		out.SubjectAlternativeNames = slices.Clone(s.Match.Exact)
	}
	if f := v.Trust.File; f != nil {
		out.TrustChain = f.CertificateChain
		return out, "", "file"
	}
	src = certSource(v.Trust.SDS != nil, v.Trust.ACM != nil)
	return out, fmt.Sprintf("trusted authorities from %s cannot be loaded by this proxy", src), src
}

// nodeListenerValidation puts a virtual node listener's validation (file or sds trust)
// in the shape a gateway's has.
func nodeListenerValidation(v *v1alpha1.ListenerTLSValidationContext) *v1alpha1.TLSValidationContext {
	if v == nil {
		return nil
	}
	return &v1alpha1.TLSValidationContext{
		Trust:                   v1alpha1.TLSValidationContextTrust{File: v.Trust.File, SDS: v.Trust.SDS},
		SubjectAlternativeNames: v.SubjectAlternativeNames,
	}
}

// clientPolicy is the client TLS policy for calls to one virtual service, and the field
// it was declared at.
type clientPolicy struct {
	tls   *v1alpha1.ClientPolicyTLS
	field string
}

func defaultsPolicy(d *v1alpha1.BackendDefaults) clientPolicy {
	if d == nil || d.ClientPolicy == nil || d.ClientPolicy.TLS == nil {
		return clientPolicy{}
	}
	return clientPolicy{tls: d.ClientPolicy.TLS, field: "spec.backendDefaults.clientPolicy.tls"}
}

// nodePolicies are a virtual node's client policies by virtual service key: a backend's
// own, where it sets one, else the node's backendDefaults (the returned default).
func nodePolicies(vn *v1alpha1.VirtualNode, backendIndex map[string]int) (map[string]clientPolicy, clientPolicy) {
	out := map[string]clientPolicy{}
	for k, i := range backendIndex {
		if cp := vn.Spec.Backends[i].VirtualService.ClientPolicy; cp != nil && cp.TLS != nil {
			out[k] = clientPolicy{tls: cp.TLS, field: fmt.Sprintf("spec.backends[%d].virtualService.clientPolicy.tls", i)}
		}
	}
	return out, defaultsPolicy(vn.Spec.BackendDefaults)
}

// applyClientTLS sets the TLS of every cluster that the compiled virtual services reach,
// from the policy of the service it is reached through (policies, else def). A policy
// with ports applies to a cluster only when the cluster's port is one of them; one with
// enforce false applies to none. A cluster reached through several services takes the
// first (by name) policy that applies; a different one found later is reported.
func (c *compiler) applyClientTLS(id string, policies map[string]clientPolicy, def clientPolicy) {
	for name, cl := range c.clusters {
		if cl.TLS != nil { // kept from the previous snapshot, under the policy of then
			cl.TLS = nil
			c.clusters[name] = cl
		}
	}
	from := map[string]clientPolicy{}
	for _, k := range sortedKeys(c.services) {
		vh := c.services[k]
		if vh == nil {
			continue
		}
		p, ok := policies[k]
		if !ok {
			p = def
		}
		if p.tls == nil || (p.tls.Enforce != nil && !*p.tls.Enforce) {
			continue
		}
		for _, name := range routeClusters(vh) {
			cl, have := c.clusters[name]
			if !have || !policyCoversPort(p.tls, cl.Port) || c.supervised(name) {
				continue
			}
			if first, done := from[name]; done {
				if !reflect.DeepEqual(first.tls, p.tls) {
					c.problem(id, p.field, "cluster %s is also reached with the policy at %s, which differs; that one is used", name, first.field)
				}
				continue
			}
			from[name] = p
			cl.TLS = c.clientTLS(id, p, sni(&cl, vh))
			c.clusters[name] = cl
		}
	}
}

// routeClusters are the clusters a virtual host's routes send to or mirror to.
func routeClusters(vh *snapshot.VirtualHost) []string {
	var out []string
	for _, r := range vh.Routes {
		for _, t := range r.Targets {
			out = append(out, t.Cluster)
		}
		if r.Mirror != nil {
			out = append(out, r.Mirror.Cluster)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func policyCoversPort(p *v1alpha1.ClientPolicyTLS, port int) bool {
	if len(p.Ports) == 0 {
		return true
	}
	for _, q := range p.Ports {
		if int(q) == port {
			return true
		}
	}
	return false
}

// sni is the server name a cluster is called by: its DNS name when it has one, else
// the App Mesh name of the virtual service it is reached through.
func sni(cl *snapshot.Cluster, vh *snapshot.VirtualHost) string {
	if cl.DNS != nil && cl.DNS.Hostname != "" {
		return cl.DNS.Hostname
	}
	if len(vh.Domains) > 0 {
		return vh.Domains[0]
	}
	return ""
}

// clientTLS compiles one client policy.
func (c *compiler) clientTLS(id string, p clientPolicy, serverName string) *snapshot.ClientTLS {
	const refused = "requests to the backend are refused rather than sent unencrypted"
	v, why, src := c.validation(&p.tls.Validation)
	out := &snapshot.ClientTLS{Validation: *v, SNI: serverName}
	if why != "" {
		out.Unavailable = why
		c.once(id, p.field+".validation.trust."+src, "%s; %s", why, refused)
	}
	if cert := p.tls.Certificate; cert != nil {
		if cert.File != nil {
			out.CertificateChain, out.PrivateKey = cert.File.CertificateChain, cert.File.PrivateKey
		} else {
			why := "a client certificate from sds cannot be loaded by this proxy"
			if out.Unavailable == "" {
				out.Unavailable = why
			}
			c.once(id, p.field+".certificate.sds", "%s; %s", why, refused)
		}
	}
	return out
}

// TLSProblems are the problems of the TLS that a VirtualNode or VirtualGateway declares
// and this mesh cannot serve (sds and acm sources), worded as the compiler reports them,
// for the object's status; other objects have none. Client policies are checked as
// declared, whether or not a backend they cover exists yet.
func TLSProblems(o v1alpha1.Object) []Problem {
	c := newCompiler(nil, nil, Options{})
	var policies []clientPolicy
	var kind string
	switch x := o.(type) {
	case *v1alpha1.VirtualNode:
		kind = "VirtualNode"
		for i := range x.Spec.Listeners {
			nodeListenerTLS(c, x, i)
		}
		for i, b := range x.Spec.Backends {
			if cp := b.VirtualService.ClientPolicy; cp != nil && cp.TLS != nil {
				policies = append(policies, clientPolicy{tls: cp.TLS, field: fmt.Sprintf("spec.backends[%d].virtualService.clientPolicy.tls", i)})
			}
		}
		policies = append(policies, defaultsPolicy(x.Spec.BackendDefaults))
	case *v1alpha1.VirtualGateway:
		kind = "VirtualGateway"
		for i := range x.Spec.Listeners {
			gatewayListenerTLS(c, x, i)
		}
		policies = append(policies, defaultsPolicy(x.Spec.BackendDefaults))
	default:
		return nil
	}
	id := objectID(kind, o.GetNamespace(), o.GetName())
	for _, p := range policies {
		if p.tls != nil && (p.tls.Enforce == nil || *p.tls.Enforce) {
			c.clientTLS(id, p, "")
		}
	}
	return sortProblems(c.problems)
}

// supervised reports whether the node behind cluster is run by the standalone
// supervisor (its podSelector matches Workloads). Its endpoints are then the workload
// instances themselves, plain processes on this host's loopback rather than proxies that
// terminate TLS, so a client policy is not applied to them: that hop never leaves the
// machine, and TLS towards a plaintext program would only fail. (The node's listener TLS
// is likewise not in that path: see supervisedListenerTLS.)
func (c *compiler) supervised(cluster string) bool {
	vn := c.ix.nodes[cluster]
	if vn == nil {
		return false
	}
	_, matched := c.workloadEndpoints(vn, objectID("VirtualNode", vn.Namespace, vn.Name))
	return matched
}

// supervisedListenerTLS reports, once, that the TLS of a supervised node's listener is
// not between its callers and its instances.
func (c *compiler) supervisedListenerTLS(vn *v1alpha1.VirtualNode, i int) {
	if c.opts.Sidecar {
		return
	}
	if _, matched := c.workloadEndpoints(vn, objectID("VirtualNode", vn.Namespace, vn.Name)); !matched {
		return
	}
	c.once(objectID("VirtualNode", vn.Namespace, vn.Name), fmt.Sprintf("spec.listeners[%d].tls", i),
		"not applied between callers and the node's workload instances: in this single-machine topology they are reached directly on loopback (mesh TLS applies between sidecar proxies: canarymesh proxy, Kubernetes)")
}
