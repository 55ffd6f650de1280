package v1alpha1

// Built-in metrics: measured from the proxies' own counters for the canary, with no
// query and no template.
const (
	// MetricRequestSuccessRate is the percentage of canary requests not answered 5xx.
	MetricRequestSuccessRate = "request-success-rate"
	// MetricRequestDuration is the canary's P99 request duration in milliseconds.
	MetricRequestDuration = "request-duration"
)

// NoDataPolicy says what a metric check that found no data counts as.
type NoDataPolicy string

const (
	// NoDataFail counts the check as failed, as Flagger does.
	NoDataFail NoDataPolicy = "fail"
	// NoDataSkip leaves the check out of this interval's verdict.
	NoDataSkip NoDataPolicy = "skip"
	// NoDataWait holds the analysis where it is, neither advancing nor counting a
	// failure, until the metric has data; progressDeadlineSeconds still applies.
	NoDataWait NoDataPolicy = "wait"
)

// WebhookType says when a webhook is called and what its answer does.
// +kubebuilder:validation:Enum=confirm-rollout;pre-rollout;rollout;confirm-traffic-increase;confirm-promotion;post-rollout;rollback;event
type WebhookType string

const (
	// WebhookConfirmRollout gates the start of an analysis until it answers 2xx.
	WebhookConfirmRollout WebhookType = "confirm-rollout"
	// WebhookPreRollout runs once before traffic reaches the canary; a failure counts
	// as a failed check.
	WebhookPreRollout WebhookType = "pre-rollout"
	// WebhookRollout runs at every interval of the analysis, like a metric check.
	WebhookRollout WebhookType = "rollout"
	// WebhookConfirmTrafficIncrease gates each traffic step until it answers 2xx.
	WebhookConfirmTrafficIncrease WebhookType = "confirm-traffic-increase"
	// WebhookConfirmPromotion gates promotion until it answers 2xx.
	WebhookConfirmPromotion WebhookType = "confirm-promotion"
	// WebhookPostRollout runs once after promotion or rollback.
	WebhookPostRollout WebhookType = "post-rollout"
	// WebhookRollback rolls the canary back when it answers 2xx.
	WebhookRollback WebhookType = "rollback"
	// WebhookEvent receives every event of the canary.
	WebhookEvent WebhookType = "event"
)

// WebhookTypes lists every webhook type in the order of a release.
var WebhookTypes = []WebhookType{
	WebhookConfirmRollout, WebhookPreRollout, WebhookRollout, WebhookConfirmTrafficIncrease,
	WebhookConfirmPromotion, WebhookPostRollout, WebhookRollback, WebhookEvent,
}

// AlertSeverity filters which events an alert sends.
// +kubebuilder:validation:Enum=info;warn;error
type AlertSeverity string

const (
	AlertSeverityInfo  AlertSeverity = "info"
	AlertSeverityWarn  AlertSeverity = "warn"
	AlertSeverityError AlertSeverity = "error"
)

// CanaryAnalysis says how a new revision is judged and how traffic moves to it. The
// strategy follows from the fields set: stepWeight or stepWeights shift traffic
// progressively (canary release); iterations with match route matching requests only
// (A/B testing); iterations alone switch all traffic after the checks (blue/green).
type CanaryAnalysis struct {
	// Interval between two rounds of checks, as a Go duration; defaults to 1m.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	Interval string `json:"interval,omitempty"`
	// Iterations is the number of successful rounds before promotion, for A/B testing
	// and blue/green.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Iterations int `json:"iterations,omitempty"`
	// Mirror copies traffic to the canary, whose answers are discarded: for the first
	// round of a canary release, or throughout a blue/green analysis.
	// +optional
	Mirror bool `json:"mirror,omitempty"`
	// MirrorWeight is the percentage of traffic mirrored; defaults to 100 with mirror.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MirrorWeight int `json:"mirrorWeight,omitempty"`
	// MaxWeight is the highest percentage of traffic the canary gets before promotion;
	// defaults to 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxWeight int `json:"maxWeight,omitempty"`
	// StepWeight is the percentage of traffic added after each successful round.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	StepWeight int `json:"stepWeight,omitempty"`
	// StepWeights are the successive canary weights, used instead of stepWeight and
	// maxWeight; the last one is the maximum.
	// +optional
	// +kubebuilder:validation:items:Minimum=0
	// +kubebuilder:validation:items:Maximum=100
	StepWeights []int `json:"stepWeights,omitempty"`
	// StepWeightPromotion is the percentage of traffic moved back to the primary at
	// each interval after promotion; 0 moves it all at once.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	StepWeightPromotion int `json:"stepWeightPromotion,omitempty"`
	// Threshold is the number of failed checks that rolls the canary back; defaults to 1.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Threshold int `json:"threshold,omitempty"`
	// PrimaryReadyThreshold is the percentage of primary instances that must be ready;
	// defaults to 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	PrimaryReadyThreshold *int `json:"primaryReadyThreshold,omitempty"`
	// CanaryReadyThreshold is the percentage of canary instances that must be ready;
	// defaults to 100.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	CanaryReadyThreshold *int `json:"canaryReadyThreshold,omitempty"`
	// Alerts send the canary's events to alert providers.
	// +optional
	Alerts []CanaryAlert `json:"alerts,omitempty"`
	// Metrics are checked at every interval.
	// +optional
	Metrics []CanaryMetric `json:"metrics,omitempty"`
	// Webhooks are called at the points of the release their type names.
	// +optional
	Webhooks []CanaryWebhook `json:"webhooks,omitempty"`
	// Match selects the requests routed to the canary in A/B testing.
	// +optional
	Match []HTTPMatchRequest `json:"match,omitempty"`
	// SessionAffinity keeps a user who reached the canary on it for the rest of the
	// release, through a cookie.
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
	// NoData says what a metric check that found no data counts as: fail (the default,
	// as in Flagger), skip or wait. A Canarymesh extension.
	// +optional
	// +kubebuilder:validation:Enum=fail;skip;wait
	NoData NoDataPolicy `json:"noData,omitempty"`
}

// SessionAffinity configures the cookie that pins a user to the canary.
type SessionAffinity struct {
	// CookieName is the name of the cookie that pins a user to the canary.
	CookieName string `json:"cookieName"`
	// PrimaryCookieName is the name of the cookie that pins a user to the primary.
	// +optional
	PrimaryCookieName string `json:"primaryCookieName,omitempty"`
	// Domain of the cookie.
	// +optional
	Domain string `json:"domain,omitempty"`
	// HTTPOnly hides the cookie from scripts.
	// +optional
	HTTPOnly bool `json:"httpOnly,omitempty"`
	// MaxAge of the cookie in seconds; defaults to 86400 (a day).
	// +optional
	MaxAge int `json:"maxAge,omitempty"`
	// Partitioned stores the cookie in partitioned storage.
	// +optional
	Partitioned bool `json:"partitioned,omitempty"`
	// Path of the cookie.
	// +optional
	Path string `json:"path,omitempty"`
	// SameSite is Strict, Lax or None.
	// +optional
	SameSite string `json:"sameSite,omitempty"`
	// Secure sends the cookie over HTTPS only.
	// +optional
	Secure bool `json:"secure,omitempty"`
}

// CanaryMetric is one metric check: a value measured over Interval that must lie in
// ThresholdRange.
type CanaryMetric struct {
	// Name is a built-in metric (request-success-rate, request-duration), or any name
	// when TemplateRef or Query says how to measure it.
	Name string `json:"name"`
	// Interval is the window measured, as a Go duration; defaults to 1m.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	Interval string `json:"interval,omitempty"`
	// Threshold is the older single bound: a minimum for request-success-rate, a maximum
	// otherwise. Default turns it into ThresholdRange.
	// +optional
	// +kubebuilder:validation:Type=number
	Threshold float64 `json:"threshold,omitempty"`
	// ThresholdRange holds the accepted values.
	// +optional
	ThresholdRange *CanaryThresholdRange `json:"thresholdRange,omitempty"`
	// Query is a Prometheus query, the older alternative to TemplateRef.
	// +optional
	Query string `json:"query,omitempty"`
	// TemplateRef names the MetricTemplate that measures this metric.
	// +optional
	TemplateRef *CrossNamespaceObjectReference `json:"templateRef,omitempty"`
	// TemplateVariables are passed to the template's query.
	// +optional
	TemplateVariables map[string]string `json:"templateVariables,omitempty"`
}

// CanaryThresholdRange bounds a metric's accepted values; either bound may be open.
type CanaryThresholdRange struct {
	// +optional
	// +kubebuilder:validation:Type=number
	Min *float64 `json:"min,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=number
	Max *float64 `json:"max,omitempty"`
}

// CanaryAlert sends the canary's events to an AlertProvider.
type CanaryAlert struct {
	// Name of the alert.
	Name string `json:"name"`
	// Severity is the lowest level sent: info (the default), warn or error.
	// +optional
	Severity AlertSeverity `json:"severity,omitempty"`
	// ProviderRef names the AlertProvider.
	ProviderRef CrossNamespaceObjectReference `json:"providerRef"`
}

// CanaryWebhook is an HTTP endpoint called at a point of the release. It receives a
// JSON payload (name, namespace, phase, checksum, metadata); a 2xx answer passes.
type CanaryWebhook struct {
	// Type says when the webhook is called; defaults to rollout.
	// +optional
	Type WebhookType `json:"type,omitempty"`
	// Name of the webhook.
	Name string `json:"name"`
	// URL called with POST.
	URL string `json:"url"`
	// MuteAlert stops alerts caused by this webhook.
	// +optional
	MuteAlert bool `json:"muteAlert,omitempty"`
	// Timeout of one call, as a Go duration; defaults to 10s.
	// +optional
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	Timeout string `json:"timeout,omitempty"`
	// Retries is the number of further attempts after a failed call.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Retries int `json:"retries,omitempty"`
	// DisableTLS skips verification of the endpoint's certificate.
	// +optional
	DisableTLS bool `json:"disableTLS,omitempty"`
	// Metadata is sent in the payload as given.
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
}
