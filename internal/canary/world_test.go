package canary

import (
	"reflect"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func at(d time.Duration) *metav1.Time { t := metav1.NewTime(t0.Add(d)); return &t }

// seedCanary is the Flagger demo's canary.yaml (podinfo, interval 10s, threshold 10,
// maxWeight 50, stepWeight 5, success rate ≥ 99, P99 ≤ 500 ms, a pre-rollout acceptance
// test and a rollout load test), aimed at a standalone Workload.
func seedCanary() *v1alpha1.Canary {
	cd := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "demo", Generation: 1},
		Spec: v1alpha1.CanarySpec{
			Provider:                "appmesh",
			ProgressDeadlineSeconds: ptr(int32(60)),
			TargetRef:               v1alpha1.LocalObjectReference{Kind: v1alpha1.TargetKindWorkload, Name: "podinfo"},
			Service:                 v1alpha1.CanaryService{Port: 9898, MeshName: "flaggerdemo"},
			Analysis: &v1alpha1.CanaryAnalysis{
				Interval: "10s", Threshold: 10, MaxWeight: 50, StepWeight: 5,
				Metrics: []v1alpha1.CanaryMetric{
					{Name: "request-success-rate", Interval: "1m", ThresholdRange: &v1alpha1.CanaryThresholdRange{Min: ptr(99.0)}},
					{Name: "request-duration", Interval: "30s", ThresholdRange: &v1alpha1.CanaryThresholdRange{Max: ptr(500.0)}},
				},
				Webhooks: []v1alpha1.CanaryWebhook{
					{Name: "acceptance-test", Type: v1alpha1.WebhookPreRollout, URL: "http://flagger-loadtester.demo/", Timeout: "30s"},
					{Name: "load-test", URL: "http://flagger-loadtester.demo/", Timeout: "5s"},
				},
			},
		},
	}
	return cd
}

func addHook(cd *v1alpha1.Canary, name string, t v1alpha1.WebhookType) {
	cd.Spec.Analysis.Webhooks = append(cd.Spec.Analysis.Webhooks, v1alpha1.CanaryWebhook{Name: name, Type: t, URL: "http://hooks/" + name})
}

// world is a simulated mesh and target that applies decisions the way the controller
// would: it persists the status, then executes the actions, then sleeps until the
// requeue. Instances take readyDelay to become ready.
type world struct {
	t  *testing.T
	cd *v1alpha1.Canary

	now        time.Time
	readyDelay time.Duration

	target         string // the target's revision
	targetMissing  bool
	primary        string // the revision the primary runs; "" before it exists
	primaryReadyAt time.Time
	canaryUp       bool
	canaryReadyAt  time.Time
	route          SetWeights
	match          bool
	reverted       bool
	finalized      bool

	// answer and measure stand in for webhooks and metric queries.
	answer  func(h v1alpha1.CanaryWebhook) WebhookResult
	measure func(m v1alpha1.CanaryMetric) MetricResult

	hooks   []WebhookResult
	metrics []MetricResult
	manual  ManualCommand
	deleted bool
	// crashIf drops a decision's actions after its status was persisted, as a
	// controller killed at that moment would.
	crashIf func(Decision) bool
	crashes int

	weights    []int // the canary weight after every route change
	mirrors    int   // route changes that mirrored
	promotions []string
	phases     []v1alpha1.CanaryPhase // every phase entered, in order
	events     []Event
	alerts     []Alert
	calls      map[v1alpha1.WebhookType]int
	queries    int
	steps      int
}

func newWorld(t *testing.T, cd *v1alpha1.Canary, rev string) *world {
	return &world{
		t: t, cd: cd, now: t0, readyDelay: 2 * time.Second, target: rev,
		answer: func(h v1alpha1.CanaryWebhook) WebhookResult {
			return WebhookResult{Name: h.Name, Type: h.GetType(), OK: true, StatusCode: 200}
		},
		measure: healthy,
		calls:   map[v1alpha1.WebhookType]int{},
	}
}

// healthy measures a canary that meets the seed's thresholds.
func healthy(m v1alpha1.CanaryMetric) MetricResult {
	if m.Name == v1alpha1.MetricRequestSuccessRate {
		return MetricResult{Name: m.Name, Value: 100}
	}
	return MetricResult{Name: m.Name, Value: 120}
}

// failing measures a canary that answers one request in ten with a 500.
func failing(m v1alpha1.CanaryMetric) MetricResult {
	if m.Name == v1alpha1.MetricRequestSuccessRate {
		return MetricResult{Name: m.Name, Value: 90}
	}
	return MetricResult{Name: m.Name, Value: 120}
}

func (w *world) observe() Observations {
	return Observations{
		Now:             w.now,
		TargetRevision:  w.target,
		TargetExists:    !w.targetMissing,
		PrimaryRevision: w.primary,
		PrimaryReady:    ReadyState{Ready: w.primary != "" && !w.now.Before(w.primaryReadyAt)},
		CanaryReady:     ReadyState{Ready: w.canaryUp && !w.now.Before(w.canaryReadyAt)},
		Metrics:         w.metrics,
		Webhooks:        w.hooks,
		Manual:          w.manual,
		Deleted:         w.deleted,
	}
}

// step makes one decision and applies it.
func (w *world) step() Decision {
	w.t.Helper()
	obs := w.observe()
	w.hooks, w.metrics, w.manual = nil, nil, ""
	dec := Decide(w.cd, obs)
	w.cd.Status = *dec.Status.DeepCopy() // persisted before the actions run
	if n := len(w.phases); n == 0 || w.phases[n-1] != dec.Status.Phase {
		w.phases = append(w.phases, dec.Status.Phase)
	}
	w.steps++
	if w.crashIf != nil && w.crashIf(dec) {
		w.crashes++
		return dec // restarted: no actions ran, no results are pending
	}
	for _, a := range dec.Actions {
		w.apply(a)
	}
	if after, ok := dec.RequeueAfter(); ok {
		w.now = w.now.Add(after)
	}
	return dec
}

func (w *world) apply(a Action) {
	switch a := a.(type) {
	case InitializePrimary:
		if w.primary == "" {
			w.primary, w.primaryReadyAt = w.target, w.now.Add(w.readyDelay)
		}
	case SetWeights:
		if a != w.route {
			w.route = a
			w.weights = append(w.weights, a.Canary)
			if a.Mirror {
				w.mirrors++
			}
		}
	case SetMatch:
		w.match = len(a.Match) > 0
	case ScaleCanary:
		w.scale(a)
	case PromotePrimary:
		if a.Revision != w.target {
			w.t.Errorf("PromotePrimary(%s) while the target runs %s", a.Revision, w.target)
		}
		w.promotions = append(w.promotions, a.Revision)
		w.primary, w.primaryReadyAt = a.Revision, w.now.Add(w.readyDelay)
	case RunWebhooks:
		w.calls[a.Type]++
		for _, h := range w.cd.Spec.Analysis.Webhooks {
			if h.GetType() == a.Type {
				w.hooks = append(w.hooks, w.answer(h))
			}
		}
	case CheckMetrics:
		w.queries++
		for _, m := range w.cd.Spec.Analysis.Metrics {
			w.metrics = append(w.metrics, w.measure(m))
		}
	case Event:
		w.events = append(w.events, a)
	case Alert:
		w.alerts = append(w.alerts, a)
	case RevertTarget:
		w.reverted = true
		w.scale(ScaleCanary{})
	case FinalizeTarget:
		w.finalized = true
	case Requeue:
	default:
		w.t.Fatalf("unknown action %v", a)
	}
}

func (w *world) scale(a ScaleCanary) {
	switch {
	case a.ToZero:
		w.canaryUp = false
	case !w.canaryUp:
		w.canaryUp, w.canaryReadyAt = true, w.now.Add(w.readyDelay)
	}
}

// deploy changes the target's revision; its running instances restart.
func (w *world) deploy(rev string) {
	w.target = rev
	if w.canaryUp {
		w.canaryReadyAt = w.now.Add(w.readyDelay)
	}
}

// runUntil steps until done holds, failing after too many steps.
func (w *world) runUntil(done func() bool) {
	w.t.Helper()
	for i := 0; !done(); i++ {
		if i > 2000 {
			w.t.Fatalf("no end after %d steps: phase %s, weight %d, message %q",
				i, w.cd.Status.Phase, w.cd.Status.CanaryWeight, w.cd.Status.Message)
		}
		w.step()
	}
}

func (w *world) phaseIs(p v1alpha1.CanaryPhase) func() bool {
	return func() bool { return w.cd.Status.Phase == p }
}

// initialized runs the first deploy to Initialized and clears the history.
func (w *world) initialized() *world {
	w.t.Helper()
	w.runUntil(w.phaseIs(v1alpha1.CanaryPhaseInitialized))
	w.weights, w.mirrors, w.phases, w.events, w.alerts = nil, 0, nil, nil, nil
	w.calls = map[v1alpha1.WebhookType]int{}
	return w
}

func (w *world) sawPhase(p v1alpha1.CanaryPhase) bool { return slices.Contains(w.phases, p) }

// Helpers on decisions.

func actionsOf[T Action](acts []Action) []T {
	var out []T
	for _, a := range acts {
		if v, ok := a.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func hasAction(acts []Action, want Action) bool {
	return slices.ContainsFunc(acts, func(a Action) bool { return reflect.DeepEqual(a, want) })
}

func hasKind(acts []Action, k ActionKind) bool {
	return slices.ContainsFunc(acts, func(a Action) bool { return a.Kind() == k })
}

func kinds(acts []Action) []ActionKind {
	out := make([]ActionKind, len(acts))
	for i, a := range acts {
		out[i] = a.Kind()
	}
	return out
}

func eventReasons(acts []Action) []string {
	var out []string
	for _, e := range actionsOf[Event](acts) {
		out = append(out, e.Reason)
	}
	return out
}

func requeue(t *testing.T, dec Decision) time.Duration {
	t.Helper()
	after, ok := dec.RequeueAfter()
	if !ok {
		t.Fatalf("no Requeue in %v", dec.Actions)
	}
	return after
}
