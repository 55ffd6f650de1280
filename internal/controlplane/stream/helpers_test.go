package stream

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

const (
	testToken = "s3cret"
	testNode  = "VirtualNode/demo/podinfo"
	// waitLimit bounds every wait in these tests; nothing is expected to take long.
	waitLimit = 15 * time.Second
)

var quickBackoff = Backoff{Min: 10 * time.Millisecond, Max: 200 * time.Millisecond}

// controlPlane is a Server behind a real gRPC server on loopback.
type controlPlane struct {
	*Server
	grpc *grpc.Server
	addr string
	// skew moves the server's clock forward.
	skew atomic.Int64
}

// startControlPlane serves a new Server on addr ("127.0.0.1:0" for any port).
func startControlPlane(t testing.TB, addr string, prepare ...func(*Server)) *controlPlane {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	cp := &controlPlane{Server: NewServer(TokenAuth(testToken), slog.New(slog.DiscardHandler))}
	cp.Server.now = func() time.Time { return time.Now().Add(time.Duration(cp.skew.Load())) }
	for _, p := range prepare {
		p(cp.Server)
	}
	cp.grpc = grpc.NewServer(ServerOptions()...)
	cp.Register(cp.grpc)
	cp.addr = lis.Addr().String()
	go func() { _ = cp.grpc.Serve(lis) }()
	t.Cleanup(cp.stop)
	return cp
}

// stop ends the control plane abruptly, as a crash would.
func (cp *controlPlane) stop() {
	cp.Close()
	cp.grpc.Stop()
}

// proxyOn returns the status of the newest connection of node, if any.
func (cp *controlPlane) proxyOn(node string) (ProxyStatus, bool) {
	var found ProxyStatus
	ok := false
	for _, st := range cp.Proxies() {
		if st.Node == node {
			found, ok = st, true
		}
	}
	return found, ok
}

func testSnapshot(node string, version uint64) *snapshot.Snapshot {
	return &snapshot.Snapshot{
		Version: version,
		Node:    node,
		Mesh:    "demo",
		Listeners: []snapshot.Listener{{
			Name: "ingress-9898", Kind: snapshot.Ingress, Protocol: "http", Port: 9898,
			LocalCluster: "demo/podinfo",
		}},
		Clusters: []snapshot.Cluster{{
			Name: "demo/podinfo", Protocol: "http", Port: 9898,
			Endpoints: []snapshot.Endpoint{{Address: "127.0.0.1:9898", Ready: true}},
		}},
	}
}

// testProxy stands for a proxy: it keeps the snapshot it runs, as a real one would, and
// can be told to reject snapshots or to be slow.
type testProxy struct {
	client *Client
	done   chan error

	mu      sync.Mutex
	current *snapshot.Snapshot
	applied []uint64
	reject  func(*snapshot.Snapshot) error
	gate    chan struct{} // when set, apply waits for it to close
	entered chan uint64   // when set, apply reports each version it starts on
}

func (p *testProxy) apply(s *snapshot.Snapshot) error {
	p.mu.Lock()
	gate, entered, reject := p.gate, p.entered, p.reject
	p.mu.Unlock()
	if entered != nil {
		entered <- s.Version
	}
	if gate != nil {
		<-gate
	}
	if reject != nil {
		if err := reject(s); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.current = s
	p.applied = append(p.applied, s.Version)
	return nil
}

// version is the version the proxy runs (0: none).
func (p *testProxy) version() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.current == nil {
		return 0
	}
	return p.current.Version
}

func (p *testProxy) appliedVersions() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.applied)
}

// startProxy dials addr and runs the client until the test ends.
func startProxy(t testing.TB, addr string, opts ClientOptions, setup ...func(*testProxy)) *testProxy {
	t.Helper()
	if opts.Node == "" {
		opts.Node = testNode
	}
	if opts.Token == "" {
		opts.Token = testToken
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = quickBackoff
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	p := &testProxy{client: c, done: make(chan error, 1)}
	for _, s := range setup {
		s(p)
	}
	go func() { p.done <- c.Run(ctx, p.apply) }()
	t.Cleanup(func() {
		cancel()
		p.mu.Lock()
		if p.gate != nil {
			select {
			case <-p.gate:
			default:
				close(p.gate)
			}
		}
		p.mu.Unlock()
		if err := waitRun(p.done); err != nil {
			t.Errorf("proxy run: %v", err)
		}
		_ = c.Close()
	})
	return p
}

// waitRun waits for Run to return after its context was cancelled.
func waitRun(done <-chan error) error {
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	case <-time.After(waitLimit):
		return errors.New("Run did not return after its context ended")
	}
}

// eventually polls cond until it holds, failing the test after waitLimit.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
