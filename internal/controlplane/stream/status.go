package stream

import (
	"context"
	"sort"
	"strconv"
	"time"
)

// ProxyStatus is what the control plane knows about one proxy connection.
type ProxyStatus struct {
	// ID is unique per connection: a proxy that reconnects gets a new one.
	ID   string `json:"id"`
	Node string `json:"node"`
	// Address is the proxy's end of the connection, host:port.
	Address      string `json:"address"`
	ProxyVersion string `json:"proxyVersion,omitempty"`
	Connected    bool   `json:"connected"`
	// ConnectedSince is when the stream opened.
	ConnectedSince time.Time `json:"connectedSince"`
	// LastSeen is when the proxy last said something (hello, ack, nack), or when its
	// stream ended.
	LastSeen time.Time `json:"lastSeen"`
	// SentVersion is the last snapshot version pushed on this connection (0: none yet).
	SentVersion uint64 `json:"sentVersion,omitempty"`
	// AckedVersion is the version the proxy runs: the last it acknowledged, or the one
	// it said it runs when it connected.
	AckedVersion uint64 `json:"ackedVersion,omitempty"`
	// LastNack is the reason the proxy gave for rejecting NackVersion; both are cleared
	// when it acknowledges a version.
	LastNack    string `json:"lastNack,omitempty"`
	NackVersion uint64 `json:"nackVersion,omitempty"`
}

func connID(seq uint64) string { return "proxy-" + strconv.FormatUint(seq, 10) }

// Proxies returns the status of every connected proxy and of those that disconnected
// within the retention period (ten minutes), by node and then by connection order.
func (s *Server) Proxies() []ProxyStatus {
	s.mu.Lock()
	s.pruneLocked(s.now())
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	out := statusesLocked(conns)
	s.mu.Unlock()
	return out
}

// statusesLocked copies the statuses of conns, sorted. The caller holds Server.mu.
func statusesLocked(conns []*conn) []ProxyStatus {
	sort.Slice(conns, func(i, j int) bool {
		if conns[i].node != conns[j].node {
			return conns[i].node < conns[j].node
		}
		return conns[i].seq < conns[j].seq
	})
	out := make([]ProxyStatus, len(conns))
	for i, c := range conns {
		out[i] = c.status
	}
	return out
}

// pruneLocked forgets proxies disconnected for longer than the retention period, and the
// oldest disconnected ones beyond maxDisconnected. The caller holds s.mu.
func (s *Server) pruneLocked(now time.Time) {
	var gone []*conn
	for c := range s.conns {
		switch {
		case c.status.Connected:
		case now.Sub(c.status.LastSeen) > DefaultRetention:
			delete(s.conns, c)
		default:
			gone = append(gone, c)
		}
	}
	if len(gone) <= maxDisconnected {
		return
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].status.LastSeen.Before(gone[j].status.LastSeen) })
	for _, c := range gone[:len(gone)-maxDisconnected] {
		delete(s.conns, c)
	}
}

// watcher is one Watch registration: the connections changed since it last ran, and a
// wake-up signal that never blocks the stream that changed.
type watcher struct {
	fn    func(ProxyStatus)
	dirty map[*conn]struct{}
	wake  chan struct{}
}

// Watch calls fn with a proxy's status after it changes (connected, pushed, acked,
// nacked, disconnected) until ctx ends. Changes are coalesced: fn gets the current
// status of each proxy that changed since its previous call, never a stale one, and is
// called from one goroutine at a time, so a slow fn delays only its own notifications.
// Proxies forgotten after the retention period are not reported; list them anew with
// Proxies. Watch returns at once.
func (s *Server) Watch(ctx context.Context, fn func(ProxyStatus)) {
	w := &watcher{fn: fn, dirty: map[*conn]struct{}{}, wake: make(chan struct{}, 1)}
	s.mu.Lock()
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.watchers, w)
			s.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			s.mu.Lock()
			changed := make([]*conn, 0, len(w.dirty))
			for c := range w.dirty {
				changed = append(changed, c)
			}
			clear(w.dirty)
			batch := statusesLocked(changed)
			s.mu.Unlock()
			for _, st := range batch {
				if ctx.Err() != nil {
					return
				}
				w.fn(st)
			}
		}
	}()
}

// notifyLocked marks c changed for every watcher. The caller holds s.mu.
func (s *Server) notifyLocked(c *conn) {
	for w := range s.watchers {
		w.dirty[c] = struct{}{}
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}
