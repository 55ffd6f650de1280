package canary

import (
	"context"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Propagation tells when the proxies run the routes the store holds. Route weights are
// written to the store, compiled into snapshots and pushed to the proxies, which
// acknowledge each version; until they have, a proxy may still send requests to a
// canary whose weight was just set to zero.
type Propagation interface {
	// WaitApplied returns nil once every connected proxy runs a snapshot compiled from
	// the store as it was when WaitApplied was called, or an error naming the proxies
	// still behind when ctx ends first.
	WaitApplied(ctx context.Context) error
}

// DefaultPropagationTimeout bounds the wait for the proxies before the canary is
// scaled down (Controller.PropagationTimeout).
const DefaultPropagationTimeout = 10 * time.Second

// waitForRoutes waits, at most PropagationTimeout, until the proxies run the routes the
// decision just wrote, so that the canary is scaled to zero only once no proxy sends it
// requests: scaling it down first would answer the requests still routed to it with 503.
// A proxy that does not confirm in time (gone, or rejecting the snapshot) does not hold
// the release: the wait ends with a warning and the canary is scaled down.
func (c *Controller) waitForRoutes(ctx context.Context, cd *v1alpha1.Canary) {
	if c.Propagation == nil {
		return
	}
	timeout := c.PropagationTimeout
	if timeout <= 0 {
		timeout = DefaultPropagationTimeout
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	name := cd.Namespace + "/" + cd.Name
	if err := c.Propagation.WaitApplied(wctx); err != nil {
		c.Log.WarnContext(ctx, "proxies did not confirm the new routes in time; scaling the canary down anyway",
			"canary", name, "timeout", timeout, "err", err)
		return
	}
	c.Log.InfoContext(ctx, "proxies run the new routes; scaling the canary down", "canary", name,
		"waited", time.Since(start).Round(time.Millisecond))
}

// scaleCanaryDown scales the canary to zero (or rolls the target back after a failed
// release) once the proxies run the routes that take its traffic away.
func (c *Controller) scaleCanaryDown(ctx context.Context, cd *v1alpha1.Canary) error {
	c.waitForRoutes(ctx, cd)
	if cd.Status.Phase == v1alpha1.CanaryPhaseFailed {
		return c.Target.Rollback(ctx, cd)
	}
	return c.Target.ScaleCanary(ctx, cd, 0)
}
