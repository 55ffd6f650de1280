package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/bench/internal/dist"
	"github.com/canarymesh/canarymesh/bench/internal/seed"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/hooks"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
	"github.com/canarymesh/canarymesh/internal/workload"
)

// result is what one run measured.
type result struct {
	setup     time.Duration // from the controller's start until every Canary is Initialized
	wall      time.Duration // the measured window
	cpu       time.Duration // the process' CPU time in the window
	others    time.Duration // CPU time of every other process in the window
	maxRSS    int64         // KiB, peak of the whole run
	rounds    dist.Dist     // lag of the analysis rounds against their pacing
	paced     dist.Dist     // lag of the runs on a timer against the timer
	storeW    dist.Dist     // time of each store write (create, update, delete, transaction)
	atOnce    dist.Dist     // lag of the runs asked for at once (judging a round)
	otherRuns int           // runs caused by watch events
	writes    uint64        // store writes in the window
	events    int64         // Events recorded in the window (new or repeated)
	hookCalls int64         // load-test webhook calls in the window
	phases    map[v1alpha1.CanaryPhase]int
	weight    float64 // mean canary weight at the end
}

func run(ctx context.Context, c config) (*result, error) {
	dir, err := os.MkdirTemp("", "canarymesh-bench-controller-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := bolt.Open(ctx, dir, bolt.Options{})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	st := &timedStore{Store: db}
	var hookCalls, supWrites, events atomic.Int64
	hook := loadTester(&hookCalls)
	defer hook.Close()

	bctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	goRun := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	goRun(func() { supervise(bctx, st, &supWrites) })
	goRun(func() { countEvents(bctx, st, &events) })

	objs := []v1alpha1.Object{&v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshName}}}
	for i := range c.canaries {
		objs = append(objs, target(i, "3.1.0"), canaryFor(i, c.interval, hook.URL+"/"))
	}
	if err := seed.CreateAll(ctx, st, objs); err != nil {
		return nil, fmt.Errorf("creating the canaries: %w", err)
	}
	say("%d Workloads and Canaries stored; starting the controller", c.canaries)

	l := &lags{interval: c.interval}
	ctrl := &canary.Controller{Store: st, Target: &workload.WorkloadTarget{Store: st},
		Router: &canary.MeshRouter{Store: st}, Metrics: &canary.MeshMetrics{Store: st, Windows: healthy},
		Hooks: &hooks.Caller{}, Recorder: &hooks.Recorder{Store: st, Source: "canary-controller"},
		Stats: canary.NewStats(), Log: slog.New(quietAfter{bctx, slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})}),
		Workers: c.workers, OnRun: l.observe}
	goRun(func() { _ = ctrl.Run(bctx) })

	r := &result{}
	begin := time.Now()
	if err := waitAll(ctx, st, c.canaries, 10*time.Minute, "Initialized", func(cd *v1alpha1.Canary) bool {
		return cd.Status.Phase == v1alpha1.CanaryPhaseInitialized
	}); err != nil {
		return nil, err
	}
	r.setup = time.Since(begin)
	say("every Canary Initialized in %s; releasing 3.1.1", r.setup.Round(time.Millisecond))
	if c.burst {
		// The window opens with the release: its first rounds are what this measures.
		goRun(func() {
			if err := releaseAll(bctx, st, c); err != nil && bctx.Err() == nil {
				say("releasing: %v", err)
			}
		})
	} else if err := releaseAll(ctx, st, c); err != nil {
		return nil, err
	}
	if !c.burst {
		say("released; one interval to settle, then %s measured", c.duration)
		if err := sleep(ctx, c.interval); err != nil {
			return nil, err
		}
	}
	if err := measure(ctx, st, c, l, &events, &hookCalls, r); err != nil {
		return nil, err
	}
	r.phases, r.weight, err = tally(ctx, st)
	r.maxRSS = rusage().maxRSS
	say("supervisor stand-in wrote %d statuses", supWrites.Load())
	return r, err
}

// measure opens the window, waits for it to pass and records what it cost.
func measure(ctx context.Context, st *timedStore, c config, l *lags, events, hookCalls *atomic.Int64, r *result) error {
	from := time.Now()
	l.open(from, from.Add(c.duration))
	st.open(from, from.Add(c.duration))
	u0, rv0, ev0, h0 := rusage(), storeRevision(ctx, st), events.Load(), hookCalls.Load()
	if err := sleep(ctx, c.duration); err != nil {
		return err
	}
	u1, rv1, ev1, h1 := rusage(), storeRevision(ctx, st), events.Load(), hookCalls.Load()
	r.wall = time.Since(from)
	r.cpu = u1.cpu - u0.cpu
	r.others = max(u1.machine-u0.machine-r.cpu, 0)
	r.writes, r.events, r.hookCalls = rv1-rv0, ev1-ev0, h1-h0
	st.mu.Lock()
	r.storeW = dist.Sorted(st.writes)
	st.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	r.rounds, r.paced, r.atOnce, r.otherRuns = dist.Sorted(l.rounds), dist.Sorted(l.paced), dist.Sorted(l.atOnce), l.other
	return nil
}

// releaseAll gives every target a new version: spread evenly over one interval, or all
// at once with burst.
func releaseAll(ctx context.Context, st store.Store, c config) error {
	start := time.Now()
	for i := range c.canaries {
		if !c.burst {
			if err := sleep(ctx, time.Until(start.Add(c.interval*time.Duration(i)/time.Duration(c.canaries)))); err != nil {
				return err
			}
		}
		if err := release(ctx, st, i, "3.1.1"); err != nil {
			return err
		}
	}
	return nil
}

func release(ctx context.Context, st store.Store, i int, version string) error {
	ns, n := name(i)
	for {
		obj, err := st.Get(ctx, store.Key{Kind: "Workload", Namespace: ns, Name: n})
		if err != nil {
			return err
		}
		w := obj.(*v1alpha1.Workload)
		w.Spec.Args = target(i, version).Spec.Args
		_, err = st.Update(ctx, w)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
}

// waitAll polls until every one of n Canaries satisfies ok.
func waitAll(ctx context.Context, st store.Store, n int, limit time.Duration, what string, ok func(*v1alpha1.Canary) bool) error {
	deadline := time.Now().Add(limit)
	for {
		objs, _, err := st.List(ctx, store.Filter{Kind: "Canary"})
		if err != nil {
			return err
		}
		done := 0
		for _, o := range objs {
			if ok(o.(*v1alpha1.Canary)) {
				done++
			}
		}
		if done == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d Canaries %s after %s", done, n, what, limit)
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// tally counts the Canaries by phase and averages their weights.
func tally(ctx context.Context, st store.Store) (map[v1alpha1.CanaryPhase]int, float64, error) {
	objs, _, err := st.List(ctx, store.Filter{Kind: "Canary"})
	if err != nil {
		return nil, 0, err
	}
	phases := map[v1alpha1.CanaryPhase]int{}
	sum := 0
	for _, o := range objs {
		cd := o.(*v1alpha1.Canary)
		phases[cd.Status.Phase]++
		sum += cd.Status.CanaryWeight
	}
	return phases, float64(sum) / float64(max(len(objs), 1)), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// quietAfter drops log records once ctx ends: the runs cut short by the end of the
// benchmark are not worth a warning.
type quietAfter struct {
	ctx context.Context
	slog.Handler
}

func (q quietAfter) Enabled(ctx context.Context, l slog.Level) bool {
	return q.ctx.Err() == nil && q.Handler.Enabled(ctx, l)
}
