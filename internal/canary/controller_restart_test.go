package canary_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Given a release at weight 40 whose route change was lost (the process died after the
// status was written), when a new controller starts over the same store, then the route
// is put back to 40 and the release goes on from there, not from the start.
func TestRestartResumesAtTheSameWeight(t *testing.T) {
	h := newHarness(t)
	h.windows.set("demo/podinfo-canary", healthy)
	h.initialized(seedCanary())
	h.release("3.1.1")
	h.until("at weight 40", 30, func() bool { return h.canary().Status.CanaryWeight == 40 })
	h.stop()

	// The lost action: the router still routes everything to the primary.
	vr := h.get("VirtualRouter", "podinfo").(*v1alpha1.VirtualRouter)
	for i := range vr.Spec.Routes[0].HTTPRoute.Action.WeightedTargets {
		t := &vr.Spec.Routes[0].HTTPRoute.Action.WeightedTargets[i]
		t.Weight = map[string]int64{"podinfo-primary": 100, "podinfo-canary": 0}[t.VirtualNodeRef.Name]
	}
	if _, err := h.st.Update(context.Background(), vr); err != nil {
		t.Fatal(err)
	}

	h.start()
	if p, c := h.weights(); p != 60 || c != 40 {
		t.Errorf("weights %d/%d after the restart, want 60/40 as the status says", p, c)
	}
	var seen []int
	h.until("Succeeded", 30, func() bool {
		cd := h.canary()
		if w := cd.Status.CanaryWeight; len(seen) == 0 || seen[len(seen)-1] != w {
			seen = append(seen, w)
		}
		return cd.Status.Phase == v1alpha1.CanaryPhaseSucceeded
	})
	if seen[0] != 40 || seen[1] != 60 {
		t.Errorf("weights after the restart %v, want 40 then 60", seen)
	}
}

// Given a release being promoted, when the controller dies right after the primary got
// the new spec, or right before, then a new controller completes the release, and the
// primary is promoted exactly once.
func TestRestartDuringPromotingPromotesOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after bool // crash after the promotion happened, else before it
	}{
		{"after the promotion", true},
		{"before the promotion", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.windows.set("demo/podinfo-canary", healthy)
			h.initialized(seedCanary())
			var crashed atomic.Bool
			kill := h.cancel
			crash := func() {
				if !crashed.Swap(true) {
					kill() // the process is killed here
				}
			}
			if tc.after {
				h.target.afterPromote = crash
			} else {
				h.target.beforePromote = func() error {
					if crashed.Load() {
						return nil
					}
					crash()
					return errors.New("killed")
				}
			}
			h.release("3.1.1")
			rev := h.workload("podinfo").Revision()
			h.until("crashed", 40, crashed.Load)
			h.stop()
			if p := h.canary().Status.Phase; p != v1alpha1.CanaryPhasePromoting {
				t.Fatalf("phase %s at the crash, want Promoting", p)
			}

			h.start()
			h.until("Succeeded", 20, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseSucceeded })
			if n := h.target.promotions.Load(); n != 1 {
				t.Errorf("%d promotions, want exactly 1", n)
			}
			if got := h.workload("podinfo-primary").Annotations["canarymesh.dev/promoted-revision"]; got != rev {
				t.Errorf("primary runs %s, want %s", got, rev)
			}
			if p, c := h.weights(); p != 100 || c != 0 {
				t.Errorf("weights %d/%d, want 100/0", p, c)
			}
		})
	}
}
