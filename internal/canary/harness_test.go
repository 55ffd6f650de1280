package canary_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/hooks"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
	"github.com/canarymesh/canarymesh/internal/workload"
)

const (
	ns        = "demo"
	apiToken  = "t0ken"
	meshName  = "flaggerdemo"
	step      = 5 * time.Second // one tick of the fake clock
	settleFor = 20 * time.Millisecond
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// fakeClock is a Clock whose time moves only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped atomic.Bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool { return !t.stopped.Swap(true) }
}

// Advance moves the time on and fires the timers that came due, in time order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due, rest []*fakeTimer
	for _, t := range c.timers {
		switch {
		case t.stopped.Load():
		case !t.at.After(c.now):
			due = append(due, t)
		default:
			rest = append(rest, t)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		if !t.stopped.Swap(true) {
			t.f()
		}
	}
}

// windows is an in-memory WindowSource: the stats each virtual node reports.
type windows struct {
	mu    sync.Mutex
	stats map[string]builtin.Stats
}

func (w *windows) Window(cluster string, _ time.Duration) builtin.Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s, ok := w.stats[cluster]; ok {
		return s
	}
	return builtin.Stats{NoData: true}
}

func (w *windows) set(cluster string, s builtin.Stats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats[cluster] = s
}

var (
	healthy = builtin.Stats{Requests: 500, SuccessRate: 100, P99: 120 * time.Millisecond}
	failing = builtin.Stats{Requests: 500, Errors5xx: 250, SuccessRate: 50, P99: 120 * time.Millisecond}
)

// countingTarget is the real WorkloadTarget, counting promotions; beforePromote and
// afterPromote, when set, run around the real one (a test crashes the controller there).
type countingTarget struct {
	*workload.WorkloadTarget
	promotions    atomic.Int32
	beforePromote func() error
	afterPromote  func()
}

func (t *countingTarget) Promote(ctx context.Context, cd *v1alpha1.Canary) error {
	if t.beforePromote != nil {
		if err := t.beforePromote(); err != nil {
			return err
		}
	}
	if err := t.WorkloadTarget.Promote(ctx, cd); err != nil {
		return err
	}
	t.promotions.Add(1)
	if t.afterPromote != nil {
		t.afterPromote()
	}
	return nil
}

// harness is a bolt store with the API in front of it, and a controller over it with a
// fake clock, in-memory windows and the real WorkloadTarget and MeshRouter. Nothing runs
// the workloads: supervise writes the status a supervisor would (every instance ready).
type harness struct {
	t       *testing.T
	st      *bolt.Store
	api     *controlplane.Client
	clock   *fakeClock
	windows *windows
	target  *countingTarget
	stats   *canary.Stats
	ctrl    *canary.Controller
	// onRun, when set before start, is the controller's OnRun.
	onRun  func(canary.RunTiming)
	cancel context.CancelFunc
	done   chan struct{}
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st, err := bolt.Open(context.Background(), t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(controlplane.NewServer(st, apiToken, "test", slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	h := &harness{t: t, st: st, api: controlplane.NewClient(srv.URL, apiToken), clock: &fakeClock{now: t0},
		windows: &windows{stats: map[string]builtin.Stats{}}, target: &countingTarget{WorkloadTarget: &workload.WorkloadTarget{Store: st}}}
	t.Cleanup(func() {
		h.stop()
		srv.Close()
		st.Close()
	})
	h.create(&v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: meshName}})
	return h
}

// start runs a new controller over the store, as a restarted process would.
func (h *harness) start() {
	h.t.Helper()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("CANARY_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h.stats = canary.NewStats()
	h.ctrl = &canary.Controller{
		Store: h.st, Target: h.target, Router: &canary.MeshRouter{Store: h.st, Log: log},
		Metrics:  &canary.MeshMetrics{Store: h.st, Windows: h.windows},
		Hooks:    &hooks.Caller{RetryDelay: time.Millisecond, Now: h.clock.Now},
		Recorder: &hooks.Recorder{Store: h.st, Source: "canary-controller", Now: h.clock.Now},
		Stats:    h.stats, Log: log, Clock: h.clock, Workers: 4, OnRun: h.onRun,
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		_ = h.ctrl.Run(ctx)
	}()
	h.settle()
}

// stop ends the controller and waits for it, as a killed process would end.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		h.t.Fatal("controller did not stop within 20s")
	}
	h.cancel = nil
}

// settle waits until the controller has had nothing to do for a while.
func (h *harness) settle() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	quietSince := time.Time{}
	for time.Now().Before(deadline) {
		if !h.ctrl.IdleForTest() {
			quietSince = time.Time{}
		} else if quietSince.IsZero() {
			quietSince = time.Now()
		} else if time.Since(quietSince) >= settleFor {
			return
		}
		time.Sleep(time.Millisecond)
	}
	h.t.Fatal("controller did not settle within 20s")
}

// tick lets the supervisor's stand-in report, moves the clock one step and waits for
// the controller.
func (h *harness) tick() {
	h.t.Helper()
	h.supervise()
	h.settle()
	h.clock.Advance(step)
	h.settle()
}

// until ticks until ok holds, at most max ticks.
func (h *harness) until(what string, max int, ok func() bool) {
	h.t.Helper()
	for i := 0; i < max; i++ {
		if ok() {
			return
		}
		h.tick()
	}
	if !ok() {
		cd := h.canary()
		h.t.Fatalf("after %d ticks, still not %s: phase %s, weight %d, message %q", max, what, cd.Status.Phase, cd.Status.CanaryWeight, cd.Status.Message)
	}
}

// supervise writes the status a supervisor reports once every instance of every
// Workload runs the current revision and is ready.
func (h *harness) supervise() {
	h.t.Helper()
	ctx := context.Background()
	objs, _, err := h.st.List(ctx, store.Filter{Kind: "Workload", Namespace: ns})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, o := range objs {
		w := o.(*v1alpha1.Workload)
		want := v1alpha1.WorkloadStatus{ObservedGeneration: w.Generation, Replicas: w.GetReplicas(), ReadyReplicas: w.GetReplicas(), Revision: w.Revision()}
		for i := range w.GetReplicas() {
			want.Instances = append(want.Instances, v1alpha1.WorkloadInstance{Index: i, Port: 20000 + i, PID: 1, Ready: true, Revision: w.Revision()})
		}
		if equalStatus(w.Status, want) {
			continue
		}
		w.Status = want
		if _, err := h.st.Update(ctx, w); err != nil && !errors.Is(err, store.ErrConflict) {
			h.t.Fatal(err)
		}
	}
}

func equalStatus(a, b v1alpha1.WorkloadStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.ReadyReplicas != b.ReadyReplicas || a.Revision != b.Revision ||
		len(a.Instances) != len(b.Instances) {
		return false
	}
	for i := range a.Instances {
		if a.Instances[i] != b.Instances[i] {
			return false
		}
	}
	return true
}

func (h *harness) create(o v1alpha1.Object) {
	h.t.Helper()
	k, err := v1alpha1.KindOf(o)
	if err != nil {
		h.t.Fatal(err)
	}
	o.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	if d, ok := o.(v1alpha1.Defaulter); ok {
		d.Default()
	}
	if _, err := h.st.Create(context.Background(), o); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) get(kind, name string) v1alpha1.Object {
	h.t.Helper()
	o, err := h.st.Get(context.Background(), store.Key{Kind: kind, Namespace: ns, Name: name})
	if err != nil {
		h.t.Fatalf("%s %s: %v", kind, name, err)
	}
	return o
}

func (h *harness) canary() *v1alpha1.Canary {
	h.t.Helper()
	return h.get("Canary", "podinfo").(*v1alpha1.Canary)
}

func (h *harness) workload(name string) *v1alpha1.Workload {
	h.t.Helper()
	return h.get("Workload", name).(*v1alpha1.Workload)
}

// release changes the target's version: a new revision.
func (h *harness) release(version string) {
	h.t.Helper()
	for {
		w := h.workload("podinfo")
		w.Spec.Env = []v1alpha1.EnvVar{{Name: "VERSION", Value: version}}
		_, err := h.st.Update(context.Background(), w)
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrConflict) {
			h.t.Fatal(err)
		}
	}
}

// weights reads the apex route's primary and canary weights.
func (h *harness) weights() (primary, canaryW int64) {
	h.t.Helper()
	vr := h.get("VirtualRouter", "podinfo").(*v1alpha1.VirtualRouter)
	for _, r := range vr.Spec.Routes {
		if r.Name != "podinfo-route" {
			continue
		}
		for _, t := range r.HTTPRoute.Action.WeightedTargets {
			switch t.VirtualNodeRef.Name {
			case "podinfo-primary":
				primary = t.Weight
			case "podinfo-canary":
				canaryW = t.Weight
			}
		}
	}
	return primary, canaryW
}

// events lists the recorded events of the Canary by reason.
func (h *harness) events() map[string][]*v1alpha1.Event {
	h.t.Helper()
	objs, _, err := h.st.List(context.Background(), store.Filter{Kind: "Event", Namespace: ns})
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string][]*v1alpha1.Event{}
	for _, ev := range hooks.For(objs, "Canary", "podinfo") {
		out[ev.Reason] = append(out[ev.Reason], ev)
	}
	return out
}

// podinfo is the seed's podinfo as a Workload (never run here).
func podinfo() *v1alpha1.Workload {
	w := &v1alpha1.Workload{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}, Spec: v1alpha1.WorkloadSpec{
		Command:  []string{"demo-app"},
		Replicas: ptr(int32(2)),
		Env:      []v1alpha1.EnvVar{{Name: "VERSION", Value: "3.1.0"}},
		Labels:   map[string]string{"app": "podinfo"},
	}}
	return w
}

// seedCanary is the seed's canary.yaml aimed at the Workload, with a shorter analysis:
// interval 10s, threshold 2, stepWeight 20 up to 60.
func seedCanary() *v1alpha1.Canary {
	return &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}, Spec: v1alpha1.CanarySpec{
		Provider:                "appmesh",
		ProgressDeadlineSeconds: ptr(int32(60)),
		TargetRef:               v1alpha1.LocalObjectReference{Kind: v1alpha1.TargetKindWorkload, Name: "podinfo"},
		Service: v1alpha1.CanaryService{Port: 9898, PortName: "http", MeshName: meshName, Hosts: []string{"*"},
			Retries: &v1alpha1.HTTPRetry{Attempts: 3, PerTryTimeout: "1s", RetryOn: "gateway-error,client-error,stream-error"}},
		Analysis: &v1alpha1.CanaryAnalysis{
			Interval: "10s", Threshold: 2, MaxWeight: 60, StepWeight: 20,
			Metrics: []v1alpha1.CanaryMetric{
				{Name: "request-success-rate", Interval: "1m", ThresholdRange: &v1alpha1.CanaryThresholdRange{Min: ptr(99.0)}},
				{Name: "request-duration", Interval: "30s", ThresholdRange: &v1alpha1.CanaryThresholdRange{Max: ptr(500.0)}},
			},
		},
	}}
}

// initialized creates the target and the Canary, starts the controller and waits for
// the first revision to be initialised.
func (h *harness) initialized(cd *v1alpha1.Canary) {
	h.t.Helper()
	h.create(podinfo())
	h.create(cd)
	h.start()
	h.until("Initialized", 10, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseInitialized })
}
