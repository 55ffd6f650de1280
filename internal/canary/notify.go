package canary

import (
	"context"
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/hooks"
	"github.com/canarymesh/canarymesh/internal/store"
)

// event records an event on the Canary and posts it to every event webhook.
func (c *Controller) event(ctx context.Context, cd *v1alpha1.Canary, e Event) {
	log := c.Log.InfoContext
	if e.Type == v1alpha1.EventTypeWarning {
		log = c.Log.WarnContext
	}
	log(ctx, "canary event", "canary", cd.Namespace+"/"+cd.Name, "reason", e.Reason, "message", e.Message)
	if c.Recorder != nil {
		if err := c.Recorder.Record(ctx, cd, e.Type, e.Reason, e.Message); err != nil {
			c.Log.WarnContext(ctx, "cannot record event", "canary", cd.Namespace+"/"+cd.Name, "err", err)
		}
	}
	an := cd.GetAnalysis()
	if an == nil {
		return
	}
	for _, h := range an.Webhooks {
		if h.GetType() != v1alpha1.WebhookEvent {
			continue
		}
		if r := c.Hooks.CallEvent(ctx, cd, h, e.Message, e.Type); !r.OK {
			c.Log.WarnContext(ctx, "event webhook failed", "canary", cd.Namespace+"/"+cd.Name, "webhook", h.Name,
				"status", r.StatusCode, "message", r.Message)
		}
	}
}

// alert sends the message to every alert of the analysis whose severity lets it
// through: info gets everything, warn gets warnings and errors, error only errors.
func (c *Controller) alert(ctx context.Context, cd *v1alpha1.Canary, a Alert) {
	an := cd.GetAnalysis()
	if an == nil {
		return
	}
	for _, al := range an.Alerts {
		if !severityAccepts(al.Severity, a.Severity) {
			continue
		}
		if err := c.postAlert(ctx, cd, al, a); err != nil {
			c.Log.WarnContext(ctx, "alert not sent", "canary", cd.Namespace+"/"+cd.Name, "alert", al.Name, "err", err)
		}
	}
}

func (c *Controller) postAlert(ctx context.Context, cd *v1alpha1.Canary, al v1alpha1.CanaryAlert, a Alert) error {
	ns := al.ProviderRef.Namespace
	if ns == "" {
		ns = cd.Namespace
	}
	obj, err := c.Store.Get(ctx, store.Key{Kind: "AlertProvider", Namespace: ns, Name: al.ProviderRef.Name})
	if err != nil {
		return fmt.Errorf("AlertProvider %s/%s: %w", ns, al.ProviderRef.Name, err)
	}
	p, ok := obj.(*v1alpha1.AlertProvider)
	if !ok {
		return fmt.Errorf("AlertProvider %s/%s: store returned a %T", ns, al.ProviderRef.Name, obj)
	}
	var n hooks.Notifier
	if c.Notifiers != nil {
		n, err = c.Notifiers(ctx, p)
	} else {
		n, err = hooks.NewNotifier(ctx, p, nil)
	}
	if err != nil {
		return err
	}
	return n.Post(ctx, hooks.Alert{Workload: cd.Name, Namespace: cd.Namespace, Message: a.Message,
		Fields: alertFields(cd), Severity: string(a.Severity)})
}

// severityLevel orders severities; an unknown one counts as info.
func severityLevel(s v1alpha1.AlertSeverity) int {
	switch s {
	case v1alpha1.AlertSeverityWarn:
		return 1
	case v1alpha1.AlertSeverityError:
		return 2
	}
	return 0
}

func severityAccepts(alert, msg v1alpha1.AlertSeverity) bool {
	return severityLevel(msg) >= severityLevel(alert)
}

// alertFields are the facts Flagger's alerts carry.
func alertFields(cd *v1alpha1.Canary) []hooks.Field {
	ref := cd.Spec.TargetRef
	fields := []hooks.Field{
		{Name: "Target", Value: fmt.Sprintf("%s/%s.%s", ref.Kind, ref.Name, cd.Namespace)},
		{Name: "Failed checks threshold", Value: fmt.Sprint(cd.GetAnalysisThreshold())},
		{Name: "Progress deadline", Value: cd.GetProgressDeadline().String()},
	}
	an := cd.GetAnalysis()
	if an == nil {
		return fields
	}
	var routing string
	switch an.Strategy() {
	case v1alpha1.StrategyCanary:
		routing = fmt.Sprintf("Weight step: %d max: %d", an.StepWeight, cd.GetMaxWeight())
		if len(an.StepWeights) > 0 {
			routing = fmt.Sprintf("Weight steps: %v max: %d", an.StepWeights, cd.GetMaxWeight())
		}
	case v1alpha1.StrategyABTesting:
		routing = fmt.Sprintf("A/B Testing, iterations: %d", an.Iterations)
	case v1alpha1.StrategyBlueGreen:
		routing = fmt.Sprintf("Blue/Green, iterations: %d", an.Iterations)
	}
	if routing != "" {
		fields = append(fields, hooks.Field{Name: "Traffic routing", Value: routing})
	}
	return fields
}
