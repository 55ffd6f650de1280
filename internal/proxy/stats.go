package proxy

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The metric primitives below are updated on every request, so they are plain atomics in
// structures allocated when a snapshot is applied; the request path never looks anything
// up in a map and never allocates to count.

// codeSlots bounds the distinct status codes kept per series; a cluster that answers
// with more than this many codes has the rest counted in "other".
const codeSlots = 24

// codeCounts counts requests by status code without a map: codes claim slots with a CAS
// the first time they are seen, after which counting is one atomic add.
type codeCounts struct {
	slots [codeSlots]struct {
		code atomic.Uint32
		n    atomic.Uint64
	}
	other atomic.Uint64
}

func (c *codeCounts) add(code int) {
	k := uint32(code)
	for i := range c.slots {
		s := &c.slots[i]
		cur := s.code.Load()
		if cur == 0 {
			if s.code.CompareAndSwap(0, k) {
				s.n.Add(1)
				return
			}
			cur = s.code.Load()
		}
		if cur == k {
			s.n.Add(1)
			return
		}
	}
	c.other.Add(1)
}

// each calls f for every code seen, in slot order.
func (c *codeCounts) each(f func(code int, n uint64)) {
	for i := range c.slots {
		s := &c.slots[i]
		if k := s.code.Load(); k != 0 {
			f(int(k), s.n.Load())
		}
	}
}

// envoyBucketsMS are Envoy's default histogram buckets, in milliseconds.
var envoyBucketsMS = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
	10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// histogram is a fixed-bucket histogram of durations. Bounds are kept in microseconds so
// an observation is integer comparisons and atomic adds.
type histogram struct {
	boundsUS []int64 // upper bounds, inclusive
	counts   []atomic.Uint64
	sumUS    atomic.Uint64
	count    atomic.Uint64
}

func newHistogram(boundsMS []float64) *histogram {
	h := &histogram{boundsUS: make([]int64, len(boundsMS)), counts: make([]atomic.Uint64, len(boundsMS)+1)}
	for i, b := range boundsMS {
		h.boundsUS[i] = int64(b * 1000)
	}
	return h
}

func (h *histogram) observe(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	i := 0
	for i < len(h.boundsUS) && us > h.boundsUS[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumUS.Add(uint64(us))
	h.count.Add(1)
}

// clusterStats are one Envoy cluster's counters, named as Envoy names them. They outlive
// snapshots: a cluster that keeps its name keeps counting.
type clusterStats struct {
	name string // envoy_cluster_name

	rq              codeCounts
	rqTotal         atomic.Uint64
	rqTime          *histogram
	rqRetry         atomic.Uint64
	rqRetrySuccess  atomic.Uint64
	rqRetryOverflow atomic.Uint64
	rqTimeout       atomic.Uint64
	rqPerTryTimeout atomic.Uint64
	rqActive        atomic.Int64
	rqPendingActive atomic.Int64
	pendingOverflow atomic.Uint64
	noneHealthy     atomic.Uint64
	mirrorSent      atomic.Uint64 // copies sent to this cluster by a route's mirror
	mirrorDropped   atomic.Uint64 // copies not sent: too many in flight, or a body too large

	cxActive      atomic.Int64
	cxTotal       atomic.Uint64
	cxConnectFail atomic.Uint64
	cxOverflow    atomic.Uint64

	ejectionsActive   atomic.Int64
	ejectionsTotal    atomic.Uint64
	ejectionsOverflow atomic.Uint64

	hcAttempt atomic.Uint64
	hcSuccess atomic.Uint64
	hcFailure atomic.Uint64

	membershipTotal   atomic.Int64
	membershipHealthy atomic.Int64
}

// routeStats are our route-level series: one per (route, target virtual node).
type routeStats struct {
	mesh, virtualService, route, virtualNode string

	codes    codeCounts
	duration *histogram
}

// listenerStats are Envoy's HTTP connection manager series for one listener.
type listenerStats struct {
	prefix       string // envoy_http_conn_manager_prefix
	rq           atomic.Uint64
	rqXX         [6]atomic.Uint64 // by class 1..5; 0 unused
	cxActive     atomic.Int64
	cxTotal      atomic.Uint64
	clientClosed atomic.Uint64 // requests whose client went away first (logged as 499)
	pending      atomic.Int64  // requests waiting for the listener's connection pool
	overflow     atomic.Uint64 // requests refused by the listener's connection pool
	handedOver   atomic.Uint64 // connections the HTTP/1.1 fast path gave to net/http
}

func (l *listenerStats) response(code int) {
	l.rq.Add(1)
	if c := code / 100; c >= 1 && c <= 5 {
		l.rqXX[c].Add(1)
	}
}

type routeKey struct{ mesh, vs, route, node string }

// registry holds every series ever created by this proxy, so counters survive snapshot
// swaps. It is locked only while a snapshot is applied and while metrics are scraped.
type registry struct {
	mu         sync.Mutex
	clusters   map[string]*clusterStats
	routes     map[routeKey]*routeStats
	listeners  map[string]*listenerStats
	windows    map[string]*window
	logDropped atomic.Uint64
}

func newRegistry() *registry {
	return &registry{
		clusters:  map[string]*clusterStats{},
		routes:    map[routeKey]*routeStats{},
		listeners: map[string]*listenerStats{},
		windows:   map[string]*window{},
	}
}

func (r *registry) cluster(name string) *clusterStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.clusters[name]
	if s == nil {
		s = &clusterStats{name: name, rqTime: newHistogram(envoyBucketsMS)}
		r.clusters[name] = s
	}
	return s
}

func (r *registry) route(k routeKey) *routeStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.routes[k]
	if s == nil {
		s = &routeStats{mesh: k.mesh, virtualService: k.vs, route: k.route, virtualNode: k.node,
			duration: newHistogram(envoyBucketsMS)}
		r.routes[k] = s
	}
	return s
}

func (r *registry) listener(name string) *listenerStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.listeners[name]
	if s == nil {
		s = &listenerStats{prefix: name}
		r.listeners[name] = s
	}
	return s
}

// window returns the windowed view of a virtual node (by its cluster Name), shared by
// every direction that reaches it.
func (r *registry) window(cluster string) *window {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.windows[cluster]
	if w == nil {
		w = &window{}
		r.windows[cluster] = w
	}
	return w
}

func (r *registry) lookupWindow(cluster string) *window {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.windows[cluster]
}

// envoyClusterName is the stat name App Mesh's Envoy gives a cluster:
// cds_{ingress|egress}_{mesh}_{virtual node's App Mesh name}_{protocol}_{port}, where a
// Kubernetes-created virtual node's App Mesh name is NAME_NAMESPACE. Our clusters are
// named "NS/NAME", so "demo/podinfo" in mesh "global" on http 9898 reached from outside is
// cds_egress_global_podinfo_demo_http_9898.
func envoyClusterName(direction, mesh, cluster, protocol string, port int) string {
	node := cluster
	if ns, name, ok := strings.Cut(cluster, "/"); ok {
		node = name + "_" + ns
	}
	if protocol == "" {
		protocol = "http"
	}
	var b strings.Builder
	b.WriteString("cds_")
	b.WriteString(direction)
	b.WriteByte('_')
	if mesh != "" {
		b.WriteString(mesh)
		b.WriteByte('_')
	}
	b.WriteString(node)
	b.WriteByte('_')
	b.WriteString(protocol)
	b.WriteByte('_')
	b.WriteString(strconv.Itoa(port))
	return b.String()
}
