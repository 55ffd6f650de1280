package stream

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// TestManyProxies connects many proxies of one node and checks that a new version reaches
// and is acknowledged by every one of them.
func TestManyProxies(t *testing.T) {
	const proxies = 200
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.SetSnapshot(testNode, testSnapshot(testNode, 1))
	fleet := make([]*testProxy, proxies)
	for i := range fleet {
		fleet[i] = startProxy(t, cp.addr, ClientOptions{ProxyVersion: fmt.Sprint(i)})
	}
	eventually(t, "every proxy acks version 1", func() bool { return allAcked(cp.Proxies(), proxies, 1) })

	cp.SetSnapshot(testNode, testSnapshot(testNode, 2))
	eventually(t, "every proxy acks version 2", func() bool { return allAcked(cp.Proxies(), proxies, 2) })
	for i, p := range fleet {
		if got := p.appliedVersions(); !slices.Equal(got, []uint64{1, 2}) {
			t.Fatalf("proxy %d applied %v, want [1 2]", i, got)
		}
	}
}

func allAcked(sts []ProxyStatus, want int, version uint64) bool {
	n := 0
	for _, st := range sts {
		if st.Connected && st.AckedVersion == version {
			n++
		}
	}
	return n == want
}

// BenchmarkFanout1000 measures how long a new snapshot takes to reach 1,000 connected
// proxies of one node. All proxies run in this process over loopback, so their decoding
// shares the machine with the control plane: "sidecar" pushes an 11 KB snapshot, whose
// decoding by 1,000 proxies dominates; "minimal" a 0.3 KB one, which shows the cost of
// the stream itself. Metrics per proxy and push: p99-apply-ms from SetSnapshot until the
// proxy's apply is called, p99-ack-ms until the control plane has recorded its ack; and
// per push, p50- and p99-all-acked-ms until the control plane has every proxy's ack.
// The whole path of a weight change (store, compile, push) with the proxies in other
// processes is measured by bench/fanout.
func BenchmarkFanout1000(b *testing.B) {
	b.Run("sidecar", func(b *testing.B) { benchFanout(b, 1000, benchSnapshot) })
	b.Run("minimal", func(b *testing.B) { benchFanout(b, 1000, testSnapshot) })
}

// fanoutProbe records, for the version being pushed, when each proxy applied it and when
// the control plane saw each ack.
type fanoutProbe struct {
	mu       sync.Mutex
	start    time.Time
	version  uint64
	applied  []time.Duration
	acked    []time.Duration
	ackedBy  map[string]bool
	proxies  int
	allAcked chan struct{}
}

func (f *fanoutProbe) apply(s *snapshot.Snapshot) error {
	f.mu.Lock()
	if s.Version == f.version {
		f.applied = append(f.applied, time.Since(f.start))
	}
	f.mu.Unlock()
	return nil
}

func (f *fanoutProbe) watch(st ProxyStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.version == 0 || st.AckedVersion != f.version || f.ackedBy[st.ID] {
		return
	}
	f.ackedBy[st.ID] = true
	f.acked = append(f.acked, time.Since(f.start))
	if len(f.ackedBy) == f.proxies {
		f.allAcked <- struct{}{}
	}
}

func benchFanout(b *testing.B, proxies int, build func(node string, version uint64) *snapshot.Snapshot) {
	cp := startControlPlane(b, "127.0.0.1:0")
	cp.SetSnapshot(testNode, build(testNode, 1))
	f := &fanoutProbe{ackedBy: map[string]bool{}, proxies: proxies, allAcked: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cp.Watch(ctx, f.watch)
	for range proxies {
		startProxy(b, cp.addr, ClientOptions{}, func(p *testProxy) { p.reject = f.apply })
	}
	eventually(b, "every proxy acks version 1", func() bool { return allAcked(cp.Proxies(), proxies, 1) })

	var rounds []time.Duration
	b.ResetTimer()
	for i := range b.N {
		v := uint64(i + 2)
		f.mu.Lock()
		f.start, f.version = time.Now(), v
		clear(f.ackedBy)
		f.mu.Unlock()
		cp.SetSnapshot(testNode, build(testNode, v))
		select {
		case <-f.allAcked:
		case <-time.After(time.Minute):
			b.Fatalf("push %d: not every proxy acked within a minute", v)
		}
		f.mu.Lock()
		rounds = append(rounds, time.Since(f.start))
		f.mu.Unlock()
	}
	b.StopTimer()
	b.ReportMetric(percentileMS(f.applied, 0.99), "p99-apply-ms")
	b.ReportMetric(percentileMS(f.acked, 0.99), "p99-ack-ms")
	b.ReportMetric(percentileMS(rounds, 0.5), "p50-all-acked-ms")
	b.ReportMetric(percentileMS(rounds, 0.99), "p99-all-acked-ms")
}

func percentileMS(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(q*float64(len(s)))) - 1 // nearest rank
	return float64(s[max(rank, 0)].Microseconds()) / 1000
}

// benchSnapshot is a sidecar's snapshot of middling size: an ingress listener, an egress
// listener with ten virtual services split 90/10 between primary and canary, and their
// clusters with three endpoints each.
func benchSnapshot(node string, version uint64) *snapshot.Snapshot {
	s := &snapshot.Snapshot{Version: version, Node: node, Mesh: "bench"}
	s.Listeners = append(s.Listeners, snapshot.Listener{
		Name: "ingress-8080", Kind: snapshot.Ingress, Protocol: "http", Port: 8080, LocalCluster: "bench/frontend",
	})
	egress := snapshot.Listener{Name: "egress", Kind: snapshot.Egress, Protocol: "http", Port: 15001}
	for i := range 10 {
		svc := fmt.Sprintf("svc%d", i)
		egress.VirtualHosts = append(egress.VirtualHosts, snapshot.VirtualHost{
			Name:    "bench/" + svc,
			Domains: []string{svc + ".bench", svc + ".bench.svc", svc + ".bench.svc.cluster.local"},
			Routes: []snapshot.Route{{
				Name: "bench/" + svc + "/primary", Protocol: "http", Match: snapshot.Match{Prefix: "/"},
				Targets: []snapshot.WeightedCluster{
					{Cluster: "bench/" + svc + "-primary", Weight: 90},
					{Cluster: "bench/" + svc + "-canary", Weight: 10},
				},
				Retry: &snapshot.RetryPolicy{MaxRetries: 2, PerTryTimeout: time.Second, HTTPEvents: []string{"server-error"}},
			}},
		})
		for _, variant := range []string{"-canary", "-primary"} {
			c := snapshot.Cluster{Name: "bench/" + svc + variant, Mesh: "bench", Protocol: "http", Port: 8080}
			for j := range 3 {
				c.Endpoints = append(c.Endpoints, snapshot.Endpoint{
					Address: fmt.Sprintf("10.0.%d.%d:8080", i, j), Ready: true,
					Labels: map[string]string{"app": svc, "pod-template-hash": "abc123"},
				})
			}
			s.Clusters = append(s.Clusters, c)
		}
	}
	s.Listeners = append(s.Listeners, egress)
	return s
}
