package canary

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// rewatchDelay is the pause before listing again after a watch failed.
const rewatchDelay = time.Second

// watch lists Canaries and Workloads, queues every Canary, then follows both kinds
// until ctx ends, listing again whenever a watch breaks.
func (c *Controller) watch(ctx context.Context) {
	for ctx.Err() == nil {
		if err := c.follow(ctx); err != nil && ctx.Err() == nil {
			c.Log.WarnContext(ctx, "canary watch ended; listing again", "err", err)
			t := time.NewTimer(rewatchDelay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
}

func (c *Controller) follow(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	canaries, rv, err := c.Store.List(ctx, store.Filter{Kind: "Canary"})
	if err != nil {
		return err
	}
	workloads, wrv, err := c.Store.List(ctx, store.Filter{Kind: "Workload"})
	if err != nil {
		return err
	}
	cev, err := c.Store.Watch(wctx, store.Filter{Kind: "Canary"}, rv)
	if err != nil {
		return err
	}
	wev, err := c.Store.Watch(wctx, store.Filter{Kind: "Workload"}, wrv)
	if err != nil {
		return err
	}
	c.resyncCanaries(canaries)
	for _, w := range workloads {
		c.workloadChanged(w)
	}
	for {
		select {
		case ev, ok := <-cev:
			if !ok {
				return fmt.Errorf("canary watch closed")
			}
			c.canaryEvent(ev)
		case ev, ok := <-wev:
			if !ok {
				return fmt.Errorf("workload watch closed")
			}
			if ev.Type != store.Deleted {
				c.workloadChanged(ev.Object)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// resyncCanaries queues every listed Canary and forgets those that are gone.
func (c *Controller) resyncCanaries(objs []v1alpha1.Object) {
	seen := map[store.Key]bool{}
	for _, o := range objs {
		k := canaryKey(o)
		seen[k] = true
		c.queue.add(k)
	}
	c.mu.Lock()
	var gone []store.Key
	for k := range c.canaries {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	c.mu.Unlock()
	for _, k := range gone {
		c.forget(k)
	}
}

func (c *Controller) canaryEvent(ev store.Event) {
	k := canaryKey(ev.Object)
	if ev.Type == store.Deleted {
		c.Log.Info("canary deleted", "canary", k.Namespace+"/"+k.Name)
		c.forget(k)
		return
	}
	c.mu.Lock()
	st := c.canaries[k]
	own := st != nil && st.written != "" && st.written == strconv.FormatUint(ev.ResourceVersion, 10)
	c.mu.Unlock()
	if !own {
		c.queue.add(k)
	}
}

// workloadChanged runs the canaries of a Workload when its revision, generation or
// readiness changed: a new revision starts a release at once, and a primary or canary
// that became ready moves the release on without waiting for a poll.
func (c *Controller) workloadChanged(o v1alpha1.Object) {
	w, ok := o.(*v1alpha1.Workload)
	if !ok {
		return
	}
	wk := store.Key{Kind: "Workload", Namespace: w.Namespace, Name: w.Name}
	sig := fmt.Sprintf("%s/%d/%d/%d/%d", w.Revision(), w.Generation, w.Status.ObservedGeneration,
		w.Status.ReadyReplicas, w.GetReplicas())
	for _, in := range w.Status.Instances {
		if in.Ready {
			sig += "/" + in.Revision
		}
	}
	c.mu.Lock()
	watchers := c.byWorkload[wk]
	changed := len(watchers) > 0 && c.workloads[wk] != sig
	var keys []store.Key
	if changed {
		c.workloads[wk] = sig
		for k := range watchers {
			keys = append(keys, k)
		}
	}
	c.mu.Unlock()
	for _, k := range keys {
		c.queue.add(k)
	}
}

func canaryKey(o v1alpha1.Object) store.Key {
	return store.Key{Kind: "Canary", Namespace: o.GetNamespace(), Name: o.GetName()}
}
