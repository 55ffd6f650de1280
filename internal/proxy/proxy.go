package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// Options configure a Proxy. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Bind gives the address a listener binds; the default is 127.0.0.1:<Port>. An
	// address with port 0 binds an ephemeral port (see Addr). A listener whose bind
	// address is unchanged keeps its socket and connections across snapshots.
	Bind func(l snapshot.Listener) string
	// TLS, when it returns a config for a listener, serves that listener over TLS with
	// ALPN (h2 and http/1.1). A listener whose snapshot carries TLS serves that instead.
	TLS func(l snapshot.Listener) *tls.Config
	// Resolver resolves DNS clusters; net.DefaultResolver by default.
	Resolver *net.Resolver
	// DNSRefresh is how often DNS clusters are re-resolved; 5s by default.
	DNSRefresh time.Duration
	// Now is the clock of windows and outlier detection; time.Now by default.
	Now func() time.Time
	// NoFastPath serves plain HTTP/1.1 with net/http only, for benchmarks that compare
	// the two front ends (see fast.go).
	NoFastPath bool
}

// ErrClosed is returned by Update after Close.
var ErrClosed = errors.New("proxy: closed")

// Proxy is the data plane of one mesh node. See the package documentation.
type Proxy struct {
	log        *slog.Logger
	bind       func(l snapshot.Listener) string
	tlsFor     func(l snapshot.Listener) *tls.Config
	now        func() time.Time
	lookup     lookupFunc
	dnsRefresh time.Duration
	stats      *registry
	logs       *accessLogs
	ids        requestIDs
	noFast     bool
	realClock  bool // now is time.Now: the fast path reuses its readings
	version    atomic.Uint64
	// mirrorSlots bounds the mirrored copies in flight (mirror.go).
	mirrorSlots chan struct{}

	mu        sync.Mutex // serialises Update and Close
	closed    bool
	listeners map[string]*listenerRT
	upstreams map[upstreamKey]*upstream
}

// New returns a proxy with no listeners; it serves once Update gives it a snapshot.
func New(opts Options) *Proxy {
	p := &Proxy{log: opts.Logger, bind: opts.Bind, tlsFor: opts.TLS, now: opts.Now,
		dnsRefresh: opts.DNSRefresh, stats: newRegistry(), noFast: opts.NoFastPath,
		listeners: map[string]*listenerRT{}, upstreams: map[upstreamKey]*upstream{},
		mirrorSlots: make(chan struct{}, maxMirrorInFlight)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.bind == nil {
		p.bind = func(l snapshot.Listener) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Port)) }
	}
	if p.tlsFor == nil {
		p.tlsFor = func(snapshot.Listener) *tls.Config { return nil }
	}
	if p.now == nil {
		p.now, p.realClock = time.Now, true
	}
	if p.dnsRefresh <= 0 {
		p.dnsRefresh = 5 * time.Second
	}
	r := opts.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	p.lookup = r.LookupHost
	p.logs = newAccessLogs(&p.stats.logDropped)
	p.ids.init()
	return p
}

// Update validates and compiles s, then makes it the running configuration. On error
// nothing changes: the previous snapshot keeps serving and the error says why (the
// caller NACKs with it). On success the swap is atomic per listener; requests in flight
// finish on the snapshot they started with, and listeners that stay keep their sockets
// and connections.
func (p *Proxy) Update(s *snapshot.Snapshot) error {
	if s == nil {
		return errors.New("proxy: nil snapshot")
	}
	c, err := compile(s)
	if err != nil {
		return fmt.Errorf("snapshot %d for %s: %w", s.Version, s.Node, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	sinks, err := p.openLogs(c)
	if err != nil {
		return fmt.Errorf("snapshot %d for %s: %w", s.Version, s.Node, err)
	}
	opened, err := p.openListeners(c)
	if err != nil {
		return fmt.Errorf("snapshot %d for %s: %w", s.Version, s.Node, err)
	}
	p.commit(c, opened, sinks)
	p.version.Store(s.Version)
	p.log.Info("snapshot applied", "node", s.Node, "version", s.Version,
		"listeners", len(s.Listeners), "clusters", len(s.Clusters))
	return nil
}

func (p *Proxy) openLogs(c *config) (map[string]*logWriter, error) {
	sinks := map[string]*logWriter{}
	for name, lc := range c.listeners {
		if lc.logFmt == nil {
			continue
		}
		w, err := p.logs.get(lc.spec.AccessLog.Path)
		if err != nil {
			return nil, fmt.Errorf("listener %s: accessLog: %w", name, err)
		}
		sinks[name] = w
	}
	return sinks, nil
}

// openListeners binds the sockets c needs that are not open yet. On error it closes what
// it opened, leaving the running listeners as they were.
func (p *Proxy) openListeners(c *config) (map[string]*listenerRT, error) {
	opened := map[string]*listenerRT{}
	for name, lc := range c.listeners {
		addr := p.bind(lc.spec)
		tlsConf, mode := p.listenerTLS(lc.spec)
		if old := p.listeners[name]; old != nil {
			if old.compatible(lc.spec, addr, tlsConf, mode) {
				continue
			}
			if old.bind == addr && !ephemeral(addr) {
				old.shutdown() // the same fixed port cannot be bound twice
				delete(p.listeners, name)
			}
		}
		l, err := p.listen(lc.spec, addr, tlsConf, mode)
		if err != nil {
			for _, o := range opened {
				o.shutdown()
			}
			return nil, fmt.Errorf("listener %s: %w", name, err)
		}
		opened[name] = l
	}
	return opened, nil
}

func ephemeral(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && (port == "0" || port == "")
}

// commit makes c the running configuration. It cannot fail.
func (p *Proxy) commit(c *config, opened map[string]*listenerRT, sinks map[string]*logWriter) {
	ups := map[upstreamKey]*upstream{}
	for key, use := range c.uses {
		u := p.upstreams[key]
		if u == nil || !u.compatible(use) {
			u = newUpstream(p, use)
		}
		u.apply(use)
		ups[key] = u
	}
	for _, t := range c.targets {
		t.up = ups[t.key]
		t.stats = p.stats.route(t.statsKey)
	}
	for name, lc := range c.listeners {
		lc.stats = p.stats.listener(name)
		lc.logSink = sinks[name]
		if l := opened[name]; l != nil {
			if old := p.listeners[name]; old != nil {
				old.shutdown()
			}
			l.setLimiter(lc.spec)
			l.cfg.Store(lc)
			l.serve()
			p.listeners[name] = l
			continue
		}
		tlsConf, _ := p.listenerTLS(lc.spec) // read the certificate files again
		p.listeners[name].setTLS(tlsConf)
		p.listeners[name].setLimiter(lc.spec)
		p.listeners[name].cfg.Store(lc)
	}
	for name, l := range p.listeners {
		if c.listeners[name] == nil {
			l.shutdown()
			delete(p.listeners, name)
		}
	}
	for key, u := range p.upstreams {
		if ups[key] != u {
			u.retire(time.Second)
		}
	}
	p.upstreams = ups
}

// Version is the version of the running snapshot (0 before the first).
func (p *Proxy) Version() uint64 { return p.version.Load() }

// Addr is where a listener is bound, or nil if there is no such listener.
func (p *Proxy) Addr(listenerName string) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.listeners[listenerName]; l != nil {
		return l.ln.Addr()
	}
	return nil
}

// Window is the traffic of one virtual node (a cluster Name, "NS/NAME") over the last d,
// at most 10 minutes, as seen by this proxy in every direction it reaches the node.
func (p *Proxy) Window(cluster string, d time.Duration) WindowStats {
	w := p.stats.lookupWindow(cluster)
	if w == nil {
		return WindowStats{NoData: true}
	}
	return w.stats(p.now(), d)
}

// Close stops every listener (requests in flight get a short grace period), every
// health check and DNS refresh, and flushes access logs.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ls := p.listeners
	p.listeners = map[string]*listenerRT{}
	ups := p.upstreams
	p.upstreams = map[upstreamKey]*upstream{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.close(2 * time.Second)
		}()
	}
	wg.Wait()
	for _, u := range ups {
		u.retire(0)
	}
	p.logs.close()
	return nil
}
