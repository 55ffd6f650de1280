package snapshot

import (
	"errors"
	"fmt"
	"net"
	"regexp"
)

// ErrInconsistent is wrapped by every error of Consistent.
var ErrInconsistent = errors.New("inconsistent snapshot")

// Consistent checks that the snapshot can run as it is: names are unique where they are
// looked up (listeners, clusters, virtual hosts and their domains within a listener,
// routes within a virtual host); every route target and local cluster names a cluster of
// the snapshot, every gateway route a virtual host of its listener; weights are 0 to
// 100; every regular expression compiles (RE2); every endpoint address is host:port.
// It reports every problem found, joined, each wrapping ErrInconsistent. Both the
// compiler (before it hands a snapshot out) and the proxy (before it swaps one in) call it.
func (s *Snapshot) Consistent() error {
	if s == nil {
		return fmt.Errorf("%w: no snapshot", ErrInconsistent)
	}
	c := &checker{}
	clusters := map[string]bool{}
	for _, cl := range s.Clusters {
		if clusters[cl.Name] {
			c.add("cluster %q is defined twice", cl.Name)
		}
		clusters[cl.Name] = true
		for _, e := range cl.Endpoints {
			if _, _, err := net.SplitHostPort(e.Address); err != nil {
				c.add("cluster %q: endpoint %q is not host:port", cl.Name, e.Address)
			}
		}
		if t := cl.TLS; t != nil && t.Unavailable == "" {
			c.tlsFiles("cluster "+cl.Name, t.CertificateChain, t.PrivateKey, false)
			c.trust("cluster "+cl.Name, &t.Validation)
		}
	}
	listeners := map[string]bool{}
	for i := range s.Listeners {
		l := &s.Listeners[i]
		if listeners[l.Name] {
			c.add("listener %q is defined twice", l.Name)
		}
		listeners[l.Name] = true
		c.listener(l, clusters)
	}
	return errors.Join(c.errs...)
}

type checker struct{ errs []error }

func (c *checker) add(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{ErrInconsistent}, args...)...))
}

func (c *checker) listener(l *Listener, clusters map[string]bool) {
	if l.LocalCluster != "" && !clusters[l.LocalCluster] {
		c.add("listener %q: local cluster %q is not in the snapshot", l.Name, l.LocalCluster)
	}
	if l.Kind == Ingress && l.LocalCluster == "" {
		c.add("listener %q: an ingress listener needs a local cluster", l.Name)
	}
	if t := l.TLS; t != nil {
		if t.Mode != TLSStrict && t.Mode != TLSPermissive {
			c.add("listener %q: TLS mode %q is not %s or %s", l.Name, t.Mode, TLSStrict, TLSPermissive)
		}
		if t.Unavailable == "" {
			c.tlsFiles("listener "+l.Name, t.CertificateChain, t.PrivateKey, true)
			if t.Validation != nil {
				c.trust("listener "+l.Name, t.Validation)
			}
		}
	}
	hosts := map[string]bool{}
	domains := map[string]string{}
	for _, vh := range l.VirtualHosts {
		if hosts[vh.Name] {
			c.add("listener %q: virtual host %q is defined twice", l.Name, vh.Name)
		}
		hosts[vh.Name] = true
		for _, d := range vh.Domains {
			if other, dup := domains[d]; dup {
				c.add("listener %q: domain %q is served by both %q and %q", l.Name, d, other, vh.Name)
			}
			domains[d] = vh.Name
		}
	}
	for _, vh := range l.VirtualHosts {
		routes := map[string]bool{}
		for i := range vh.Routes {
			r := &vh.Routes[i]
			if routes[r.Name] {
				c.add("%s: route %q is defined twice", hostAt{l.Name, vh.Name}, r.Name)
			}
			routes[r.Name] = true
			c.route(routeAt{hostAt{l.Name, vh.Name}, r.Name}, r, clusters, hosts)
		}
	}
}

// tlsFiles checks that a certificate and its key come together (and are there when
// required).
func (c *checker) tlsFiles(at, chain, key string, required bool) {
	if (chain == "") != (key == "") || (required && chain == "") {
		c.add("%s: TLS needs both a certificate chain and a private key", at)
	}
}

func (c *checker) trust(at string, v *TLSValidation) {
	if v.TrustChain == "" {
		c.add("%s: TLS validation names no trusted chain", at)
	}
}

// hostAt and routeAt say where a problem is; they are formatted only when there is one,
// since the proxy checks every snapshot it is pushed and the compiler every one it makes.
type hostAt struct{ listener, host string }

func (a hostAt) String() string {
	return fmt.Sprintf("listener %q virtual host %q", a.listener, a.host)
}

type routeAt struct {
	hostAt
	route string
}

func (a routeAt) String() string { return fmt.Sprintf("%s route %q", a.hostAt, a.route) }

func (c *checker) route(at routeAt, r *Route, clusters, hosts map[string]bool) {
	switch {
	case r.VirtualService != "" && !hosts[r.VirtualService]:
		c.add("%s: virtual service %q has no virtual host in the listener", at, r.VirtualService)
	case r.VirtualService == "" && len(r.Targets) == 0:
		c.add("%s: no targets", at)
	}
	for _, t := range r.Targets {
		if !clusters[t.Cluster] {
			c.add("%s: target cluster %q is not in the snapshot", at, t.Cluster)
		}
		if t.Weight < 0 || t.Weight > 100 {
			c.add("%s: target %q has weight %d, not 0 to 100", at, t.Cluster, t.Weight)
		}
	}
	if mi := r.Mirror; mi != nil {
		if !clusters[mi.Cluster] {
			c.add("%s: mirror cluster %q is not in the snapshot", at, mi.Cluster)
		}
		if mi.Percent < 1 || mi.Percent > 100 {
			c.add("%s: mirror percent %d is not 1 to 100", at, mi.Percent)
		}
	}
	m := &r.Match
	if m.Path != nil {
		c.regex(at, "path", "", m.Path.Regex)
	}
	if m.Hostname != nil {
		c.regex(at, "hostname", "", m.Hostname.Regex)
	}
	for _, h := range m.Headers {
		if h.Regex != nil {
			c.regex(at, "header", h.Name, *h.Regex)
		}
	}
	for _, h := range m.Metadata {
		if h.Regex != nil {
			c.regex(at, "metadata", h.Name, *h.Regex)
		}
	}
}

// regex checks a regular expression of a route's match: its path or hostname, or the
// header or metadata entry named name.
func (c *checker) regex(at routeAt, what, name, re string) {
	if re == "" {
		return
	}
	if _, err := regexp.Compile(re); err != nil {
		if name != "" {
			what = fmt.Sprintf("%s %q", what, name)
		}
		c.add("%s %s: %q is not a valid regular expression (RE2): %v", at, what, re, err)
	}
}
