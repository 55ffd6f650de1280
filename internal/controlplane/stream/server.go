package stream

import (
	"crypto/subtle"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// DefaultRetention is how long a disconnected proxy stays in Proxies(), so a user can
// still see which proxy went away and what it ran.
const DefaultRetention = 10 * time.Minute

// maxDisconnected bounds how many disconnected proxies are remembered, so that proxies
// reconnecting in a loop cannot fill memory within the retention period.
const maxDisconnected = 4096

// Server is the control-plane half of the push stream. It keeps the newest snapshot of
// every node and pushes it to each connected proxy of that node. It is safe for
// concurrent use.
type Server struct {
	auth func(token string) bool
	log  *slog.Logger
	now  func() time.Time // a field so that tests can move time

	mu       sync.Mutex
	nodes    map[string]*nodeState
	conns    map[*conn]struct{} // connected, and disconnected within retention
	watchers map[*watcher]struct{}
	lastID   uint64
	closed   bool
	done     chan struct{} // closed by Close
}

// nodeState is one node's newest snapshot and the connections that serve it. It exists
// while either is present.
type nodeState struct {
	latest *encodedPush
	conns  map[*conn]struct{}
}

// conn is one proxy stream.
type conn struct {
	seq      uint64
	id, node string
	status   ProxyStatus // guarded by Server.mu
	// mailbox holds the newest snapshot not yet pushed. Only callers holding Server.mu put
	// into it, so a put after emptying it never blocks.
	mailbox chan *encodedPush
}

// offer replaces what the mailbox holds with p. The caller holds Server.mu.
func (c *conn) offer(p *encodedPush) {
	select {
	case <-c.mailbox:
	default:
	}
	c.mailbox <- p
}

// NewServer returns a push-stream server that admits a stream when auth approves its
// bearer token. A nil auth admits none. log must not be nil.
func NewServer(auth func(token string) bool, log *slog.Logger) *Server {
	if auth == nil {
		auth = func(string) bool { return false }
	}
	return &Server{
		auth:     auth,
		log:      log,
		now:      time.Now,
		nodes:    map[string]*nodeState{},
		conns:    map[*conn]struct{}{},
		watchers: map[*watcher]struct{}{},
		done:     make(chan struct{}),
	}
}

// TokenAuth returns an auth function for NewServer that admits exactly token, compared in
// constant time. An empty token admits none.
func TokenAuth(token string) func(string) bool {
	want := []byte(token)
	return func(got string) bool {
		return len(want) > 0 && subtle.ConstantTimeCompare([]byte(got), want) == 1
	}
}

// Register adds the push-stream service to a gRPC server, which should have been created
// with ServerOptions().
func (s *Server) Register(r grpc.ServiceRegistrar) {
	r.RegisterService(&serviceDesc, s)
}

// SetSnapshot makes snap the newest snapshot of node and hands it to every connected proxy
// of that node. It does not wait for any proxy: a proxy still busy with an earlier push
// gets only the newest one. snap must not be changed afterwards; the last call wins. A nil
// snap is RemoveNode.
func (s *Server) SetSnapshot(node string, snap *snapshot.Snapshot) {
	if snap == nil {
		s.RemoveNode(node)
		return
	}
	enc, err := snapshot.Encode(snap)
	if err != nil {
		// Snapshots hold plain values only, so this is a programming error; the proxies
		// keep the previous version.
		s.log.Error("snapshot not pushed: it does not encode", "node", node, "version", snap.Version, "err", err)
		return
	}
	s.SetEncodedSnapshot(node, snap, enc)
}

// SetEncodedSnapshot is SetSnapshot for a caller that has encoded snap already: enc is
// snapshot.Encode(snap), whatever snap's version. The push is made from it without
// encoding the snapshot again.
func (s *Server) SetEncodedSnapshot(node string, snap *snapshot.Snapshot, enc snapshot.Encoding) {
	if snap == nil {
		s.RemoveNode(node)
		return
	}
	p := encodePush(snap, enc)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.node(node)
	n.latest = p
	for c := range n.conns {
		c.offer(p)
	}
}

// RemoveNode forgets node's snapshot. Its connected proxies stay connected and keep
// running what they have; a proxy connecting for node waits until SetSnapshot is called.
func (s *Server) RemoveNode(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[node]
	if !ok {
		return
	}
	n.latest = nil
	for c := range n.conns {
		select {
		case <-c.mailbox:
		default:
		}
	}
	if len(n.conns) == 0 {
		delete(s.nodes, node)
	}
}

// Snapshot returns the newest snapshot of node, or nil.
func (s *Server) Snapshot(node string) *snapshot.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nodes[node]; ok && n.latest != nil {
		return n.latest.snap
	}
	return nil
}

// Close ends every stream with codes.Unavailable and refuses new ones, so that a
// grpc.Server's GracefulStop, which waits for open streams, can finish. Proxies keep
// their configuration and reconnect to whichever control plane answers next.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

// node returns node's state, creating it. The caller holds s.mu.
func (s *Server) node(node string) *nodeState {
	n, ok := s.nodes[node]
	if !ok {
		n = &nodeState{conns: map[*conn]struct{}{}}
		s.nodes[node] = n
	}
	return n
}

// attach registers a new connection for hello and queues the node's snapshot for it.
func (s *Server) attach(hello *Hello, addr string) (*conn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	now := s.now()
	s.lastID++
	c := &conn{
		seq:     s.lastID,
		id:      connID(s.lastID),
		node:    hello.Node,
		mailbox: make(chan *encodedPush, 1),
		status: ProxyStatus{
			ID:             connID(s.lastID),
			Node:           hello.Node,
			Address:        addr,
			ProxyVersion:   hello.ProxyVersion,
			Connected:      true,
			ConnectedSince: now,
			LastSeen:       now,
			AckedVersion:   hello.LastVersion,
		},
	}
	s.conns[c] = struct{}{}
	n := s.node(hello.Node)
	n.conns[c] = struct{}{}
	if n.latest != nil {
		c.offer(n.latest)
	}
	s.pruneLocked(now)
	s.notifyLocked(c)
	return c, true
}

// detach marks c disconnected; its status stays visible for the retention period.
func (s *Server) detach(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nodes[c.node]; ok {
		delete(n.conns, c)
		if len(n.conns) == 0 && n.latest == nil {
			delete(s.nodes, c.node)
		}
	}
	c.status.Connected = false
	c.status.LastSeen = s.now()
	s.notifyLocked(c)
}

// update changes c's status under the lock and tells the watchers.
func (s *Server) update(c *conn, change func(st *ProxyStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(&c.status)
	s.notifyLocked(c)
}
