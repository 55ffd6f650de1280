package canary

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/hooks"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Controller executes Decide for every Canary in the store:
//
//	watch Canaries, Workloads ─▶ queue ─▶ worker: observe ─▶ Decide ─▶ persist status (CAS)
//	        ▲                                                               │
//	        └── timer per canary (Decision.RequeueAfter) ◀── execute actions ┘
//
// A canary is run by one worker at a time; between runs it costs a timer, so a thousand
// canaries need no goroutine of their own. The status is written before the actions
// run: a restart resumes from it, and the actions it lost are asked for again by the
// next decision (or re-applied from the status, for the routes).
type Controller struct {
	Store   store.Store
	Target  Target
	Router  Router
	Metrics MetricChecker
	// Hooks calls webhooks; nil means a default Caller.
	Hooks *hooks.Caller
	// Recorder stores events about Canaries; nil records none.
	Recorder *hooks.Recorder
	// Notifiers builds the notifier of an AlertProvider; nil means hooks.NewNotifier
	// without secrets.
	Notifiers func(ctx context.Context, p *v1alpha1.AlertProvider) (hooks.Notifier, error)
	// Stats are the controller's Prometheus metrics; nil keeps none.
	Stats *Stats
	Log   *slog.Logger
	// Clock defaults to the system clock.
	Clock Clock
	// Propagation, when set, is waited for (at most PropagationTimeout, default
	// DefaultPropagationTimeout) before the canary is scaled to zero, until the proxies
	// run the routes that took its traffic away.
	Propagation        Propagation
	PropagationTimeout time.Duration
	// Workers is how many canaries run at once (default 8): a slow webhook holds one.
	Workers int
	// OnRun, when set, is told after each run of a canary when the run was due, when it
	// started and whether it took the analysis step. It measures the controller's
	// backlog (bench/controller) and changes nothing it does; it is called from the
	// workers, so it must be quick and safe for concurrent use.
	OnRun func(RunTiming)

	queue *queue

	mu       sync.Mutex
	canaries map[store.Key]*canaryState
	// byWorkload maps a target or primary Workload to the canaries that watch it.
	byWorkload map[store.Key]map[store.Key]bool
	// workloads is the last seen signature of every watched Workload.
	workloads map[store.Key]string
	wg        sync.WaitGroup
}

// canaryState is what the controller keeps about one Canary between runs.
type canaryState struct {
	uid types.UID
	// metrics and webhooks are the results the last decision asked for, for the next.
	metrics  []MetricResult
	webhooks []WebhookResult
	// stop cancels the pending timer.
	stop func() bool
	// written is the resourceVersion of the controller's own last write, whose watch
	// event needs no run.
	written string
	// resync routes traffic as the persisted status says before the next actions: on
	// the first run after a start, and after an action failed.
	resync bool
	// meshGen is the generation whose mesh objects were last made sure of.
	meshGen int64
	// failures counts consecutive failed runs, for the backoff.
	failures int
	// target is the spec.targetRef name indexed in byWorkload.
	target string
	// phase is the last persisted phase, for the stats.
	phase v1alpha1.CanaryPhase
	// due and wait are when the pending run was asked for and the delay it was asked
	// with, and round whether the last run took the analysis step, for OnRun.
	due   time.Time
	wait  time.Duration
	round bool
}

// RunTiming is when a run of a canary started against when it was due, for OnRun.
type RunTiming struct {
	Canary store.Key
	// Due is when the run was asked for: when its timer was set to fire (Wait > 0), or
	// when it was queued to run at once (Wait 0). It is zero for a run that something
	// else caused (a watch event, the start) before any was due.
	Due  time.Time
	Wait time.Duration
	// Start is when the run began, on the controller's clock.
	Start time.Time
	// Round is true when the run took the paced step of an analysis: it asked for a
	// round of checks, or judged at once one that needed none. A round is due an
	// interval after the previous one started.
	Round bool
}

const (
	defaultWorkers = 8
	backoffBase    = 200 * time.Millisecond
	backoffMax     = 30 * time.Second
	// maxConflicts bounds the re-reads of one run whose status write lost a race.
	maxConflicts = 5
)

func (c *Controller) init() {
	if c.Clock == nil {
		c.Clock = RealClock{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Hooks == nil {
		c.Hooks = &hooks.Caller{}
	}
	if c.Workers <= 0 {
		c.Workers = defaultWorkers
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = newQueue()
	c.canaries = map[store.Key]*canaryState{}
	c.byWorkload = map[store.Key]map[store.Key]bool{}
	c.workloads = map[store.Key]string{}
}

// Run drives every Canary until ctx ends, then waits for the runs under way.
func (c *Controller) Run(ctx context.Context) error {
	c.init()
	for range c.Workers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.work(ctx)
		}()
	}
	c.watch(ctx)
	c.queue.close()
	c.wg.Wait()
	c.stopTimers()
	return nil
}

func (c *Controller) work(ctx context.Context) {
	for {
		k, ok := c.queue.get()
		if !ok {
			return
		}
		if ctx.Err() == nil {
			var t RunTiming
			if c.OnRun != nil {
				t = c.timing(k)
			}
			begin := time.Now()
			after, again := c.reconcile(ctx, k)
			c.Stats.observeRun(k, time.Since(begin))
			if c.OnRun != nil {
				c.OnRun(c.timed(t))
			}
			if again && ctx.Err() == nil {
				c.schedule(k, after)
			}
		}
		c.queue.done(k)
	}
}

// schedule runs k again after d: at once for zero, else on a timer that replaces any
// pending one.
func (c *Controller) schedule(k store.Key, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.canaries[k]
	if st == nil {
		return
	}
	if st.stop != nil {
		st.stop()
		st.stop = nil
	}
	if c.OnRun != nil {
		st.due, st.wait = c.Clock.Now().Add(max(d, 0)), max(d, 0)
	}
	if d <= 0 {
		c.queue.add(k)
		return
	}
	st.stop = c.Clock.AfterFunc(d, func() { c.queue.add(k) })
}

// timing is OnRun's view of the run of k starting now; it consumes the due time once
// that time has come.
func (c *Controller) timing(k store.Key) RunTiming {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := RunTiming{Canary: k, Start: c.Clock.Now()}
	st := c.canaries[k]
	if st == nil {
		return t
	}
	st.round = false
	if !st.due.IsZero() && !t.Start.Before(st.due) {
		t.Due, t.Wait = st.due, st.wait
		st.due, st.wait = time.Time{}, 0
	}
	return t
}

// timed completes t once its run is over.
func (c *Controller) timed(t RunTiming) RunTiming {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.canaries[t.Canary]; st != nil {
		t.Round = st.round
	}
	return t
}

// tookStep reports whether a decision took the paced step of an analysis: asked for a
// round of checks, or judged at once a round that needed none. Judging the checks asked
// for is the same step, not a new one.
func tookStep(old, next *v1alpha1.CanaryStatus, now time.Time) bool {
	if old.ChecksRequestedTime != nil || !inAnalysis(old.Phase) {
		return false
	}
	if next.ChecksRequestedTime != nil {
		return true
	}
	// A step judged at once stamps lastStepTime with now. A later run at the same
	// instant (woken by the step's own writes) finds the stamp already there: no step.
	stamped := func(s *v1alpha1.CanaryStatus) bool { return s.LastStepTime != nil && s.LastStepTime.Time.Equal(now) }
	return stamped(next) && !stamped(old)
}

// state returns the state of k, new when k is unknown or names another object (a
// Canary deleted and made again under the same name).
func (c *Controller) state(k store.Key, cd *v1alpha1.Canary) *canaryState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.canaries[k]
	if st != nil && st.uid != cd.UID {
		c.dropLocked(k, st)
		st = nil
	}
	if st == nil {
		st = &canaryState{uid: cd.UID, resync: true, phase: cd.Status.Phase}
		c.canaries[k] = st
		c.Stats.setTotal(k.Namespace, c.countLocked(k.Namespace))
	}
	if t := cd.Spec.TargetRef.Name; t != st.target {
		c.unindexLocked(k, st.target)
		st.target = t
		c.indexLocked(k, t)
	}
	return st
}

// forget drops everything kept about a Canary that is gone.
func (c *Controller) forget(k store.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.canaries[k]; st != nil {
		c.dropLocked(k, st)
		c.Stats.setTotal(k.Namespace, c.countLocked(k.Namespace))
		c.Stats.forget(k, st.target)
	}
}

func (c *Controller) dropLocked(k store.Key, st *canaryState) {
	if st.stop != nil {
		st.stop()
	}
	c.unindexLocked(k, st.target)
	delete(c.canaries, k)
}

func (c *Controller) countLocked(ns string) int {
	n := 0
	for k := range c.canaries {
		if k.Namespace == ns {
			n++
		}
	}
	return n
}

// indexLocked makes changes of the target's and its primary's Workloads run k.
func (c *Controller) indexLocked(k store.Key, target string) {
	if target == "" {
		return
	}
	for _, name := range []string{target, target + "-primary"} {
		wk := store.Key{Kind: "Workload", Namespace: k.Namespace, Name: name}
		if c.byWorkload[wk] == nil {
			c.byWorkload[wk] = map[store.Key]bool{}
		}
		c.byWorkload[wk][k] = true
	}
}

func (c *Controller) unindexLocked(k store.Key, target string) {
	if target == "" {
		return
	}
	for _, name := range []string{target, target + "-primary"} {
		wk := store.Key{Kind: "Workload", Namespace: k.Namespace, Name: name}
		delete(c.byWorkload[wk], k)
		if len(c.byWorkload[wk]) == 0 {
			delete(c.byWorkload, wk)
			delete(c.workloads, wk)
		}
	}
}

func (c *Controller) stopTimers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.canaries {
		if st.stop != nil {
			st.stop()
			st.stop = nil
		}
	}
}

// backoff is the pause after the n-th consecutive failure of a canary's run.
func backoff(n int) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}
