package canary

import (
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Observations are what the controller measured or learned since the last decision.
type Observations struct {
	// Now is the controller's clock.
	Now time.Time
	// TargetRevision is the hash of the target's current spec (the workload revision or
	// the pod template hash).
	TargetRevision string
	// TargetExists is false when the target named by spec.targetRef is missing.
	TargetExists bool
	// PrimaryRevision is the target revision the primary was last initialised or
	// promoted from, as the Target records it; empty when unknown. When known, a
	// promotion that did not take (lost in a crash) is asked for again.
	PrimaryRevision string
	// PrimaryReady and CanaryReady say whether enough instances are ready, as
	// primaryReadyThreshold and canaryReadyThreshold ask.
	PrimaryReady, CanaryReady ReadyState
	// Metrics are the results of the metric checks the previous decision asked for.
	Metrics []MetricResult
	// Webhooks are the results of the webhooks the previous decision asked for.
	Webhooks []WebhookResult
	// Manual is a command given by hand (canarymesh promote|abort|retry|pause|resume),
	// consumed by this decision.
	Manual ManualCommand
	// Deleted is true when the Canary is being deleted.
	Deleted bool
	// Token is a fresh random string, from which a decision that needs a new
	// session-affinity cookie derives its value; the decision stays a function of its
	// inputs.
	Token string
}

// ReadyState says whether the primary or the canary is ready, and if not, why.
type ReadyState struct {
	Ready   bool
	Message string
	// Stuck: the target said it will not become ready without a new revision
	// (ErrStuck); the analysis rolls back at once instead of waiting for the deadline.
	Stuck bool
}

// MetricResult is the outcome of one metric query.
type MetricResult struct {
	// Name of the metric, as in spec.analysis.metrics.
	Name string
	// Value measured.
	Value float64
	// NoData is true when the query found nothing to measure.
	NoData bool
	// Err is the query's error, empty when it succeeded.
	Err string
	// Query is the query as sent to the provider (a template's, rendered), if any.
	Query string
	// Min and Max are the bounds to judge against when the spec gives none.
	Min, Max *float64
}

// WebhookResult is the outcome of one webhook call.
type WebhookResult struct {
	Name       string
	Type       v1alpha1.WebhookType
	OK         bool // a 2xx answer
	StatusCode int
	Message    string
}

// ManualCommand is a command given by hand to a Canary.
type ManualCommand string

const (
	ManualNone ManualCommand = ""
	// ManualPromote skips the rest of the analysis and promotes now.
	ManualPromote ManualCommand = "promote"
	// ManualAbort rolls back now.
	ManualAbort ManualCommand = "abort"
	// ManualRetry analyses a failed revision again from the start.
	ManualRetry ManualCommand = "retry"
	// ManualPause holds the release where it is, weights unchanged.
	ManualPause ManualCommand = "pause"
	// ManualResume continues a paused release.
	ManualResume ManualCommand = "resume"
)

// Decision is the outcome of one step of the state machine.
type Decision struct {
	// Status is the new status, to persist BEFORE executing Actions.
	Status v1alpha1.CanaryStatus
	// Actions are to be executed in order; every one is idempotent.
	Actions []Action
}

// RequeueAfter reports when Decide wants to run again, and false when never (the
// Canary is Terminated).
func (d Decision) RequeueAfter() (time.Duration, bool) {
	for _, a := range d.Actions {
		if r, ok := a.(Requeue); ok {
			return r.After, true
		}
	}
	return 0, false
}
