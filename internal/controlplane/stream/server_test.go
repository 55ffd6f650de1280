package stream

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

func TestPushApplyAck(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	var mu sync.Mutex
	var seen []ProxyStatus
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp.Watch(ctx, func(st ProxyStatus) {
		mu.Lock()
		seen = append(seen, st)
		mu.Unlock()
	})
	cp.SetSnapshot(testNode, testSnapshot(testNode, 1))

	p := startProxy(t, cp.addr, ClientOptions{ProxyVersion: "v0.1.0"})
	eventually(t, "the proxy acks version 1", func() bool {
		st, ok := cp.proxyOn(testNode)
		return ok && st.AckedVersion == 1
	})
	st, _ := cp.proxyOn(testNode)
	if !st.Connected || st.SentVersion != 1 || st.Address == "" || st.ProxyVersion != "v0.1.0" || st.ID == "" {
		t.Errorf("status after the first push = %+v", st)
	}
	if !p.client.Connected() || p.client.LastError() != nil || p.client.Version() != 1 {
		t.Errorf("client: connected=%v lastError=%v version=%d", p.client.Connected(), p.client.LastError(), p.client.Version())
	}

	cp.SetSnapshot(testNode, testSnapshot(testNode, 2))
	eventually(t, "the proxy acks version 2", func() bool {
		st, _ := cp.proxyOn(testNode)
		return st.AckedVersion == 2
	})
	if got := p.appliedVersions(); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("applied %v, want [1 2]", got)
	}
	eventually(t, "a watcher sees the ack of version 2", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) > 0 && seen[len(seen)-1].AckedVersion == 2 && seen[len(seen)-1].ID == st.ID
	})
}

func TestNackKeepsRunningVersion(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.SetSnapshot(testNode, testSnapshot(testNode, 1))
	p := startProxy(t, cp.addr, ClientOptions{}, func(p *testProxy) {
		p.reject = func(s *snapshot.Snapshot) error {
			if s.Version == 2 {
				return errors.New(`route demo/podinfo/canary: bad regex "([": missing closing )`)
			}
			return nil
		}
	})
	eventually(t, "version 1 acked", func() bool { st, _ := cp.proxyOn(testNode); return st.AckedVersion == 1 })

	cp.SetSnapshot(testNode, testSnapshot(testNode, 2))
	eventually(t, "version 2 rejected", func() bool { st, _ := cp.proxyOn(testNode); return st.NackVersion == 2 })
	st, _ := cp.proxyOn(testNode)
	if st.AckedVersion != 1 || st.SentVersion != 2 || !strings.Contains(st.LastNack, "bad regex") {
		t.Errorf("status after the nack = %+v", st)
	}
	if p.version() != 1 || p.client.Version() != 1 {
		t.Errorf("the proxy runs %d (client says %d), want the old version 1", p.version(), p.client.Version())
	}

	cp.SetSnapshot(testNode, testSnapshot(testNode, 3))
	eventually(t, "version 3 acked", func() bool { st, _ := cp.proxyOn(testNode); return st.AckedVersion == 3 })
	if st, _ := cp.proxyOn(testNode); st.LastNack != "" || st.NackVersion != 0 {
		t.Errorf("an ack did not clear the nack: %+v", st)
	}
}

func TestSlowProxyGetsOnlyTheNewest(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	gate := make(chan struct{})
	entered := make(chan uint64, 16)
	p := startProxy(t, cp.addr, ClientOptions{}, func(p *testProxy) { p.gate, p.entered = gate, entered })

	cp.SetSnapshot(testNode, testSnapshot(testNode, 1))
	select {
	case v := <-entered:
		if v != 1 {
			t.Fatalf("first push is version %d, want 1", v)
		}
	case <-time.After(waitLimit):
		t.Fatal("the proxy never got version 1")
	}
	// The proxy is busy applying version 1; these must neither block nor queue up.
	for v := uint64(2); v <= 4; v++ {
		cp.SetSnapshot(testNode, testSnapshot(testNode, v))
	}
	close(gate)
	eventually(t, "version 4 acked", func() bool { st, _ := cp.proxyOn(testNode); return st.AckedVersion == 4 })
	if got := p.appliedVersions(); !slices.Equal(got, []uint64{1, 4}) {
		t.Errorf("applied %v, want [1 4]: superseded versions are skipped", got)
	}
}

func TestBadTokenIsUnauthenticated(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.SetSnapshot(testNode, testSnapshot(testNode, 1))
	p := startProxy(t, cp.addr, ClientOptions{Token: "wrong"})
	eventually(t, "the stream is refused", func() bool {
		return status.Code(p.client.LastError()) == codes.Unauthenticated
	})
	if p.client.Connected() || len(p.appliedVersions()) != 0 || len(cp.Proxies()) != 0 {
		t.Errorf("refused proxy: connected=%v applied=%v proxies=%v",
			p.client.Connected(), p.appliedVersions(), cp.Proxies())
	}
}

func TestEmptyAuthAdmitsNone(t *testing.T) {
	if NewServer(nil, slog.New(slog.DiscardHandler)).auth("") {
		t.Error("a server without an auth function admitted a stream")
	}
	if TokenAuth("")("") {
		t.Error("an empty token admitted an empty token")
	}
	if !TokenAuth(testToken)(testToken) || TokenAuth(testToken)(testToken+"x") {
		t.Error("TokenAuth does not compare exactly")
	}
}

func TestProxyWaitsForItsNodeAndRemoveNode(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	first := startProxy(t, cp.addr, ClientOptions{})
	eventually(t, "the first proxy connects", first.client.Connected)
	if st, _ := cp.proxyOn(testNode); st.SentVersion != 0 || len(first.appliedVersions()) != 0 {
		t.Fatalf("a node without a snapshot got a push: %+v", st)
	}
	cp.SetSnapshot(testNode, testSnapshot(testNode, 1))
	eventually(t, "the waiting proxy runs version 1", func() bool { return first.version() == 1 })

	cp.RemoveNode(testNode)
	if cp.Snapshot(testNode) != nil {
		t.Fatal("the snapshot survived RemoveNode")
	}
	second := startProxy(t, cp.addr, ClientOptions{})
	eventually(t, "a second proxy connects", second.client.Connected)
	if !first.client.Connected() || first.version() != 1 || len(second.appliedVersions()) != 0 {
		t.Errorf("after RemoveNode: first connected=%v runs %d; second applied %v",
			first.client.Connected(), first.version(), second.appliedVersions())
	}
	cp.SetSnapshot(testNode, testSnapshot(testNode, 2))
	eventually(t, "both proxies run version 2", func() bool { return first.version() == 2 && second.version() == 2 })
}

func TestDisconnectedProxyShownThenForgotten(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.SetSnapshot(testNode, testSnapshot(testNode, 1))
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Dial(ctx, cp.addr, ClientOptions{Node: testNode, Token: testToken, Backoff: quickBackoff})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, func(*snapshot.Snapshot) error { return nil }) }()
	eventually(t, "version 1 acked", func() bool { st, _ := cp.proxyOn(testNode); return st.AckedVersion == 1 })

	cancel()
	if err := waitRun(done); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the proxy shows as disconnected", func() bool {
		st, ok := cp.proxyOn(testNode)
		return ok && !st.Connected
	})
	if st, _ := cp.proxyOn(testNode); st.AckedVersion != 1 || st.LastSeen.IsZero() {
		t.Errorf("a disconnected proxy lost its history: %+v", st)
	}
	cp.skew.Store(int64(DefaultRetention + time.Minute))
	if got := cp.Proxies(); len(got) != 0 {
		t.Errorf("after the retention period Proxies() = %+v, want none", got)
	}
}

func TestDisconnectedProxiesAreBounded(t *testing.T) {
	s := NewServer(TokenAuth(testToken), slog.New(slog.DiscardHandler))
	base := time.Now()
	for i := range maxDisconnected + 10 {
		c := &conn{seq: uint64(i), id: connID(uint64(i)), node: testNode}
		c.status = ProxyStatus{ID: c.id, Node: testNode, LastSeen: base.Add(time.Duration(i) * time.Millisecond)}
		s.conns[c] = struct{}{}
	}
	got := s.Proxies()
	if len(got) != maxDisconnected || got[0].ID != connID(10) {
		t.Errorf("kept %d disconnected proxies starting with %s, want the newest %d", len(got), got[0].ID, maxDisconnected)
	}
}

func TestCloseEndsStreamsForGracefulStop(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	p := startProxy(t, cp.addr, ClientOptions{})
	eventually(t, "the proxy connects", p.client.Connected)
	cp.Close()
	stopped := make(chan struct{})
	go func() { cp.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(waitLimit):
		t.Fatal("GracefulStop did not finish after Close")
	}
	eventually(t, "the proxy notices", func() bool { return !p.client.Connected() })
}

func TestFirstMessageMustBeHello(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	conn, err := grpc.NewClient(cp.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(codecName)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for name, first := range map[string]*ProxyMessage{
		"ack":             {Ack: &Ack{Version: 1}},
		"hello sans node": {Hello: &Hello{}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken)
		st, err := conn.NewStream(ctx, &serviceDesc.Streams[0], StreamMethod)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SendMsg(first); err != nil {
			t.Fatal(err)
		}
		if err := st.RecvMsg(&Push{}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s first: got %v, want InvalidArgument", name, err)
		}
		cancel()
	}
}

func TestSnapshotForAnotherNodeIsRejected(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	p := startProxy(t, cp.addr, ClientOptions{})
	cp.SetSnapshot(testNode, testSnapshot("VirtualNode/demo/other", 1))
	eventually(t, "the snapshot is rejected", func() bool { st, _ := cp.proxyOn(testNode); return st.NackVersion == 1 })
	if st, _ := cp.proxyOn(testNode); !strings.Contains(st.LastNack, "VirtualNode/demo/other") || p.version() != 0 {
		t.Errorf("status %+v, proxy runs %d", st, p.version())
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{}.withDefaults()
	for failures, want := range []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000} {
		want *= time.Millisecond
		for range 20 {
			got := b.delay(failures)
			if lo, hi := time.Duration(float64(want)*0.8), time.Duration(float64(want)*1.2); got < lo || got > hi {
				t.Fatalf("delay(%d) = %v, want within [%v, %v]", failures, got, lo, hi)
			}
		}
	}
	if got := (Backoff{Min: time.Second, Max: time.Millisecond}).withDefaults(); got.Max != time.Second {
		t.Errorf("a Max below Min was kept: %+v", got)
	}
	if got := b.delay(1 << 20); got > 12*time.Second || got < 8*time.Second {
		t.Errorf("delay after many failures = %v, want about %v", got, b.Max)
	}
}
