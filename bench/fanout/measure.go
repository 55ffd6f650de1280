package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/canarymesh/canarymesh/bench/internal/dist"
	"github.com/canarymesh/canarymesh/bench/internal/procstat"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/store"
)

// probe follows the proxies' statuses as the control plane records them (Server.Watch,
// what `canarymesh get proxies` shows) and notes, for the version of the round, when
// each connection was sent it and when its ACK was recorded.
type probe struct {
	mu      sync.Mutex
	open    bool
	version uint64 // 0 while the round's write has not returned
	early   []seen // statuses seen before the version was known
	sent    map[string]time.Time
	acked   map[string]time.Time
	nacks   map[string]string
	want    int
	all     chan struct{} // closed once want connections acknowledged
}

type seen struct {
	st stream.ProxyStatus
	at time.Time
}

func (p *probe) watch(st stream.ProxyStatus) {
	at := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !p.open:
	case p.version == 0:
		p.early = append(p.early, seen{st, at})
	default:
		p.see(st, at)
	}
}

func (p *probe) see(st stream.ProxyStatus, at time.Time) {
	if !st.Connected {
		return
	}
	v := p.version
	if _, ok := p.sent[st.ID]; !ok && st.SentVersion >= v {
		p.sent[st.ID] = at
	}
	if st.NackVersion >= v && st.LastNack != "" {
		p.nacks[st.ID] = st.LastNack
	}
	if _, ok := p.acked[st.ID]; !ok && st.AckedVersion >= v {
		p.acked[st.ID] = at
		if len(p.acked) == p.want {
			close(p.all)
		}
	}
}

// begin opens a round for want connections.
func (p *probe) begin(want int) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open, p.version, p.early, p.want = true, 0, nil, want
	p.sent, p.acked, p.nacks = map[string]time.Time{}, map[string]time.Time{}, map[string]string{}
	p.all = make(chan struct{})
	return p.all
}

// known sets the round's version: a connection counts once it runs v or later.
func (p *probe) known(v uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.version = v
	for _, s := range p.early {
		p.see(s.st, s.at)
	}
	p.early = nil
}

// end closes the round and returns what it saw, as durations from start.
func (p *probe) end(start time.Time) (sent, acked []time.Duration, nacks map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open = false
	for _, t := range p.sent {
		sent = append(sent, t.Sub(start))
	}
	for _, t := range p.acked {
		acked = append(acked, t.Sub(start))
	}
	return sent, acked, p.nacks
}

// round is what one weight change measured.
type round struct {
	version uint64
	sent    dist.Dist // per connection: until the control plane recorded it as sent
	applied dist.Dist // per connection: until the proxy had applied it
	acked   dist.Dist // per connection: until the control plane recorded its ACK
	// serverCPU is the control plane's CPU from the write until every ACK was recorded;
	// roundCPU until the round's end (-gap after the write), with what runs after the
	// push (the status reconciler, compiles its writes cause).
	serverCPU, roundCPU time.Duration
	proxiesCPU          time.Duration // all children, the whole round
	others              time.Duration // every other process, the whole round
	wall                time.Duration // the whole round
	compiles            int64         // of the whole mesh, in the round
	nacks               int
	missing             int // connections that did not apply or ACK within the timeout
}

// scenarioResult is one scenario: proxies over nodes, and its rounds.
type scenarioResult struct {
	name          string
	nodes         int
	snapshotBytes int
	setup         time.Duration
	rounds        []round
	rssKB, hwmKB  int64
}

func runScenario(ctx context.Context, c config, h *harness, nodes int) (*scenarioResult, error) {
	res := &scenarioResult{name: scenarioName(c.proxies, nodes), nodes: nodes}
	// The memory of an earlier scenario is returned now, not while this one is measured,
	// and the peak resident set restarts from here (Linux: "5" to clear_refs).
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	say("scenario %s: storing %d client nodes and %d services", res.name, nodes, c.services)
	dir, err := os.MkdirTemp("", "canarymesh-bench-fanout-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cp, err := startControlPlane(ctx, dir, c, nodes)
	if err != nil {
		return nil, err
	}
	defer cp.stop()
	begin := time.Now()
	fl, err := startFleet(ctx, c, h, cp.addr, nodes)
	if err != nil {
		return nil, err
	}
	defer fl.stop()
	if err := waitConnected(ctx, cp, c.proxies); err != nil {
		return nil, err
	}
	res.setup = time.Since(begin)
	if snap := cp.push.Snapshot(nodeOf(0, nodes)); snap != nil {
		b, _ := json.Marshal(snap)
		res.snapshotBytes = len(b)
	}
	say("%d proxies connected and running their snapshots (%d bytes each) after %s",
		c.proxies, res.snapshotBytes, res.setup.Round(time.Millisecond))

	p := &probe{}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cp.push.Watch(wctx, p.watch)
	for r := range c.warmup + c.rounds {
		measured := r >= c.warmup
		if measured && r == c.warmup && c.profileDir != "" {
			stop, err := startProfile(c.profileDir, res.name)
			if err != nil {
				return nil, err
			}
			defer stop()
		}
		rd, err := pushOnce(ctx, c, cp, fl, p, int64(11+r%40))
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", r+1, err)
		}
		what := "warm-up"
		if measured {
			what = "round"
			res.rounds = append(res.rounds, rd)
		}
		say("%s %d/%d: version %d, ack P50 %s P99 %s max %s; applied P99 %s; sent P99 %s; control plane CPU %s to the last ack, %s in the round (%d compiles); proxies' CPU %s; others' %s%s",
			what, r+1, c.warmup+c.rounds, rd.version, msec(rd.acked.Q(0.5)), msec(rd.acked.Q(0.99)), msec(rd.acked.Max()),
			msec(rd.applied.Q(0.99)), msec(rd.sent.Q(0.99)), msec(rd.serverCPU), msec(rd.roundCPU), rd.compiles,
			msec(rd.proxiesCPU), msec(rd.others), issues(rd))
	}
	res.rssKB, res.hwmKB = procstat.Mem(0)
	return res, nil
}

// pushOnce changes the weight, waits for every ACK and then for the round's end, and
// collects the proxies' apply times.
func pushOnce(ctx context.Context, c config, cp *controlPlane, fl *fleet, p *probe, canary int64) (round, error) {
	var rd round
	kids0, err := fl.cpu()
	if err != nil {
		return rd, err
	}
	all := p.begin(c.proxies)
	compiles0 := cp.compiles.Load()
	var start time.Time
	var cpu0, machine0 time.Duration
	rv, err := setWeight(ctx, cp.store, canary, func() {
		machine0, cpu0 = procstat.MachineBusy(), selfCPU()
		start = time.Now()
	})
	if err != nil {
		return rd, err
	}
	rd.version = rv
	p.known(rv)
	timeout := time.NewTimer(c.timeout)
	defer timeout.Stop()
	select {
	case <-all:
	case <-timeout.C:
	case <-ctx.Done():
		return rd, ctx.Err()
	}
	rd.serverCPU = selfCPU() - cpu0
	if err := sleepUntil(ctx, start.Add(c.gap)); err != nil {
		return rd, err
	}
	rd.roundCPU = selfCPU() - cpu0
	rd.compiles = cp.compiles.Load() - compiles0
	rd.wall = time.Since(start)
	machine := procstat.MachineBusy() - machine0
	sent, acked, nacks := p.end(start)
	applied, kids1, err := fl.applied(rv)
	if err != nil {
		return rd, err
	}
	rd.proxiesCPU = kids1 - kids0
	rd.others = max(machine-rd.roundCPU-rd.proxiesCPU, 0)
	rd.sent, rd.acked, rd.nacks = dist.Sorted(sent), dist.Sorted(acked), len(nacks)
	var ap []time.Duration
	for _, t := range applied {
		if !t.IsZero() {
			ap = append(ap, t.Sub(start))
		}
	}
	rd.applied = dist.Sorted(ap)
	rd.missing = c.proxies - min(len(rd.acked), len(rd.applied))
	return rd, nil
}

// waitConnected waits until n proxies are connected and each runs its node's newest
// snapshot, as the canary controller's propagation check sees it.
func waitConnected(ctx context.Context, cp *controlPlane, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	last := time.Now()
	for {
		connected := 0
		for _, st := range cp.push.Proxies() {
			if st.Connected {
				connected++
			}
		}
		if connected >= n && cp.sync.Compiled() > 0 {
			break
		}
		if time.Since(last) > 5*time.Second {
			say("%d of %d proxies connected", connected, n)
			last = time.Now()
		}
		if err := sleepUntil(ctx, time.Now().Add(50*time.Millisecond)); err != nil {
			return fmt.Errorf("waiting for %d proxies to connect: %w", n, err)
		}
	}
	// The status reconciler writes the conditions of every new object, one write each,
	// and each write makes the mesh compile again: rounds start once it is done.
	if err := waitQuiet(ctx, cp, time.Second); err != nil {
		return err
	}
	prop := &controlplane.Propagation{Sync: cp.sync, Proxies: cp.push.Proxies}
	return prop.WaitApplied(ctx)
}

// waitQuiet waits until the store has taken no write for quiet.
func waitQuiet(ctx context.Context, cp *controlPlane, quiet time.Duration) error {
	last, since := uint64(0), time.Now()
	for {
		_, rv, err := cp.store.List(ctx, store.Filter{Kind: "Mesh"})
		if err != nil {
			return err
		}
		if rv != last {
			last, since = rv, time.Now()
		} else if time.Since(since) >= quiet {
			return nil
		}
		if err := sleepUntil(ctx, time.Now().Add(100*time.Millisecond)); err != nil {
			return fmt.Errorf("waiting for the store to be quiet: %w", err)
		}
	}
}

func startProfile(dir, scenario string) (stop func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "fanout-"+scenario+".pprof")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	say("CPU profile of the measured rounds: %s", path)
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

func issues(rd round) string {
	s := ""
	if rd.nacks > 0 {
		s += fmt.Sprintf("; %d NACKs", rd.nacks)
	}
	if rd.missing > 0 {
		s += fmt.Sprintf("; %d proxies missing", rd.missing)
	}
	return s
}

// selfCPU is this process's user+system CPU time, to the microsecond.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) time.Duration {
		return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// median is the median of values taken from each round.
func median(rs []round, f func(r round) time.Duration) time.Duration {
	vs := make([]time.Duration, len(rs))
	for i, r := range rs {
		vs[i] = f(r)
	}
	return dist.Sorted(vs).Q(0.5)
}

func msec(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
