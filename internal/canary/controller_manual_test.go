package canary_test

import (
	"context"
	"testing"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
)

func (h *harness) command(cmd canary.ManualCommand) {
	h.t.Helper()
	if _, err := canary.RequestCommand(context.Background(), h.api, ns, "podinfo", cmd); err != nil {
		h.t.Fatal(err)
	}
}

// Given releases under analysis, when promote, abort, pause, resume and retry are asked
// through the API, then each is carried out once: the annotation is gone with the
// status it led to, and nothing is ignored for being asked twice.
func TestManualCommandsRunExactlyOnce(t *testing.T) {
	h := newHarness(t)
	h.windows.set("demo/podinfo-canary", healthy)
	h.initialized(seedCanary())
	progressing := func(weight int) func() bool {
		return func() bool {
			cd := h.canary()
			return cd.Status.Phase == v1alpha1.CanaryPhaseProgressing && cd.Status.CanaryWeight == weight
		}
	}

	// promote at weight 20 skips the rest of the analysis.
	h.release("3.1.1")
	h.until("at weight 20", 20, progressing(20))
	h.command(canary.ManualPromote)
	h.until("Succeeded", 20, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseSucceeded })
	if n := h.target.promotions.Load(); n != 1 {
		t.Errorf("%d promotions after promote, want 1", n)
	}

	// pause holds the weight; resume lets it go on; abort rolls back.
	h.release("3.1.2")
	h.until("at weight 20", 20, progressing(20))
	h.command(canary.ManualPause)
	for range 6 {
		h.tick()
	}
	if cd := h.canary(); !cd.Status.Paused || cd.Status.CanaryWeight != 20 {
		t.Fatalf("paused: %v at weight %d, want paused at 20", cd.Status.Paused, cd.Status.CanaryWeight)
	}
	h.command(canary.ManualResume)
	h.until("at weight 40", 10, progressing(40))
	h.command(canary.ManualAbort)
	h.until("Failed", 10, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseFailed })
	// The status is stored before its actions run: the weights follow it.
	h.until("all traffic back on the primary", 10, func() bool { p, c := h.weights(); return p == 100 && c == 0 })

	// retry analyses the failed revision again, and it is promoted.
	h.command(canary.ManualRetry)
	h.until("Succeeded", 40, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseSucceeded })
	if n := h.target.promotions.Load(); n != 2 {
		t.Errorf("%d promotions in all, want 2", n)
	}
	for range 3 {
		h.tick()
	}
	cd := h.canary()
	if _, left := cd.Annotations[canary.AnnotationCommand]; left {
		t.Errorf("command annotation left: %v", cd.Annotations)
	}
	evs := h.events()
	for _, reason := range []string{"Paused", "Resumed", "Aborted", "Retry"} {
		if len(evs[reason]) != 1 || evs[reason][0].Count != 1 {
			t.Errorf("%s events: %d, want exactly one", reason, len(evs[reason]))
		}
	}
	if ign := evs["Ignored"]; len(ign) != 0 {
		t.Errorf("a command was seen twice: %s", ign[0].Message)
	}
}
