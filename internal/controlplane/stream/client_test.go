package stream

import (
	"context"
	"slices"
	"testing"
)

func TestReconnectKeepsSnapshotAndGetsNewest(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.SetSnapshot(testNode, testSnapshot(testNode, 1))
	p := startProxy(t, cp.addr, ClientOptions{})
	eventually(t, "the proxy runs version 1", func() bool { return p.version() == 1 })

	cp.stop()
	eventually(t, "the proxy notices the control plane is gone", func() bool { return !p.client.Connected() })
	eventually(t, "the failure is reported", func() bool { return p.client.LastError() != nil })
	if p.version() != 1 {
		t.Fatalf("without a control plane the proxy runs %d, want its last snapshot 1", p.version())
	}

	next := startControlPlane(t, cp.addr, func(s *Server) { s.SetSnapshot(testNode, testSnapshot(testNode, 2)) })
	eventually(t, "the proxy gets the newest snapshot from the new control plane", func() bool { return p.version() == 2 })
	eventually(t, "the new control plane sees the ack", func() bool { st, _ := next.proxyOn(testNode); return st.AckedVersion == 2 })
	if !p.client.Connected() || p.client.LastError() != nil {
		t.Errorf("after reconnecting: connected=%v lastError=%v", p.client.Connected(), p.client.LastError())
	}
	if got := p.appliedVersions(); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("applied %v, want [1 2]", got)
	}
}

func TestLastVersionAvoidsResend(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.SetSnapshot(testNode, testSnapshot(testNode, 1))
	p := startProxy(t, cp.addr, ClientOptions{})
	eventually(t, "the proxy runs version 1", func() bool { return p.version() == 1 })
	cp.stop()
	eventually(t, "the proxy notices the control plane is gone", func() bool { return !p.client.Connected() })

	// The restarted control plane compiles the same version the proxy already runs.
	next := startControlPlane(t, cp.addr, func(s *Server) { s.SetSnapshot(testNode, testSnapshot(testNode, 1)) })
	eventually(t, "the proxy reconnects", func() bool { st, ok := next.proxyOn(testNode); return ok && st.Connected })
	if st, _ := next.proxyOn(testNode); st.SentVersion != 0 || st.AckedVersion != 1 {
		t.Errorf("status after a reconnect with lastVersion 1 = %+v, want nothing sent and version 1 running", st)
	}
	// Pushes on a stream arrive in order, so a resent version 1 would be applied first.
	next.SetSnapshot(testNode, testSnapshot(testNode, 2))
	eventually(t, "the proxy runs version 2", func() bool { return p.version() == 2 })
	if got := p.appliedVersions(); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("applied %v, want [1 2]: version 1 was sent again", got)
	}
}

func TestDialNeedsNode(t *testing.T) {
	if _, err := Dial(context.Background(), "127.0.0.1:1", ClientOptions{}); err == nil {
		t.Error("Dial accepted options without a node")
	}
}
