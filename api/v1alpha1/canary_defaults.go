package v1alpha1

import (
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// Defaults of a Canary, Flagger's where Flagger has one.
const (
	DefaultProgressDeadlineSeconds = 600
	DefaultAnalysisInterval        = time.Minute
	DefaultAnalysisThreshold       = 1
	DefaultMaxWeight               = 100
	DefaultMirrorWeight            = 100
	DefaultReadyThreshold          = 100
	DefaultMetricInterval          = time.Minute
	DefaultWebhookTimeout          = 10 * time.Second
	DefaultSessionMaxAge           = 86400
	DefaultPortName                = "http"
)

// The same defaults as written in a manifest.
const (
	defaultAnalysisIntervalText = "1m"
	defaultMetricIntervalText   = "1m"
	defaultWebhookTimeoutText   = "10s"
)

// Analysis strategies, as Strategy reports them.
const (
	StrategyCanary    = "canary"
	StrategyABTesting = "ab-testing"
	StrategyBlueGreen = "blue-green"
)

// Default fills every unset field that has a documented default, and moves the older
// spec.canaryAnalysis to spec.analysis.
func (c *Canary) Default() {
	s := &c.Spec
	if s.Provider == "" {
		s.Provider = ProviderCanarymesh
	}
	if s.TargetRef.APIVersion == "" {
		s.TargetRef.APIVersion = targetAPIVersions[s.TargetRef.Kind]
	}
	if s.ProgressDeadlineSeconds == nil {
		d := int32(DefaultProgressDeadlineSeconds)
		s.ProgressDeadlineSeconds = &d
	}
	if s.Service.PortName == "" {
		s.Service.PortName = DefaultPortName
	}
	if s.Service.TargetPort == nil && s.Service.Port != 0 {
		tp := intstr.FromInt32(s.Service.Port)
		s.Service.TargetPort = &tp
	}
	if s.Analysis == nil && s.CanaryAnalysis != nil {
		s.Analysis, s.CanaryAnalysis = s.CanaryAnalysis, nil
	}
	if s.Analysis != nil {
		s.Analysis.Default()
	}
}

// targetAPIVersions gives the apiVersion of each target kind.
var targetAPIVersions = map[string]string{
	TargetKindDeployment: "apps/v1",
	TargetKindDaemonSet:  "apps/v1",
	TargetKindService:    "v1",
	TargetKindWorkload:   APIVersion,
}

// Default fills the analysis' unset fields.
func (a *CanaryAnalysis) Default() {
	if a.Interval == "" {
		a.Interval = defaultAnalysisIntervalText
	}
	if a.Threshold == 0 {
		a.Threshold = DefaultAnalysisThreshold
	}
	if a.MaxWeight == 0 && a.StepWeight > 0 && len(a.StepWeights) == 0 {
		a.MaxWeight = DefaultMaxWeight
	}
	if a.Mirror && a.MirrorWeight == 0 {
		a.MirrorWeight = DefaultMirrorWeight
	}
	if a.PrimaryReadyThreshold == nil {
		v := DefaultReadyThreshold
		a.PrimaryReadyThreshold = &v
	}
	if a.CanaryReadyThreshold == nil {
		v := DefaultReadyThreshold
		a.CanaryReadyThreshold = &v
	}
	if a.NoData == "" {
		a.NoData = NoDataFail
	}
	if sa := a.SessionAffinity; sa != nil && sa.MaxAge == 0 {
		sa.MaxAge = DefaultSessionMaxAge
	}
	for i := range a.Metrics {
		m := &a.Metrics[i]
		if m.Interval == "" {
			m.Interval = defaultMetricIntervalText
		}
		if m.ThresholdRange == nil && m.Threshold != 0 {
			t := m.Threshold
			if m.Name == MetricRequestSuccessRate {
				m.ThresholdRange = &CanaryThresholdRange{Min: &t}
			} else {
				m.ThresholdRange = &CanaryThresholdRange{Max: &t}
			}
		}
	}
	for i := range a.Webhooks {
		w := &a.Webhooks[i]
		if w.Type == "" {
			w.Type = WebhookRollout
		}
		if w.Timeout == "" {
			w.Timeout = defaultWebhookTimeoutText
		}
	}
	for i := range a.Alerts {
		if a.Alerts[i].Severity == "" {
			a.Alerts[i].Severity = AlertSeverityInfo
		}
	}
}

// GetAnalysis returns spec.analysis, or the older spec.canaryAnalysis when only that is
// set; nil when neither is.
func (c *Canary) GetAnalysis() *CanaryAnalysis {
	if c.Spec.Analysis != nil {
		return c.Spec.Analysis
	}
	return c.Spec.CanaryAnalysis
}

// SkipAnalysis reports whether new revisions are promoted without checks: when asked
// to, or when there is no analysis at all.
func (c *Canary) SkipAnalysis() bool {
	return c.Spec.SkipAnalysis || c.GetAnalysis() == nil
}

// GetServiceNames returns the names of the apex service and of the primary and canary
// services (and virtual nodes) derived from it.
func (c *Canary) GetServiceNames() (apex, primary, canary string) {
	apex = c.Spec.TargetRef.Name
	if c.Spec.Service.Name != "" {
		apex = c.Spec.Service.Name
	}
	return apex, apex + "-primary", apex + "-canary"
}

// GetProgressDeadline returns progressDeadlineSeconds as a duration (default 600s).
func (c *Canary) GetProgressDeadline() time.Duration {
	if p := c.Spec.ProgressDeadlineSeconds; p != nil {
		return time.Duration(*p) * time.Second
	}
	return DefaultProgressDeadlineSeconds * time.Second
}

// GetAnalysisInterval returns the analysis interval (default 1m). Unlike Flagger it
// does not raise intervals below 10s: Validate refuses those below MinAnalysisInterval.
func (c *Canary) GetAnalysisInterval() time.Duration {
	a := c.GetAnalysis()
	if a == nil {
		return DefaultAnalysisInterval
	}
	return parseDurationOr(a.Interval, DefaultAnalysisInterval)
}

// GetAnalysisThreshold returns the number of failed checks that rolls back (default 1).
func (c *Canary) GetAnalysisThreshold() int {
	if a := c.GetAnalysis(); a != nil && a.Threshold > 0 {
		return a.Threshold
	}
	return DefaultAnalysisThreshold
}

// GetMaxWeight returns the highest canary weight: the last of stepWeights, else
// maxWeight, else 100.
func (c *Canary) GetMaxWeight() int {
	a := c.GetAnalysis()
	switch {
	case a == nil:
		return DefaultMaxWeight
	case len(a.StepWeights) > 0:
		return a.StepWeights[len(a.StepWeights)-1]
	case a.MaxWeight > 0:
		return a.MaxWeight
	}
	return DefaultMaxWeight
}

// GetStepWeightPromotion returns the weight moved back to the primary per interval after
// promotion: all 100 at once unless stepWeightPromotion says otherwise.
func (c *Canary) GetStepWeightPromotion() int {
	if a := c.GetAnalysis(); a != nil && a.StepWeightPromotion > 0 {
		return a.StepWeightPromotion
	}
	return 100
}

// GetMirrorWeight returns the percentage of traffic mirrored, 0 without mirroring.
func (c *Canary) GetMirrorWeight() int {
	a := c.GetAnalysis()
	switch {
	case a == nil || !a.Mirror:
		return 0
	case a.MirrorWeight > 0:
		return a.MirrorWeight
	}
	return DefaultMirrorWeight
}

// GetAnalysisPrimaryReadyThreshold returns the percentage of primary instances that
// must be ready (default 100).
func (c *Canary) GetAnalysisPrimaryReadyThreshold() int {
	if a := c.GetAnalysis(); a != nil && a.PrimaryReadyThreshold != nil {
		return *a.PrimaryReadyThreshold
	}
	return DefaultReadyThreshold
}

// GetAnalysisCanaryReadyThreshold returns the percentage of canary instances that must
// be ready (default 100).
func (c *Canary) GetAnalysisCanaryReadyThreshold() int {
	if a := c.GetAnalysis(); a != nil && a.CanaryReadyThreshold != nil {
		return *a.CanaryReadyThreshold
	}
	return DefaultReadyThreshold
}

// GetNoData returns what a metric check without data counts as (default fail).
func (c *Canary) GetNoData() NoDataPolicy {
	if a := c.GetAnalysis(); a != nil && a.NoData != "" {
		return a.NoData
	}
	return NoDataFail
}

// Strategy names the analysis strategy the fields select: canary when stepWeight or
// stepWeights are set, ab-testing for iterations with match, blue-green for iterations
// alone; empty when none is selected.
func (a *CanaryAnalysis) Strategy() string {
	switch {
	case a.StepWeight > 0 || len(a.StepWeights) > 0:
		return StrategyCanary
	case a.Iterations > 0 && len(a.Match) > 0:
		return StrategyABTesting
	case a.Iterations > 0:
		return StrategyBlueGreen
	}
	return ""
}

// GetInterval returns the metric's window (default 1m).
func (m *CanaryMetric) GetInterval() time.Duration {
	return parseDurationOr(m.Interval, DefaultMetricInterval)
}

// IsBuiltin reports whether the metric is measured by the proxies themselves.
func (m *CanaryMetric) IsBuiltin() bool {
	return m.TemplateRef == nil && m.Query == "" &&
		(m.Name == MetricRequestSuccessRate || m.Name == MetricRequestDuration)
}

// GetType returns the webhook's type (default rollout).
func (w *CanaryWebhook) GetType() WebhookType {
	if w.Type == "" {
		return WebhookRollout
	}
	return w.Type
}

// GetTimeout returns the webhook's timeout (default 10s).
func (w *CanaryWebhook) GetTimeout() time.Duration {
	return parseDurationOr(w.Timeout, DefaultWebhookTimeout)
}

// GetMaxAge returns the cookie's lifetime (default a day).
func (s *SessionAffinity) GetMaxAge() time.Duration {
	if s.MaxAge > 0 {
		return time.Duration(s.MaxAge) * time.Second
	}
	return DefaultSessionMaxAge * time.Second
}

func parseDurationOr(s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return def
	}
	return d
}
