package canary

import (
	"fmt"
	"math"
	"strconv"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// verdict is the judgement of one round's results.
type verdict struct {
	rollbackBy string                          // a rollback webhook that answered 2xx
	failures   []string                        // why checks failed, one entry per check
	alerting   bool                            // a failure that is not muted
	noData     []string                        // metrics without data under noData: wait
	closed     map[v1alpha1.WebhookType]string // a closed gate → the first webhook holding it
}

func (v *verdict) fail(why string, alert bool) {
	v.failures = append(v.failures, why)
	v.alerting = v.alerting || alert
}

// collect judges the results of the checks the plan asked for. A check whose result is
// missing fails; a gate whose answer is missing stays closed.
func (d *decider) collect(p plan) verdict {
	v := verdict{closed: map[v1alpha1.WebhookType]string{}}
	for _, t := range p.hooks {
		for i := range d.an.Webhooks {
			if h := &d.an.Webhooks[i]; h.GetType() == t {
				d.collectHook(&v, h)
			}
		}
	}
	if p.metrics {
		d.collectMetrics(&v)
	}
	return v
}

func (d *decider) collectHook(v *verdict, h *v1alpha1.CanaryWebhook) {
	t := h.GetType()
	r, ok := d.hookResult(h.Name, t)
	passed := ok && r.OK
	switch t {
	case v1alpha1.WebhookRollback:
		if passed && v.rollbackBy == "" {
			v.rollbackBy = h.Name
		}
	case v1alpha1.WebhookPreRollout, v1alpha1.WebhookRollout:
		if !passed {
			v.fail(hookFailure(h.Name, t, r, ok), !h.MuteAlert)
		}
	default:
		if !passed && v.closed[t] == "" {
			v.closed[t] = h.Name
		}
	}
}

func hookFailure(name string, t v1alpha1.WebhookType, r WebhookResult, ok bool) string {
	switch {
	case !ok:
		return fmt.Sprintf("%s webhook %s: no answer", t, name)
	case r.Message != "" && r.StatusCode != 0:
		return fmt.Sprintf("%s webhook %s: status %d: %s", t, name, r.StatusCode, r.Message)
	case r.Message != "":
		return fmt.Sprintf("%s webhook %s: %s", t, name, r.Message)
	}
	return fmt.Sprintf("%s webhook %s: status %d", t, name, r.StatusCode)
}

func (d *decider) collectMetrics(v *verdict) {
	policy := d.cd.GetNoData()
	for i := range d.an.Metrics {
		m := &d.an.Metrics[i]
		r, ok := d.metricResult(m.Name)
		if !ok {
			v.fail("metric "+m.Name+": no result", true)
			continue
		}
		switch out, why := judgeMetric(m, r, policy); out {
		case metricFailed:
			v.fail("metric "+m.Name+": "+why, true)
		case metricWaiting:
			v.noData = append(v.noData, m.Name)
		}
	}
}

// metricOutcome is how one metric result counts.
type metricOutcome int

const (
	metricPassed metricOutcome = iota
	metricFailed
	metricSkipped // no data, noData: skip
	metricWaiting // no data, noData: wait
)

// judgeMetric judges one metric result against its threshold range and the noData
// policy, and says why when it does not pass.
func judgeMetric(m *v1alpha1.CanaryMetric, r MetricResult, policy v1alpha1.NoDataPolicy) (metricOutcome, string) {
	lo, hi := bounds(m, r)
	switch {
	case r.Err != "":
		return metricFailed, "query failed: " + r.Err
	case r.NoData || math.IsNaN(r.Value):
		switch policy {
		case v1alpha1.NoDataSkip:
			return metricSkipped, "no data; skipped"
		case v1alpha1.NoDataWait:
			return metricWaiting, "no data; waiting for it"
		}
		return metricFailed, "no data"
	case lo != nil && r.Value < *lo:
		return metricFailed, num(r.Value) + " < " + num(*lo)
	case hi != nil && r.Value > *hi:
		return metricFailed, num(r.Value) + " > " + num(*hi)
	}
	return metricPassed, ""
}

// bounds are the metric's threshold range from the spec, else those of the result.
func bounds(m *v1alpha1.CanaryMetric, r MetricResult) (lo, hi *float64) {
	if m != nil && m.ThresholdRange != nil {
		return m.ThresholdRange.Min, m.ThresholdRange.Max
	}
	return r.Min, r.Max
}

// num formats a measured value with at most two decimals.
func num(f float64) string { return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) }

func (d *decider) hookResult(name string, t v1alpha1.WebhookType) (WebhookResult, bool) {
	for _, r := range d.obs.Webhooks {
		if r.Name == name && r.Type == t {
			return r, true
		}
	}
	return WebhookResult{}, false
}

func (d *decider) metricResult(name string) (MetricResult, bool) {
	for _, r := range d.obs.Metrics {
		if r.Name == name {
			return r, true
		}
	}
	return MetricResult{}, false
}

// hasResults reports whether any result of the plan's checks came back.
func (d *decider) hasResults(p plan) bool {
	if p.metrics && len(d.obs.Metrics) > 0 {
		return true
	}
	for _, r := range d.obs.Webhooks {
		for _, t := range p.hooks {
			if r.Type == t {
				return true
			}
		}
	}
	return false
}

// recordResults keeps the latest result of every metric and webhook in the status, in
// spec order, so that a user sees why the Canary is where it is.
func (d *decider) recordResults() {
	if len(d.obs.Metrics) > 0 {
		d.st.LastMetrics = d.mergeMetrics()
	}
	if len(d.obs.Webhooks) > 0 {
		d.st.LastWebhooks = d.mergeWebhooks()
	}
}

func (d *decider) mergeMetrics() []v1alpha1.CanaryMetricResult {
	out := make([]v1alpha1.CanaryMetricResult, 0, len(d.an.Metrics))
	policy := d.cd.GetNoData()
	for i := range d.an.Metrics {
		m := &d.an.Metrics[i]
		r, ok := d.metricResult(m.Name)
		if !ok {
			for _, old := range d.st.LastMetrics {
				if old.Name == m.Name {
					out = append(out, old)
				}
			}
			continue
		}
		outcome, why := judgeMetric(m, r, policy)
		lo, hi := bounds(m, r)
		out = append(out, v1alpha1.CanaryMetricResult{
			Name: m.Name, Value: r.Value, ThresholdMin: lo, ThresholdMax: hi,
			Passed: outcome == metricPassed, Message: why, Query: r.Query, Time: d.now,
		})
	}
	return out
}

func (d *decider) mergeWebhooks() []v1alpha1.CanaryWebhookResult {
	out := make([]v1alpha1.CanaryWebhookResult, 0, len(d.an.Webhooks))
	for i := range d.an.Webhooks {
		h := &d.an.Webhooks[i]
		t := h.GetType()
		r, ok := d.hookResult(h.Name, t)
		if !ok {
			for _, old := range d.st.LastWebhooks {
				if old.Name == h.Name && old.Type == t {
					out = append(out, old)
				}
			}
			continue
		}
		out = append(out, v1alpha1.CanaryWebhookResult{
			Name: h.Name, Type: t, StatusCode: r.StatusCode, Passed: r.OK, Message: r.Message, Time: d.now,
		})
	}
	return out
}
