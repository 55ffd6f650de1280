package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CanaryPhase is where a Canary is in its release cycle.
type CanaryPhase string

const (
	// CanaryPhaseInitializing: the primary, its services and routes are being created.
	CanaryPhaseInitializing CanaryPhase = "Initializing"
	// CanaryPhaseInitialized: the primary serves all traffic; the first revision is
	// initialised, never analysed.
	CanaryPhaseInitialized CanaryPhase = "Initialized"
	// CanaryPhaseWaiting: a confirm-rollout webhook holds the release.
	CanaryPhaseWaiting CanaryPhase = "Waiting"
	// CanaryPhaseProgressing: the analysis of a new revision is under way.
	CanaryPhaseProgressing CanaryPhase = "Progressing"
	// CanaryPhaseWaitingPromotion: a confirm-promotion webhook holds the promotion.
	CanaryPhaseWaitingPromotion CanaryPhase = "WaitingPromotion"
	// CanaryPhasePromoting: the canary's spec is being copied to the primary.
	CanaryPhasePromoting CanaryPhase = "Promoting"
	// CanaryPhaseFinalising: traffic is moving back to the promoted primary.
	CanaryPhaseFinalising CanaryPhase = "Finalising"
	// CanaryPhaseSucceeded: the new revision was promoted.
	CanaryPhaseSucceeded CanaryPhase = "Succeeded"
	// CanaryPhaseFailed: the new revision was rolled back.
	CanaryPhaseFailed CanaryPhase = "Failed"
	// CanaryPhaseTerminating: the Canary is being deleted and its changes reverted.
	CanaryPhaseTerminating CanaryPhase = "Terminating"
	// CanaryPhaseTerminated: the Canary's changes were reverted; it can go.
	CanaryPhaseTerminated CanaryPhase = "Terminated"
)

// CanaryPhases lists every phase in the order of a release.
var CanaryPhases = []CanaryPhase{
	CanaryPhaseInitializing, CanaryPhaseInitialized, CanaryPhaseWaiting, CanaryPhaseProgressing,
	CanaryPhaseWaitingPromotion, CanaryPhasePromoting, CanaryPhaseFinalising, CanaryPhaseSucceeded,
	CanaryPhaseFailed, CanaryPhaseTerminating, CanaryPhaseTerminated,
}

// ConditionPromoted is the Canary condition type that reports the last release: its
// reason is the phase that ended it, as in Flagger.
const ConditionPromoted = "Promoted"

// CanaryStatus is the observed state of a Canary: Flagger's fields, plus what a user
// needs to see why it is where it is (the last metric values and webhook results).
type CanaryStatus struct {
	// ObservedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase of the release.
	// +optional
	Phase CanaryPhase `json:"phase"`
	// FailedChecks counted in the current analysis.
	// +optional
	FailedChecks int `json:"failedChecks"`
	// CanaryWeight is the percentage of traffic the canary gets now.
	// +optional
	CanaryWeight int `json:"canaryWeight"`
	// Iterations is the number of successful rounds of the current analysis.
	// +optional
	Iterations int `json:"iterations"`
	// TrackedConfigs holds a checksum of every ConfigMap and Secret the target uses, by
	// name, so that a change to them starts a release too.
	// +optional
	TrackedConfigs map[string]string `json:"trackedConfigs,omitempty"`
	// LastAppliedSpec is the hash of the target revision last seen.
	// +optional
	LastAppliedSpec string `json:"lastAppliedSpec,omitempty"`
	// LastPromotedSpec is the hash of the target revision last promoted; a change back
	// to it is not analysed again.
	// +optional
	LastPromotedSpec string `json:"lastPromotedSpec,omitempty"`
	// LastTrackedRevision is the target revision the analysis is fenced on.
	// +optional
	LastTrackedRevision string `json:"lastTrackedRevision,omitempty"`
	// LastTransitionTime is when Phase last changed.
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
	// SessionAffinityCookie is the cookie of the current release that pins to the canary.
	// +optional
	SessionAffinityCookie string `json:"sessionAffinityCookie,omitempty"`
	// PrimarySessionAffinityCookie is the cookie of the current release that pins to
	// the primary.
	// +optional
	PrimarySessionAffinityCookie string `json:"primarySessionAffinityCookie,omitempty"`
	// PreviousSessionAffinityCookie is the canary cookie of the previous release, expired
	// on sight.
	// +optional
	PreviousSessionAffinityCookie string `json:"previousSessionAffinityCookie,omitempty"`
	// Message says in a sentence why the Canary is in its phase.
	// +optional
	Message string `json:"message,omitempty"`
	// LastMetrics holds the latest result of every metric check, in spec order.
	// +optional
	LastMetrics []CanaryMetricResult `json:"lastMetrics,omitempty"`
	// LastWebhooks holds the latest result of every webhook called.
	// +optional
	LastWebhooks []CanaryWebhookResult `json:"lastWebhooks,omitempty"`
	// Conditions: Promoted, and Ready when the Canary is valid and resolved.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// The fields below are the analysis' own bookkeeping (a Canarymesh extension): they
	// let a restarted controller resume exactly where the last persisted status left it.

	// LastStepTime is when the release last took a paced step: a round of checks judged,
	// or a promotion traffic step. The next is due one analysis interval later.
	// +optional
	LastStepTime *metav1.Time `json:"lastStepTime,omitempty"`
	// ChecksRequestedTime is when the controller was asked to run the webhooks and metric
	// checks of the current round; set while their results are awaited.
	// +optional
	ChecksRequestedTime *metav1.Time `json:"checksRequestedTime,omitempty"`
	// CanaryReadySince is when the canary of the revision under analysis was first found
	// ready. Metric checks look back no further than this, whatever their interval: the
	// requests that failed while the canary was scaled to zero or starting (a load test
	// still calling it, say) are not the new revision's.
	// +optional
	CanaryReadySince *metav1.Time `json:"canaryReadySince,omitempty"`
	// StalledSince is when the release was first held without progress by a primary or
	// canary that is not ready, or by metrics without data under noData: wait;
	// progressDeadlineSeconds counts from it.
	// +optional
	StalledSince *metav1.Time `json:"stalledSince,omitempty"`
	// PreRolloutPassed is true once the pre-rollout webhooks of the current analysis
	// passed, so that they run once per analysis.
	// +optional
	PreRolloutPassed bool `json:"preRolloutPassed,omitempty"`
	// Mirrored is true while traffic is mirrored to the canary.
	// +optional
	Mirrored bool `json:"mirrored,omitempty"`
	// Paused is true while the release is paused by hand (canarymesh pause); weights
	// stay where they are until it is resumed.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// CanaryMetricResult is the latest result of one metric check.
type CanaryMetricResult struct {
	// Name of the metric, as in spec.analysis.metrics.
	Name string `json:"name"`
	// Value measured; meaningless when Message says there was no data.
	// +kubebuilder:validation:Type=number
	Value float64 `json:"value"`
	// ThresholdMin is the lowest accepted value, if any.
	// +optional
	// +kubebuilder:validation:Type=number
	ThresholdMin *float64 `json:"thresholdMin,omitempty"`
	// ThresholdMax is the highest accepted value, if any.
	// +optional
	// +kubebuilder:validation:Type=number
	ThresholdMax *float64 `json:"thresholdMax,omitempty"`
	// Passed is true when the value lay in the range.
	Passed bool `json:"passed"`
	// Message explains a failure: out of range, no data, or the query's error.
	// +optional
	Message string `json:"message,omitempty"`
	// Query is the query sent to the metric provider, after rendering the template's
	// variables (Canarymesh extension).
	// +optional
	Query string `json:"query,omitempty"`
	// Time of the measurement.
	Time metav1.Time `json:"time"`
}

// CanaryWebhookResult is the latest result of one webhook.
type CanaryWebhookResult struct {
	// Name of the webhook, as in spec.analysis.webhooks.
	Name string `json:"name"`
	// Type of the webhook.
	Type WebhookType `json:"type"`
	// StatusCode answered, 0 when no answer came.
	// +optional
	StatusCode int `json:"statusCode,omitempty"`
	// Passed is true on a 2xx answer.
	Passed bool `json:"passed"`
	// Message holds the start of the answer's body, or the error of the call.
	// +optional
	Message string `json:"message,omitempty"`
	// Time of the call.
	Time metav1.Time `json:"time"`
}
