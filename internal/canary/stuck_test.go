package canary

import (
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// A canary that is merely not ready yet is waited for until the deadline; one the target
// says is stuck rolls back at once, with the target's reason, and the primary is not
// judged by it.
func TestStuckCanary(t *testing.T) {
	st := idleStatus(v1alpha1.CanaryPhaseProgressing, "r2", "r1")

	slow := obsAt(time.Second, "r2")
	slow.CanaryReady = ReadyState{Message: "0 of 2 instances ready"}
	cd := seedCanary()
	cd.Status = st
	dec := Decide(cd, slow)
	wantPhase(t, dec, v1alpha1.CanaryPhaseProgressing)
	wantMessage(t, dec, "0 of 2 instances ready")

	stuck := obsAt(time.Second, "r2")
	stuck.CanaryReady = ReadyState{Message: "CommandNotFound: no such file", Stuck: true}
	dec = Decide(cd, stuck)
	wantPhase(t, dec, v1alpha1.CanaryPhaseFailed)
	wantMessage(t, dec, "canary not ready: CommandNotFound: no such file")
	if !hasAction(dec.Actions, ScaleCanary{ToZero: true}) {
		t.Errorf("actions %v: the stuck canary is not scaled to zero", dec.Actions)
	}

	primaryStuck := obsAt(time.Second, "r2")
	primaryStuck.PrimaryReady = ReadyState{Message: "ProgressDeadlineExceeded", Stuck: true}
	wantPhase(t, Decide(cd, primaryStuck), v1alpha1.CanaryPhaseProgressing)
}
