// Package local runs proxies inside the control-plane process, one per mesh node, for
// standalone mode. Each one connects to the control plane through the push stream over
// loopback, exactly as a sidecar process would, so the same path — push, apply, ack or
// reject — is exercised whether a proxy runs in-process or beside an application.
//
//	MeshSync ─nodes─▶ Manager.Reconcile ─start/stop─▶ proxy.Proxy ◀─stream.Client─ control plane
package local

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
	"github.com/canarymesh/canarymesh/internal/proxy"
)

// Options configure the in-process proxies.
type Options struct {
	// Target is the push stream's address (host:port) and Token its credential.
	Target, Token string
	Log           *slog.Logger
	// EgressAddr is where the host-wide egress listener binds (default 127.0.0.1:15001).
	EgressAddr string
	// GatewayHost is the host gateway listeners bind on, at their declared ports
	// (default 127.0.0.1). Ingress and per-node egress listeners bind ephemeral
	// loopback ports: in standalone mode many nodes declare the same port.
	GatewayHost string
	// Version is reported to the control plane.
	Version string
}

// Manager starts and stops in-process proxies to match the mesh's nodes.
type Manager struct {
	opts Options
	ctx  context.Context

	mu      sync.Mutex
	running map[string]*running
}

type running struct {
	proxy  *proxy.Proxy
	client *stream.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager returns a manager whose proxies live until ctx ends.
func NewManager(ctx context.Context, opts Options) *Manager {
	if opts.EgressAddr == "" {
		opts.EgressAddr = "127.0.0.1:15001"
	}
	if opts.GatewayHost == "" {
		opts.GatewayHost = "127.0.0.1"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{opts: opts, ctx: ctx, running: map[string]*running{}}
}

// Bind is where a node's listener binds in standalone mode.
func (m *Manager) Bind(node string, l snapshot.Listener) string {
	switch {
	case node == snapshot.EgressNode && l.Kind == snapshot.Egress:
		return m.opts.EgressAddr
	case l.Kind == snapshot.Gateway:
		return net.JoinHostPort(m.opts.GatewayHost, strconv.Itoa(l.Port))
	}
	return "127.0.0.1:0"
}

// Reconcile starts a proxy for every node that has none and stops those of nodes that
// are gone.
func (m *Manager) Reconcile(nodes []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]bool{}
	for _, n := range nodes {
		want[n] = true
		if _, ok := m.running[n]; !ok && m.ctx.Err() == nil {
			m.start(n)
		}
	}
	for n, r := range m.running {
		if !want[n] {
			m.stop(n, r)
		}
	}
}

func (m *Manager) start(node string) {
	log := m.opts.Log.With("node", node)
	p := proxy.New(proxy.Options{Logger: log, Bind: func(l snapshot.Listener) string { return m.Bind(node, l) }})
	ctx, cancel := context.WithCancel(m.ctx)
	c, err := stream.Dial(ctx, m.opts.Target, stream.ClientOptions{Node: node, Token: m.opts.Token, Logger: m.opts.Log, ProxyVersion: m.opts.Version})
	if err != nil {
		cancel()
		_ = p.Close()
		log.Error("in-process proxy cannot dial the control plane", "err", err)
		return
	}
	r := &running{proxy: p, client: c, cancel: cancel, done: make(chan struct{})}
	m.running[node] = r
	go func() {
		defer close(r.done)
		_ = c.Run(ctx, func(s *snapshot.Snapshot) error {
			err := p.Update(s)
			if err == nil {
				log.Debug("snapshot applied", "version", s.Version)
			} else {
				log.Warn("snapshot rejected", "version", s.Version, "err", err)
			}
			return err
		})
	}()
	log.Info("in-process proxy started")
}

func (m *Manager) stop(node string, r *running) {
	delete(m.running, node)
	r.cancel()
	<-r.done
	_ = r.client.Close()
	_ = r.proxy.Close()
	m.opts.Log.Info("in-process proxy stopped", "node", node)
}

// Close stops every proxy.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for n, r := range m.running {
		m.stop(n, r)
	}
}

// Proxy returns the running proxy of a node, or nil.
func (m *Manager) Proxy(node string) *proxy.Proxy {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.running[node]; ok {
		return r.proxy
	}
	return nil
}

// Nodes lists the nodes with a running proxy.
func (m *Manager) Nodes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.running))
	for n := range m.running {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Window sums one cluster's traffic over the last d across every in-process proxy that
// sends to it, for the canary's built-in metrics. Success rate and P99 are taken from the
// proxy that carried the most requests (the egress or gateway in the usual topology).
func (m *Manager) Window(cluster string, d time.Duration) proxy.WindowStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	best := proxy.WindowStats{NoData: true}
	for _, r := range m.running {
		w := r.proxy.Window(cluster, d)
		if !w.NoData && w.Requests > best.Requests {
			best = w
		}
	}
	return best
}

// Handler serves each in-process proxy's metrics: /stats/prometheus for the egress
// proxy, /proxies/NODE/stats/prometheus for any node (NODE as in get proxies).
func (m *Manager) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		node := snapshot.EgressNode
		if rest, ok := strings.CutPrefix(r.URL.Path, "/proxies/"); ok {
			node, ok = strings.CutSuffix(rest, "/stats/prometheus")
			if !ok {
				http.NotFound(w, r)
				return
			}
		} else if r.URL.Path != "/stats/prometheus" {
			http.NotFound(w, r)
			return
		}
		p := m.Proxy(node)
		if p == nil {
			http.Error(w, "no in-process proxy for node "+node, http.StatusNotFound)
			return
		}
		p.Metrics().ServeHTTP(w, r)
	})
}
