package canary

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// reconcile is one run of a Canary: observe, decide, persist the status, execute the
// actions. It reports when to run again, and false when never (the Canary is gone or
// Terminated).
func (c *Controller) reconcile(ctx context.Context, k store.Key) (time.Duration, bool) {
	for attempt := 1; ; attempt++ {
		cd, err := c.getCanary(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			c.forget(k)
			return 0, false
		}
		if err != nil {
			return c.failed(ctx, k, nil, err)
		}
		st := c.state(k, cd)
		obs, err := c.observe(ctx, cd, st)
		if err != nil {
			return c.failed(ctx, k, cd, err)
		}
		dec := Decide(cd, obs)
		out, removed, err := c.persist(ctx, cd, st, dec, obs.Manual != ManualNone)
		if errors.Is(err, store.ErrConflict) && attempt < maxConflicts {
			continue // changed meanwhile: decide again on what is stored now
		}
		if err != nil {
			return c.failed(ctx, k, cd, fmt.Errorf("write status: %w", err))
		}
		c.decided(k, cd, st, dec, obs)
		return c.carryOut(ctx, k, out, removed, st, dec)
	}
}

// decided consumes what the decision used, once its status is stored.
func (c *Controller) decided(k store.Key, old *v1alpha1.Canary, st *canaryState, dec Decision, obs Observations) {
	c.mu.Lock()
	st.metrics, st.webhooks = nil, nil
	st.phase = dec.Status.Phase
	if c.OnRun != nil {
		st.round = tookStep(&old.Status, &dec.Status, obs.Now)
	}
	c.mu.Unlock()
	if obs.Manual != ManualNone {
		c.Log.Info("manual command consumed", "canary", k.Namespace+"/"+k.Name, "command", obs.Manual,
			"nonce", old.Annotations[AnnotationCommandNonce])
	}
	c.Stats.record(old, dec.Status)
}

// carryOut executes the decision's actions on the Canary as stored (or, when it is
// gone, as it was) and works out the next run.
func (c *Controller) carryOut(ctx context.Context, k store.Key, cd *v1alpha1.Canary, removed bool, st *canaryState, dec Decision) (time.Duration, bool) {
	acts := append(c.prelude(cd, st), dec.Actions...)
	err := c.execute(ctx, cd, st, acts)
	if removed {
		c.forget(k)
		if err != nil {
			c.Log.Warn("actions of a removed canary failed", "canary", k.Namespace+"/"+k.Name, "err", err)
		}
		return 0, false
	}
	if err != nil {
		return c.failed(ctx, k, cd, err)
	}
	c.mu.Lock()
	st.failures = 0
	c.mu.Unlock()
	return dec.RequeueAfter()
}

// failed logs a run that could not finish, tells the user through an event, and asks
// for another run after a backoff. The next run routes traffic as the status says
// before anything else, in case the failure left the routes behind.
func (c *Controller) failed(ctx context.Context, k store.Key, cd *v1alpha1.Canary, err error) (time.Duration, bool) {
	if ctx.Err() != nil {
		return 0, false
	}
	c.mu.Lock()
	n := 1
	if st := c.canaries[k]; st != nil {
		st.failures++
		n = st.failures
		st.resync, st.meshGen = true, 0
	}
	c.mu.Unlock()
	wait := backoff(n)
	c.Log.WarnContext(ctx, "canary run failed", "canary", k.Namespace+"/"+k.Name, "err", err, "retryIn", wait)
	if cd != nil && c.Recorder != nil {
		if rerr := c.Recorder.Record(ctx, cd, v1alpha1.EventTypeWarning, "Failed", err.Error()); rerr != nil {
			c.Log.WarnContext(ctx, "cannot record event", "err", rerr)
		}
	}
	return wait, true
}

func (c *Controller) getCanary(ctx context.Context, k store.Key) (*v1alpha1.Canary, error) {
	obj, err := c.Store.Get(ctx, k)
	if err != nil {
		return nil, err
	}
	cd, ok := obj.(*v1alpha1.Canary)
	if !ok {
		return nil, fmt.Errorf("%s: store returned a %T", k, obj)
	}
	cd.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	return cd, nil
}

// observe gathers what Decide needs: the target's and the primary's revisions and
// readiness, the results the last decision asked for, a manual command, deletion.
func (c *Controller) observe(ctx context.Context, cd *v1alpha1.Canary, st *canaryState) (Observations, error) {
	c.mu.Lock()
	obs := Observations{
		Now:      c.Clock.Now(),
		Metrics:  st.metrics,
		Webhooks: st.webhooks,
		Manual:   ManualCommand(cd.Annotations[AnnotationCommand]),
		Deleted:  cd.DeletionTimestamp != nil,
		Token:    randomToken(),
	}
	c.mu.Unlock()
	rev, err := c.Target.Revision(ctx, cd)
	switch {
	case errors.Is(err, ErrTargetNotFound):
	case err != nil:
		return obs, fmt.Errorf("target revision: %w", err)
	default:
		obs.TargetExists, obs.TargetRevision = true, rev
	}
	if obs.PrimaryRevision, err = c.Target.PrimaryRevision(ctx, cd); err != nil {
		return obs, fmt.Errorf("primary revision: %w", err)
	}
	if obs.PrimaryReady, err = c.ready(ctx, cd, RolePrimary); err != nil {
		return obs, err
	}
	if obs.TargetExists {
		if obs.CanaryReady, err = c.ready(ctx, cd, RoleCanary); err != nil {
			return obs, err
		}
	}
	return obs, nil
}

func (c *Controller) ready(ctx context.Context, cd *v1alpha1.Canary, role Role) (ReadyState, error) {
	ok, msg, err := c.Target.Ready(ctx, cd, role)
	if errors.Is(err, ErrTargetNotFound) {
		return ReadyState{Message: err.Error()}, nil
	}
	if errors.Is(err, ErrStuck) {
		return ReadyState{Message: err.Error(), Stuck: true}, nil
	}
	if err != nil {
		return ReadyState{}, fmt.Errorf("%s readiness: %w", role, err)
	}
	return ReadyState{Ready: ok, Message: msg}, nil
}

// randomToken is 16 random bytes in hex, for Observations.Token.
func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
