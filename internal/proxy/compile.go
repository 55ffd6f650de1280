package proxy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// App Mesh's defaults where a snapshot leaves a timeout unset.
const (
	defaultPerRequest = 15 * time.Second
	defaultIdle       = 300 * time.Second
)

// config is one compiled snapshot. It is never modified once published; requests read it
// through each listener's atomic pointer.
type config struct {
	snap      *snapshot.Snapshot
	listeners map[string]*listenerConfig
	// uses are the upstreams this snapshot needs, each with the settings it applies.
	uses map[upstreamKey]*clusterUse
	// targets are every route target, linked to their upstream and series when applied.
	targets []*target
}

// upstreamKey identifies an upstream's runtime state across snapshots: a virtual node
// reached from outside ("egress", by cluster Name and port) or a node's own application
// behind one of its listeners ("ingress", by listener name).
type upstreamKey struct {
	direction string
	name      string
	port      int
}

// clusterUse is how one snapshot uses one upstream.
type clusterUse struct {
	key      upstreamKey
	cluster  *snapshot.Cluster
	protocol string
	statName string
	pool     *snapshot.ConnectionPool
	health   *snapshot.HealthCheck
	idle     time.Duration // how long an idle upstream connection is kept
	// passthrough upstreams have no endpoints: each request goes to its own Host.
	passthrough bool
}

type listenerConfig struct {
	spec  snapshot.Listener
	hosts *hostTable // egress and gateway
	local *route     // ingress: every request goes to the local application
	tcp   *route     // tcp egress/gateway: the first route
	// passthrough, on an egress listener with AllowAll, sends requests for hosts no
	// virtual host serves to the host itself.
	passthrough *route
	logFmt      *logFormat
	stats       *listenerStats // linked when applied
	logSink     *logWriter     // linked when applied
}

// vhost is a compiled snapshot.VirtualHost.
type vhost struct {
	name     string
	domains  []string
	routes   []*route
	internal bool // reached only through a gateway route, never by Host
}

// route is a compiled snapshot.Route.
type route struct {
	name           string
	virtualService string // for metrics: the virtual host's Name
	protocol       string
	match          matcher
	targets        *weighted
	retry          retryPolicy
	timeout        time.Duration // per request, until the response head
	idle           time.Duration // longest silence while a response or tunnel streams
	rewrite        *snapshot.Rewrite
	prefix         string // the matched prefix, for the gateway's prefix rewrite
	handoff        *vhost // gateway routes: the virtual service's host
	handoffName    string
	mirror         *mirrorTarget // copies of a share of the requests (mirror.go)
}

// compile validates a snapshot and builds everything the request path needs: matchers
// with their regular expressions, host tables and weighted schedules. It touches no
// runtime state, so a snapshot that fails here changes nothing.
func compile(s *snapshot.Snapshot) (*config, error) {
	c := &config{snap: s, listeners: map[string]*listenerConfig{}, uses: map[upstreamKey]*clusterUse{}}
	clusters, err := indexClusters(s)
	if err != nil {
		return nil, err
	}
	hosts := map[string]*vhost{}
	for i := range s.Listeners {
		l := &s.Listeners[i]
		where := fmt.Sprintf("listeners[%d](%s)", i, l.Name)
		if l.Name == "" {
			return nil, fmt.Errorf("listeners[%d].name: empty", i)
		}
		if c.listeners[l.Name] != nil {
			return nil, fmt.Errorf("%s.name: duplicate listener %q", where, l.Name)
		}
		lc, err := compileListener(c, s, l, clusters, hosts)
		if err != nil {
			return nil, fmt.Errorf("%s.%w", where, err)
		}
		c.listeners[l.Name] = lc
	}
	if err := linkHandoffs(c, hosts); err != nil {
		return nil, err
	}
	return c, nil
}

type clusterIndex map[string][]*snapshot.Cluster

func indexClusters(s *snapshot.Snapshot) (clusterIndex, error) {
	idx := clusterIndex{}
	for i := range s.Clusters {
		cl := &s.Clusters[i]
		if cl.Name == "" {
			return nil, fmt.Errorf("clusters[%d].name: empty", i)
		}
		if err := checkProtocol(cl.Protocol); err != nil {
			return nil, fmt.Errorf("clusters[%d](%s).protocol: %w", i, cl.Name, err)
		}
		if cl.HealthCheck != nil {
			if err := checkProtocol(cl.HealthCheck.Protocol); err != nil {
				return nil, fmt.Errorf("clusters[%d](%s).healthCheck.protocol: %w", i, cl.Name, err)
			}
		}
		for _, other := range idx[cl.Name] {
			if other.Port == cl.Port {
				return nil, fmt.Errorf("clusters[%d](%s): duplicate cluster for port %d", i, cl.Name, cl.Port)
			}
		}
		idx[cl.Name] = append(idx[cl.Name], cl)
	}
	return idx, nil
}

// find resolves a target: by port when given (or when the node has several listeners,
// its first), as WeightedCluster.Port says.
func (idx clusterIndex) find(name string, port int) *snapshot.Cluster {
	list := idx[name]
	if len(list) == 0 {
		return nil
	}
	if port == 0 {
		return list[0]
	}
	for _, cl := range list {
		if cl.Port == port {
			return cl
		}
	}
	return nil
}

func checkProtocol(p string) error {
	switch p {
	case "", "http", "http2", "grpc", "tcp":
		return nil
	}
	return fmt.Errorf("%q is not one of http, http2, grpc, tcp", p)
}

func compileListener(c *config, s *snapshot.Snapshot, l *snapshot.Listener, clusters clusterIndex, hosts map[string]*vhost) (*listenerConfig, error) {
	if err := checkProtocol(l.Protocol); err != nil {
		return nil, fmt.Errorf("protocol: %w", err)
	}
	if l.HealthCheck != nil {
		if err := checkProtocol(l.HealthCheck.Protocol); err != nil {
			return nil, fmt.Errorf("healthCheck.protocol: %w", err)
		}
	}
	lc := &listenerConfig{spec: *l}
	if l.AccessLog != nil {
		f, err := compileLogFormat(l.AccessLog)
		if err != nil {
			return nil, fmt.Errorf("accessLog: %w", err)
		}
		lc.logFmt = f
	}
	switch l.Kind {
	case snapshot.Ingress:
		rt, err := ingressRoute(c, s, l, clusters)
		if err != nil {
			return nil, err
		}
		lc.local = rt
		return lc, nil
	case snapshot.Egress, snapshot.Gateway:
		t, err := compileHosts(c, s, l, clusters, hosts)
		if err != nil {
			return nil, err
		}
		lc.hosts = t
		if l.Protocol == "tcp" {
			lc.tcp = firstRoute(t)
		}
		if l.AllowAll && l.Kind == snapshot.Egress {
			lc.passthrough = passthroughRoute(c, s, l)
		}
		return lc, nil
	}
	return nil, fmt.Errorf("kind: %q is not one of ingress, egress, gateway", l.Kind)
}

func firstRoute(t *hostTable) *route {
	for _, vh := range t.list {
		if len(vh.routes) > 0 {
			return vh.routes[0]
		}
	}
	return nil
}

// ingressRoute is the single route of an ingress listener: to the local application,
// with the listener's timeouts and connection pool.
func ingressRoute(c *config, s *snapshot.Snapshot, l *snapshot.Listener, clusters clusterIndex) (*route, error) {
	cl := clusters.find(l.LocalCluster, 0)
	if cl == nil {
		return nil, fmt.Errorf("localCluster: %q is not a cluster of this snapshot", l.LocalCluster)
	}
	proto := l.Protocol
	if proto == "" {
		proto = cl.Protocol
	}
	mesh := meshOf(s, cl)
	key := upstreamKey{direction: "ingress", name: l.Name, port: l.Port}
	use := &clusterUse{key: key, cluster: cl, protocol: proto, pool: l.ConnectionPool, health: l.HealthCheck,
		statName: envoyClusterName("ingress", mesh, nodeOf(cl.Name), proto, l.Port)}
	if use.pool == nil {
		use.pool = cl.ConnectionPool
	}
	if use.health == nil {
		use.health = cl.HealthCheck
	}
	use.idle = idleOf(l.Timeout, cl.Timeout)
	c.uses[key] = use
	rt := &route{name: l.Name, protocol: proto, timeout: defaultPerRequest, idle: defaultIdle}
	if l.Timeout != nil {
		rt.timeout = orDefault(l.Timeout.PerRequest, defaultPerRequest)
		rt.idle = orDefault(l.Timeout.Idle, defaultIdle)
	}
	t := &target{cluster: cl.Name, weight: 1, key: key,
		statsKey: routeKey{mesh: mesh, route: l.Name, node: nodeOf(cl.Name)}}
	c.targets = append(c.targets, t)
	rt.targets = newWeighted([]*target{t})
	return rt, nil
}

func meshOf(s *snapshot.Snapshot, cl *snapshot.Cluster) string {
	if cl.Mesh != "" {
		return cl.Mesh
	}
	return s.Mesh
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// idleOf is how long idle upstream connections are kept: the first idle timeout set.
func idleOf(ts ...*snapshot.Timeouts) time.Duration {
	for _, t := range ts {
		if t != nil && t.Idle > 0 {
			return t.Idle
		}
	}
	return 90 * time.Second
}

// egressUse registers the egress use of a cluster by a route target.
func egressUse(c *config, s *snapshot.Snapshot, cl *snapshot.Cluster) upstreamKey {
	key := upstreamKey{direction: "egress", name: cl.Name, port: cl.Port}
	if c.uses[key] == nil {
		proto := cl.Protocol
		if proto == "" {
			proto = "http"
		}
		c.uses[key] = &clusterUse{key: key, cluster: cl, protocol: proto, pool: cl.ConnectionPool,
			health: cl.HealthCheck, idle: idleOf(cl.Timeout),
			statName: envoyClusterName("egress", meshOf(s, cl), nodeOf(cl.Name), proto, cl.Port)}
	}
	return key
}

func compileHosts(c *config, s *snapshot.Snapshot, l *snapshot.Listener, clusters clusterIndex, hosts map[string]*vhost) (*hostTable, error) {
	t := &hostTable{exact: map[string]*vhost{}, byName: map[string]*vhost{}}
	for i := range l.VirtualHosts {
		v := &l.VirtualHosts[i]
		where := fmt.Sprintf("virtualHosts[%d](%s)", i, v.Name)
		vh := &vhost{name: v.Name, domains: v.Domains, internal: v.Internal}
		for j := range v.Routes {
			rt, err := compileRoute(c, s, l, v, &v.Routes[j], clusters)
			if err != nil {
				return nil, fmt.Errorf("%s.routes[%d](%s).%w", where, j, v.Routes[j].Name, err)
			}
			vh.routes = append(vh.routes, rt)
		}
		if _, dup := hosts[v.Name]; !dup && v.Name != "" {
			hosts[v.Name] = vh
		}
		if _, dup := t.byName[v.Name]; !dup {
			t.byName[v.Name] = vh
		}
		t.list = append(t.list, vh)
		if vh.internal {
			continue
		}
		if err := t.add(vh); err != nil {
			return nil, fmt.Errorf("%s.domains: %w", where, err)
		}
	}
	t.sortWildcards()
	return t, nil
}

// add registers a virtual host's domains; the first virtual host to claim a domain keeps
// it, as the snapshot lists the most specific first.
func (t *hostTable) add(vh *vhost) error {
	for _, d := range vh.domains {
		d = strings.ToLower(d)
		switch {
		case d == "":
			return fmt.Errorf("empty domain")
		case d == "*":
			if t.any == nil {
				t.any = vh
			}
		case strings.HasPrefix(d, "*"):
			t.suffixes = append(t.suffixes, wildHost{s: d[1:], vh: vh})
		case strings.HasSuffix(d, "*"):
			t.prefixes = append(t.prefixes, wildHost{s: d[:len(d)-1], vh: vh})
		case strings.Contains(d, "*"):
			return fmt.Errorf("%q: a wildcard must be the first or last character", d)
		default:
			if t.exact[d] == nil {
				t.exact[d] = vh
			}
		}
	}
	return nil
}

func (t *hostTable) sortWildcards() {
	longestFirst := func(ws []wildHost) {
		sort.SliceStable(ws, func(i, j int) bool { return len(ws[i].s) > len(ws[j].s) })
	}
	longestFirst(t.suffixes)
	longestFirst(t.prefixes)
}

func compileRoute(c *config, s *snapshot.Snapshot, l *snapshot.Listener, v *snapshot.VirtualHost, r *snapshot.Route, clusters clusterIndex) (*route, error) {
	proto := r.Protocol
	if proto == "" {
		proto = l.Protocol
	}
	if err := checkProtocol(proto); err != nil {
		return nil, fmt.Errorf("protocol: %w", err)
	}
	m, err := compileMatch(&r.Match, proto)
	if err != nil {
		return nil, err
	}
	rt := &route{name: r.Name, virtualService: v.Name, protocol: proto, match: m, rewrite: r.Rewrite,
		prefix: r.Match.Prefix, handoffName: r.VirtualService, timeout: defaultPerRequest, idle: defaultIdle}
	if r.Timeout != nil {
		rt.timeout = orDefault(r.Timeout.PerRequest, defaultPerRequest)
		rt.idle = orDefault(r.Timeout.Idle, defaultIdle)
	}
	if rt.retry, err = compileRetry(r.Retry); err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	if r.VirtualService != "" {
		return rt, nil // a gateway route: linked to the virtual service's host later
	}
	var targets []*target
	for i, wc := range r.Targets {
		cl := clusters.find(wc.Cluster, wc.Port)
		if cl == nil {
			return nil, fmt.Errorf("targets[%d]: cluster %q (port %d) is not in this snapshot", i, wc.Cluster, wc.Port)
		}
		if wc.Weight < 0 {
			return nil, fmt.Errorf("targets[%d].weight: %d is negative", i, wc.Weight)
		}
		t := &target{cluster: cl.Name, weight: wc.Weight, key: egressUse(c, s, cl),
			statsKey: routeKey{mesh: meshOf(s, cl), vs: v.Name, route: r.Name, node: nodeOf(cl.Name)}}
		if len(wc.SetCookies) > 0 {
			if proto == "tcp" {
				return nil, fmt.Errorf("targets[%d].setCookies: a tcp route has no responses to set cookies on", i)
			}
			t.setCookies, t.cookieLines = compileCookies(wc.SetCookies)
		}
		c.targets = append(c.targets, t)
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("targets: a route needs at least one target")
	}
	rt.targets = newWeighted(targets)
	if m := r.Mirror; m != nil {
		if rt.mirror, err = compileMirror(c, s, r, v, clusters, proto); err != nil {
			return nil, fmt.Errorf("mirror: %w", err)
		}
	}
	return rt, nil
}

// linkHandoffs points gateway routes at the virtual host of their virtual service: the
// (internal) one of the same listener, else one of that name on another listener.
func linkHandoffs(c *config, hosts map[string]*vhost) error {
	for name, lc := range c.listeners {
		if lc.hosts == nil {
			continue
		}
		for _, vh := range lc.hosts.list {
			for _, rt := range vh.routes {
				if rt.handoffName == "" {
					continue
				}
				rt.handoff = lc.hosts.byName[rt.handoffName]
				if rt.handoff == nil {
					rt.handoff = hosts[rt.handoffName]
				}
				if rt.handoff == nil {
					return fmt.Errorf("listener %s: route %s: virtualService %q has no virtual host in this snapshot",
						name, rt.name, rt.handoffName)
				}
				if rt.handoff.hasHandoff() {
					return fmt.Errorf("listener %s: route %s: virtual host %q is itself a gateway route set",
						name, rt.name, rt.handoffName)
				}
			}
		}
	}
	return nil
}

func (vh *vhost) hasHandoff() bool {
	for _, rt := range vh.routes {
		if rt.handoffName != "" {
			return true
		}
	}
	return false
}

// nodeOf is the virtual node a cluster stands for: "NS/NAME" for "NS/NAME" and for the
// local clusters "local:NS/NAME" and "local:NS/NAME:PORT".
func nodeOf(cluster string) string {
	n, ok := strings.CutPrefix(cluster, snapshot.LocalClusterPrefix)
	if !ok {
		return cluster
	}
	if i := strings.LastIndexByte(n, ':'); i > strings.IndexByte(n, '/') {
		n = n[:i]
	}
	return n
}

// passthroughName is the key of the upstream that reaches hosts outside the mesh.
const passthroughName = "passthrough"

// passthroughRoute is the route of an ALLOW_ALL egress listener for hosts outside the
// mesh. Its cluster has App Mesh's name for it, cds_egress_MESH_amazonaws.
func passthroughRoute(c *config, s *snapshot.Snapshot, l *snapshot.Listener) *route {
	proto := l.Protocol
	if proto == "" {
		proto = "http"
	}
	key := upstreamKey{direction: "egress", name: passthroughName, port: 0}
	stat := "cds_egress_amazonaws"
	if s.Mesh != "" {
		stat = "cds_egress_" + s.Mesh + "_amazonaws"
	}
	c.uses[key] = &clusterUse{key: key, cluster: &snapshot.Cluster{Name: passthroughName}, protocol: proto,
		statName: stat, idle: idleOf(), passthrough: true}
	t := &target{cluster: passthroughName, weight: 1, key: key,
		statsKey: routeKey{mesh: s.Mesh, route: passthroughName, node: passthroughName}}
	c.targets = append(c.targets, t)
	return &route{name: passthroughName, protocol: proto, timeout: defaultPerRequest, idle: defaultIdle,
		targets: newWeighted([]*target{t})}
}

// compileMirror resolves a route's mirror to its cluster's upstream.
func compileMirror(c *config, s *snapshot.Snapshot, r *snapshot.Route, v *snapshot.VirtualHost, clusters clusterIndex, proto string) (*mirrorTarget, error) {
	m := r.Mirror
	switch {
	case proto == "tcp":
		return nil, fmt.Errorf("a tcp route cannot mirror requests")
	case m.Percent < 1 || m.Percent > 100:
		return nil, fmt.Errorf("percent: %d is not 1 to 100", m.Percent)
	}
	cl := clusters.find(m.Cluster, m.Port)
	if cl == nil {
		return nil, fmt.Errorf("cluster %q (port %d) is not in this snapshot", m.Cluster, m.Port)
	}
	t := &target{cluster: cl.Name, key: egressUse(c, s, cl),
		statsKey: routeKey{mesh: meshOf(s, cl), vs: v.Name, route: r.Name, node: nodeOf(cl.Name)}}
	c.targets = append(c.targets, t)
	return &mirrorTarget{t: t, percent: uint64(m.Percent)}, nil
}

// compileCookies checks Set-Cookie values and renders them as header lines for the
// fast path, which appends them to a response head without allocating.
func compileCookies(values []string) ([]string, []byte) {
	var lines []byte
	out := make([]string, 0, len(values))
	for _, v := range values {
		if strings.ContainsAny(v, "\r\n") {
			continue // a header line break would split the response head
		}
		out = append(out, v)
		lines = append(append(append(lines, "Set-Cookie: "...), v...), "\r\n"...)
	}
	return out, lines
}
