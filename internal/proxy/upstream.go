package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// upstream is the runtime state of one cluster as this proxy uses it: its endpoints with
// their health and ejection state, its connection pools and limits, and its counters.
// It outlives snapshots: a snapshot that keeps the cluster keeps its connections, its
// ejections and its health state.
type upstream struct {
	p        *Proxy
	key      upstreamKey
	name     string // the virtual node, "NS/NAME", for Window
	protocol string
	// passthrough upstreams send each request to its own Host (ALLOW_ALL egress).
	passthrough bool
	idle        time.Duration
	stats       *clusterStats
	window      *window
	transport   *http.Transport // nil for tcp
	dialer      net.Dialer
	tls         *clientTLS // nil: plaintext (tls.go)

	limiter atomic.Pointer[limiter]
	outlier atomic.Pointer[outlierConfig]
	set     atomic.Pointer[endpointSet]
	rr      atomic.Uint64

	ctx    context.Context // ends when the upstream is retired
	cancel context.CancelFunc

	mu        sync.Mutex // guards everything below, and rebuilding set
	endpoints map[string]*endpoint
	static    []string
	dnsAddrs  []string
	dnsSpec   *snapshot.DNSDiscovery
	dnsStop   context.CancelFunc
	health    *snapshot.HealthCheck
	ejected   int
	checker   *http.Client // for http, http2 and grpc health checks
}

// endpoint is one address of an upstream.
type endpoint struct {
	addr string
	up   *upstream

	healthy atomic.Bool // by active health checks; true when none are configured
	ejected atomic.Bool // by outlier detection

	consecutive5xx atomic.Int32

	pool connPool // the fast path's idle connections

	// Guarded by up.mu.
	timesEjected int
	lastReturn   time.Time
	ejectTimer   *time.Timer
	hcStop       context.CancelFunc
}

// endpointSet is what picking reads: rebuilt whenever membership, health or ejection
// changes, and published atomically.
type endpointSet struct {
	avail   []*endpoint // healthy and not ejected
	healthy []*endpoint // healthy: used when all are ejected, like Envoy's panic mode
}

func newUpstream(p *Proxy, use *clusterUse) *upstream {
	node := nodeOf(use.cluster.Name)
	u := &upstream{p: p, key: use.key, name: node, protocol: use.protocol, idle: use.idle,
		passthrough: use.passthrough, stats: p.stats.cluster(use.statName), window: p.stats.window(node),
		endpoints: map[string]*endpoint{}}
	u.dialer = net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if !use.passthrough {
		u.tls = newClientTLS(use.cluster.TLS, use.protocol)
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	if use.protocol != "tcp" {
		u.transport = newTransport(u.dial, use.protocol, use.idle)
	}
	u.set.Store(&endpointSet{})
	return u
}

// compatible reports whether u can serve a new use without new connection pools.
func (u *upstream) compatible(use *clusterUse) bool {
	return u.protocol == use.protocol && u.idle == use.idle && u.name == nodeOf(use.cluster.Name) &&
		u.stats.name == use.statName && u.passthrough == use.passthrough && u.sameTLS(use)
}

// sameTLS reports whether use asks for the TLS u speaks. The files are read again at
// handshakes when they change, so an unchanged spec keeps the pools.
func (u *upstream) sameTLS(use *clusterUse) bool {
	var want *snapshot.ClientTLS
	if !use.passthrough {
		want = use.cluster.TLS
	}
	if u.tls == nil || want == nil {
		return u.tls == nil && want == nil
	}
	return reflect.DeepEqual(&u.tls.spec, want)
}

func newTransport(dial func(context.Context, string, string) (net.Conn, error), proto string, idle time.Duration) *http.Transport {
	t := &http.Transport{
		DialContext:            dial,
		MaxIdleConnsPerHost:    1024,
		IdleConnTimeout:        idle,
		DisableCompression:     true, // pass encodings through untouched
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	var ps http.Protocols
	if proto == "http2" || proto == "grpc" {
		ps.SetUnencryptedHTTP2(true) // h2c with prior knowledge, as gRPC servers expect
	} else {
		ps.SetHTTP1(true)
	}
	t.Protocols = &ps
	return t
}

// dial connects to an endpoint, counting connections as Envoy's upstream_cx_* do and
// marking connect failures so that retries and replies can tell them apart.
func (u *upstream) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := u.dialer.DialContext(ctx, network, addr)
	if err != nil {
		u.stats.cxConnectFail.Add(1)
		return nil, &dialError{err: err}
	}
	u.stats.cxTotal.Add(1)
	u.stats.cxActive.Add(1)
	tc := &trackedConn{Conn: c, active: &u.stats.cxActive}
	if u.tls != nil {
		tlsConn, err := u.tls.handshake(ctx, tc, addr, u.tls.proto)
		if err != nil {
			u.stats.cxConnectFail.Add(1)
			return nil, &dialError{err: err}
		}
		return tlsConn, nil
	}
	return tc, nil
}

// trackedConn decrements the active-connection gauge once, when closed.
type trackedConn struct {
	net.Conn
	active *atomic.Int64
	closed atomic.Bool
}

func (c *trackedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.active.Add(-1)
	}
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP connection, for tunnels.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// pick chooses an endpoint by round robin over the available ones, avoiding the one a
// retry just failed on when there is another. nil means no healthy endpoint.
func (u *upstream) pick(avoid *endpoint) *endpoint {
	s := u.set.Load()
	list := s.avail
	if len(list) == 0 {
		list = s.healthy
	}
	n := uint64(len(list))
	if n == 0 {
		return nil
	}
	i := u.rr.Add(1)
	ep := list[i%n]
	if ep == avoid && n > 1 {
		ep = list[(i+1)%n]
	}
	return ep
}

// apply brings the upstream in line with a snapshot's use of it. Called with p.mu held.
func (u *upstream) apply(use *clusterUse) {
	if l := u.limiter.Load(); l == nil || !l.sameAs(use.pool) {
		// A new limiter starts empty while requests in flight release to the old one,
		// so it is only replaced when the limits change.
		u.limiter.Store(newLimiter(use.protocol, use.pool))
	}
	u.outlier.Store(compileOutlier(use.cluster.OutlierDetection))
	var static []string
	for _, e := range use.cluster.Endpoints {
		if e.Ready && e.Address != "" {
			static = append(static, e.Address)
		}
	}
	u.mu.Lock()
	u.static = static
	if !reflect.DeepEqual(u.health, use.health) {
		u.health = use.health
		if u.checker != nil {
			u.checker.CloseIdleConnections()
			u.checker = nil
		}
		for _, ep := range u.endpoints {
			u.stopHealthLocked(ep)
			ep.healthy.Store(true)
			u.startHealthLocked(ep)
		}
	}
	u.reconcileLocked()
	u.mu.Unlock()
	u.applyDNS(use)
}

// reconcileLocked makes the endpoint map match static and DNS addresses, keeping the
// state of endpoints that stay, and publishes a new set.
func (u *upstream) reconcileLocked() {
	want := map[string]bool{}
	for _, a := range u.static {
		want[a] = true
	}
	for _, a := range u.dnsAddrs {
		want[a] = true
	}
	for addr, ep := range u.endpoints {
		if !want[addr] {
			u.removeLocked(ep)
		}
	}
	for addr := range want {
		if u.endpoints[addr] == nil {
			ep := &endpoint{addr: addr, up: u}
			ep.healthy.Store(true)
			u.endpoints[addr] = ep
			u.startHealthLocked(ep)
		}
	}
	u.rebuildLocked()
}

func (u *upstream) removeLocked(ep *endpoint) {
	delete(u.endpoints, ep.addr)
	ep.pool.close()
	u.stopHealthLocked(ep)
	if ep.ejectTimer != nil {
		ep.ejectTimer.Stop()
	}
	if ep.ejected.Swap(false) {
		u.ejected--
		u.stats.ejectionsActive.Add(-1)
	}
}

// rebuildLocked publishes the endpoint set, in address order so that round robin
// interleaves endpoints the same way on every proxy.
func (u *upstream) rebuildLocked() {
	s := &endpointSet{}
	for _, ep := range u.endpoints {
		if !ep.healthy.Load() {
			continue
		}
		s.healthy = append(s.healthy, ep)
		if !ep.ejected.Load() {
			s.avail = append(s.avail, ep)
		}
	}
	byAddr := func(a, b *endpoint) int {
		if a.addr < b.addr {
			return -1
		}
		if a.addr > b.addr {
			return 1
		}
		return 0
	}
	slices.SortFunc(s.healthy, byAddr)
	slices.SortFunc(s.avail, byAddr)
	u.set.Store(s)
	u.stats.membershipTotal.Store(int64(len(u.endpoints)))
	u.stats.membershipHealthy.Store(int64(len(s.healthy)))
}

// retire stops everything the upstream runs in the background. Requests still in flight
// finish on their connections, which close when idle (after a grace period, unless
// the proxy is closing).
func (u *upstream) retire(grace time.Duration) {
	u.cancel()
	u.mu.Lock()
	for _, ep := range u.endpoints {
		u.removeLocked(ep)
	}
	if u.dnsStop != nil {
		u.dnsStop()
	}
	u.mu.Unlock()
	if u.transport != nil {
		time.AfterFunc(grace, u.transport.CloseIdleConnections)
	}
	u.mu.Lock()
	if u.checker != nil {
		u.checker.CloseIdleConnections()
	}
	u.mu.Unlock()
}

// limiter enforces a ConnectionPool: at most max requests (HTTP/2, gRPC) or connections
// (HTTP/1, TCP) in flight, with up to maxPending requests waiting for one to free up.
type limiter struct {
	spec       snapshot.ConnectionPool
	slots      chan struct{} // nil: no limit
	wait       bool          // whether requests may wait at all (HTTP/1 only)
	maxPending int64         // 0: unlimited waiting
	pending    atomic.Int64
}

var errOverflow = errors.New("overflow")

func newLimiter(proto string, pool *snapshot.ConnectionPool) *limiter {
	if pool == nil {
		return &limiter{}
	}
	l := &limiter{spec: *pool}
	n := pool.MaxRequests
	if proto == "http" || proto == "tcp" || proto == "" {
		n = pool.MaxConnections
		if pool.MaxRequests > 0 && (n == 0 || pool.MaxRequests < n) {
			n = pool.MaxRequests
		}
		l.wait = proto != "tcp"
		l.maxPending = int64(pool.MaxPendingRequests)
	} else if pool.MaxPendingRequests > 0 {
		l.wait, l.maxPending = true, int64(pool.MaxPendingRequests)
	}
	if n > 0 {
		l.slots = make(chan struct{}, n)
	}
	return l
}

func (l *limiter) sameAs(pool *snapshot.ConnectionPool) bool {
	if pool == nil {
		return l.spec == snapshot.ConnectionPool{}
	}
	return l.spec == *pool
}

// acquire takes a slot, waiting if allowed; errOverflow when the pool and its queue are
// full, ctx's error if ctx ends while waiting.
func (l *limiter) acquire(ctx context.Context, pending *atomic.Int64) error {
	if l.slots == nil {
		return nil
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if !l.wait {
		return errOverflow
	}
	if n := l.pending.Add(1); l.maxPending > 0 && n > l.maxPending {
		l.pending.Add(-1)
		return errOverflow
	}
	pending.Add(1)
	defer func() {
		l.pending.Add(-1)
		pending.Add(-1)
	}()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (l *limiter) release() {
	if l.slots != nil {
		<-l.slots
	}
}
