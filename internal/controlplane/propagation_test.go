package controlplane

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// Given a real push stream and a proxy that applies a snapshot only when let through,
// WaitApplied waits for the compile, then for the proxy's ACK of its node's latest
// version, and names what is behind when its context ends first; a NACK is reported.
func TestPropagationWaitsForTheProxiesACK(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	apply := func(objs ...v1alpha1.Object) {
		t.Helper()
		if _, err := c.Apply(ctx, objs, false); err != nil {
			t.Fatal(err)
		}
	}
	node := func(name string) *v1alpha1.VirtualNode {
		n := &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"}, Spec: v1alpha1.VirtualNodeSpec{
			Listeners:        []v1alpha1.Listener{{PortMapping: v1alpha1.PortMapping{Port: 8080, Protocol: v1alpha1.PortProtocolHTTP}}},
			ServiceDiscovery: &v1alpha1.ServiceDiscovery{DNS: &v1alpha1.DNSServiceDiscovery{Hostname: name + ".shop"}},
			MeshRef:          &v1alpha1.MeshReference{Name: "m"}}}
		n.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("VirtualNode"))
		return n
	}
	apply(mesh("m", nil), node("a"), node("b"), vs("shop", "web", "web-router", "m"), vr("shop", "web-router", "m", "a"))

	push := stream.NewServer(stream.TokenAuth("tok"), log)
	gs := grpc.NewServer(stream.ServerOptions()...)
	push.Register(gs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(func() { push.Close(); gs.Stop() })
	ms := &MeshSync{Store: st, Sink: push, Log: log}
	if _, err := ms.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	gate := make(chan struct{}, 8) // one token lets one snapshot be applied
	var reject atomic.Bool
	cl, err := stream.Dial(ctx, ln.Addr().String(), stream.ClientOptions{Node: snapshot.EgressNode, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	go func() {
		_ = cl.Run(ctx, func(*snapshot.Snapshot) error {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
			if reject.Load() {
				return errors.New("listener egress: port taken")
			}
			return nil
		})
	}()
	p := &Propagation{Sync: ms, Proxies: push.Proxies, Poll: 5 * time.Millisecond}
	wait := func(d time.Duration) error {
		wctx, wcancel := context.WithTimeout(ctx, d)
		defer wcancel()
		return p.WaitApplied(wctx)
	}
	wantBehind := func(what string) {
		t.Helper()
		err := wait(300 * time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), what) {
			t.Fatalf("WaitApplied = %v, want an error naming %q", err, what)
		}
	}

	gate <- struct{}{}
	if err := wait(10 * time.Second); err != nil {
		t.Fatalf("first snapshot: %v", err)
	}

	apply(vr("shop", "web-router", "m", "a", "b"))
	wantBehind("mesh compiled at revision") // nothing compiled the change yet
	if _, err := ms.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	wantBehind("runs version") // pushed, not applied yet
	gate <- struct{}{}
	if err := wait(10 * time.Second); err != nil {
		t.Fatalf("after the ACK: %v", err)
	}

	reject.Store(true)
	apply(vr("shop", "web-router", "m", "b"))
	if _, err := ms.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	gate <- struct{}{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := wait(100 * time.Millisecond)
		if err != nil && strings.Contains(err.Error(), "rejected: listener egress: port taken") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a NACK is not reported: %v", err)
		}
	}
}
