package canary

import (
	"context"
	"errors"
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// execute runs the actions in order and stops at the first that fails: those after it
// may depend on it (the canary is never scaled down while it still has traffic).
func (c *Controller) execute(ctx context.Context, cd *v1alpha1.Canary, st *canaryState, acts []Action) error {
	for _, a := range acts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.do(ctx, cd, st, a); err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
	}
	return nil
}

func (c *Controller) do(ctx context.Context, cd *v1alpha1.Canary, st *canaryState, a Action) error {
	switch a := a.(type) {
	case InitializePrimary:
		return c.initializePrimary(ctx, cd, st)
	case SetWeights:
		return c.setWeights(ctx, cd, a)
	case SetMatch:
		return c.Router.SetMatch(ctx, cd, a.Match)
	case ScaleCanary:
		return ignoreMissing(c.scaleCanary(ctx, cd, a))
	case PromotePrimary:
		return c.promote(ctx, cd, a)
	case RunWebhooks:
		c.runWebhooks(ctx, cd, st, a)
	case CheckMetrics:
		c.checkMetrics(ctx, cd, st)
	case Event:
		c.event(ctx, cd, a)
	case Alert:
		c.alert(ctx, cd, a)
	case RevertTarget:
		return ignoreMissing(c.Target.ScaleCanary(ctx, cd, RestoreReplicas))
	case FinalizeTarget:
		if f, ok := c.Target.(Finalizer); ok {
			return f.Finalize(ctx, cd)
		}
	case ensureMesh:
		return c.ensureMesh(ctx, cd, st)
	case resyncDone:
		c.mu.Lock()
		st.resync = false
		c.mu.Unlock()
	case Requeue:
	default:
		return fmt.Errorf("unknown action %T", a)
	}
	return nil
}

// prelude is what a run does before its decision's actions: make sure of the mesh
// objects when the spec changed (or on the first run), and, after a start or a failed
// run, route traffic and scale the canary as the persisted status says, since the
// actions that did so may have been lost.
func (c *Controller) prelude(cd *v1alpha1.Canary, st *canaryState) []Action {
	c.mu.Lock()
	resync, meshGen := st.resync, st.meshGen
	c.mu.Unlock()
	s := &cd.Status
	switch s.Phase {
	case "", v1alpha1.CanaryPhaseInitializing, v1alpha1.CanaryPhaseTerminated:
		return nil // the mesh objects come with InitializePrimary; a Terminated one is left as it is
	}
	var acts []Action
	if meshGen != cd.Generation && cd.DeletionTimestamp == nil {
		acts = append(acts, ensureMesh{})
	}
	if !resync {
		return acts
	}
	acts = append(acts, SetWeights{Primary: 100 - s.CanaryWeight, Canary: s.CanaryWeight,
		Mirror: s.Mirrored, MirrorWeight: cd.GetMirrorWeight(), Affinity: statusAffinity(cd)})
	if an := cd.GetAnalysis(); an != nil && an.Strategy() == v1alpha1.StrategyABTesting {
		var match []v1alpha1.HTTPMatchRequest
		if s.Iterations > 0 && (inAnalysis(s.Phase) || s.Phase == v1alpha1.CanaryPhasePromoting) {
			match = an.Match
		}
		acts = append(acts, SetMatch{Match: match})
	}
	switch s.Phase {
	case v1alpha1.CanaryPhaseInitialized, v1alpha1.CanaryPhaseSucceeded, v1alpha1.CanaryPhaseFailed:
		acts = append(acts, ScaleCanary{ToZero: true})
	}
	return append(acts, resyncDone{})
}

// ensureMesh and resyncDone are the prelude's own steps, never decided by Decide.
type (
	ensureMesh struct{}
	resyncDone struct{}
)

func (ensureMesh) Kind() ActionKind { return "EnsureMesh" }
func (ensureMesh) String() string   { return "EnsureMesh" }
func (resyncDone) Kind() ActionKind { return "Resync" }
func (resyncDone) String() string   { return "Resync" }

func (c *Controller) initializePrimary(ctx context.Context, cd *v1alpha1.Canary, st *canaryState) error {
	if err := c.Target.Initialize(ctx, cd); err != nil {
		return err
	}
	return c.ensureMesh(ctx, cd, st)
}

func (c *Controller) ensureMesh(ctx context.Context, cd *v1alpha1.Canary, st *canaryState) error {
	if err := c.Router.Initialize(ctx, cd); err != nil {
		return err
	}
	c.mu.Lock()
	st.meshGen = cd.Generation
	c.mu.Unlock()
	return nil
}

func (c *Controller) setWeights(ctx context.Context, cd *v1alpha1.Canary, a SetWeights) error {
	err := c.Router.SetWeights(ctx, cd, a)
	if errors.Is(err, ErrMirrorUnsupported) {
		c.event(ctx, cd, Event{Type: v1alpha1.EventTypeWarning, Reason: "MirrorUnsupported",
			Message: err.Error() + "; the analysis goes on without a mirror"})
		return nil
	}
	return err
}

// statusAffinity is the session affinity the persisted status records, for routing
// again after a restart; nil without sessionAffinity.
func statusAffinity(cd *v1alpha1.Canary) *Affinity {
	an := cd.GetAnalysis()
	if an == nil || an.SessionAffinity == nil || an.Strategy() != v1alpha1.StrategyCanary {
		return nil
	}
	s := &cd.Status
	return &Affinity{Canary: s.SessionAffinityCookie, Primary: s.PrimarySessionAffinityCookie,
		Previous: s.PreviousSessionAffinityCookie}
}

func (c *Controller) scaleCanary(ctx context.Context, cd *v1alpha1.Canary, a ScaleCanary) error {
	switch {
	case a.ToZero:
		return c.scaleCanaryDown(ctx, cd)
	case a.Replicas > 0:
		return c.Target.ScaleCanary(ctx, cd, a.Replicas)
	}
	return c.Target.ScaleCanary(ctx, cd, RestoreReplicas)
}

// promote copies the analysed revision into the primary, and refuses when the target
// runs another one by now: that one was not analysed (the next decision restarts the
// analysis for it).
func (c *Controller) promote(ctx context.Context, cd *v1alpha1.Canary, a PromotePrimary) error {
	rev, err := c.Target.Revision(ctx, cd)
	if err != nil {
		return err
	}
	if rev != a.Revision {
		c.event(ctx, cd, Event{Type: v1alpha1.EventTypeWarning, Reason: "PromotionRefused",
			Message: fmt.Sprintf("not promoting %s: the target runs revision %s, not the analysed %s", cd.Name, short(rev), short(a.Revision))})
		return nil
	}
	return c.Target.Promote(ctx, cd)
}

// runWebhooks calls every webhook of the type, with the phase asked for in the payload,
// and keeps the results for the next decision.
func (c *Controller) runWebhooks(ctx context.Context, cd *v1alpha1.Canary, st *canaryState, a RunWebhooks) {
	an := cd.GetAnalysis()
	if an == nil {
		return
	}
	call := cd.DeepCopy()
	call.Status.Phase = a.Phase
	var out []WebhookResult
	for _, h := range an.Webhooks {
		if h.GetType() != a.Type {
			continue
		}
		r := c.Hooks.Call(ctx, call, h)
		out = append(out, WebhookResult{Name: h.Name, Type: h.GetType(), OK: r.OK, StatusCode: r.StatusCode, Message: r.Message})
		if !r.OK {
			c.Log.InfoContext(ctx, "webhook did not pass", "canary", cd.Namespace+"/"+cd.Name, "webhook", h.Name,
				"type", h.GetType(), "status", r.StatusCode, "message", r.Message)
		}
	}
	c.mu.Lock()
	st.webhooks = append(st.webhooks, out...)
	c.mu.Unlock()
}

// checkMetrics measures every metric check and keeps the results for the next decision.
func (c *Controller) checkMetrics(ctx context.Context, cd *v1alpha1.Canary, st *canaryState) {
	an := cd.GetAnalysis()
	if an == nil {
		return
	}
	out := make([]MetricResult, 0, len(an.Metrics))
	for i := range an.Metrics {
		out = append(out, c.Metrics.Check(ctx, cd, &an.Metrics[i]))
	}
	c.mu.Lock()
	st.metrics = out
	c.mu.Unlock()
}

// ignoreMissing drops ErrTargetNotFound: there is nothing to scale, and the next
// decision reports the missing target.
func ignoreMissing(err error) error {
	if errors.Is(err, ErrTargetNotFound) {
		return nil
	}
	return err
}
