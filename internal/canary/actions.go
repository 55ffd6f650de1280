package canary

import (
	"fmt"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// ActionKind names what an Action does.
type ActionKind string

const (
	KindInitializePrimary ActionKind = "InitializePrimary"
	KindSetWeights        ActionKind = "SetWeights"
	KindSetMatch          ActionKind = "SetMatch"
	KindScaleCanary       ActionKind = "ScaleCanary"
	KindPromotePrimary    ActionKind = "PromotePrimary"
	KindRunWebhooks       ActionKind = "RunWebhooks"
	KindCheckMetrics      ActionKind = "CheckMetrics"
	KindEvent             ActionKind = "Event"
	KindAlert             ActionKind = "Alert"
	KindRevertTarget      ActionKind = "RevertTarget"
	KindFinalizeTarget    ActionKind = "FinalizeTarget"
	KindRequeue           ActionKind = "Requeue"
)

// Action is one thing the controller does for a decision. The concrete types below are
// the only implementations; switch on them.
type Action interface {
	Kind() ActionKind
	String() string
}

// InitializePrimary creates the primary (and the virtual nodes, apex service and router)
// from the target if they do not exist yet.
type InitializePrimary struct {
	Revision string // the target revision seen when asked
}

// SetWeights sets the apex route's weights. Canary is the target's own virtual node;
// with Mirror, MirrorWeight percent of the primary's requests are also copied to it.
// Affinity, when set, is the session affinity of spec.analysis.sessionAffinity.
type SetWeights struct {
	Primary, Canary int
	Mirror          bool
	MirrorWeight    int
	Affinity        *Affinity
}

// Affinity is what session affinity routes, as Flagger's Gateway API and Istio routers
// do. Each cookie is "NAME=VALUE", empty when unused:
//   - Canary is handed out (Set-Cookie, Max-Age sessionAffinity.maxAge) by the canary's
//     responses while it has weight; requests carrying it go to the canary.
//   - Primary (with primaryCookieName) is handed out by the primary's responses, Max-Age
//     one analysis interval; requests carrying it stay on the primary.
//   - Previous is the canary cookie of a release that ended: requests carrying it take
//     the weighted route, and their responses expire it (Max-Age=-1).
type Affinity struct {
	Canary, Primary, Previous string
}

// SetMatch routes requests that match any of Match to the canary (A/B testing); an
// empty Match removes that route.
type SetMatch struct {
	Match []v1alpha1.HTTPMatchRequest
}

// ScaleCanary scales the target (the canary). ToZero scales it to zero; otherwise
// Replicas, or when Replicas is 0 the target's own desired count, if it is at zero.
type ScaleCanary struct {
	Replicas int32
	ToZero   bool
}

// PromotePrimary copies the target's spec into the primary. The controller must refuse
// it when the target no longer runs Revision: that revision was not analysed.
type PromotePrimary struct {
	Revision string
}

// RunWebhooks calls every webhook of Type, with Phase in the payload, and passes the
// results to the next decision (post-rollout results are only recorded).
type RunWebhooks struct {
	Type  v1alpha1.WebhookType
	Phase v1alpha1.CanaryPhase
}

// CheckMetrics queries every metric of spec.analysis.metrics and passes the results to
// the next decision.
type CheckMetrics struct{}

// Event records an event on the Canary; the controller also sends it to event webhooks.
type Event struct {
	Type    string // v1alpha1.EventTypeNormal or EventTypeWarning
	Reason  string
	Message string
}

// Alert sends a message to the Canary's alert providers that accept its severity.
type Alert struct {
	Severity v1alpha1.AlertSeverity
	Message  string
}

// RevertTarget gives the target back its replicas when the Canary is deleted with
// revertOnDeletion.
type RevertTarget struct{}

// FinalizeTarget removes what the Canary made for its release (the primary and, for a
// Deployment, its Services and copies) once the reverted target has all the traffic;
// targets that keep nothing of their own (Finalizer not implemented) skip it.
type FinalizeTarget struct{}

// Requeue asks for the next decision After this long; zero means as soon as the
// actions before it have run (their results are awaited).
type Requeue struct {
	After time.Duration
}

func (InitializePrimary) Kind() ActionKind { return KindInitializePrimary }
func (SetWeights) Kind() ActionKind        { return KindSetWeights }
func (SetMatch) Kind() ActionKind          { return KindSetMatch }
func (ScaleCanary) Kind() ActionKind       { return KindScaleCanary }
func (PromotePrimary) Kind() ActionKind    { return KindPromotePrimary }
func (RunWebhooks) Kind() ActionKind       { return KindRunWebhooks }
func (CheckMetrics) Kind() ActionKind      { return KindCheckMetrics }
func (Event) Kind() ActionKind             { return KindEvent }
func (Alert) Kind() ActionKind             { return KindAlert }
func (RevertTarget) Kind() ActionKind      { return KindRevertTarget }
func (FinalizeTarget) Kind() ActionKind    { return KindFinalizeTarget }
func (Requeue) Kind() ActionKind           { return KindRequeue }

func (a InitializePrimary) String() string { return "InitializePrimary(" + a.Revision + ")" }
func (a SetWeights) String() string {
	s := fmt.Sprintf("SetWeights(%d/%d", a.Primary, a.Canary)
	if a.Mirror {
		s += fmt.Sprintf(", mirror %d%%", a.MirrorWeight)
	}
	if af := a.Affinity; af != nil {
		s += fmt.Sprintf(", affinity canary %q primary %q previous %q", af.Canary, af.Primary, af.Previous)
	}
	return s + ")"
}
func (a SetMatch) String() string { return fmt.Sprintf("SetMatch(%d)", len(a.Match)) }
func (a ScaleCanary) String() string {
	if a.ToZero {
		return "ScaleCanary(0)"
	}
	if a.Replicas == 0 {
		return "ScaleCanary(up)"
	}
	return fmt.Sprintf("ScaleCanary(%d)", a.Replicas)
}
func (a PromotePrimary) String() string { return "PromotePrimary(" + a.Revision + ")" }
func (a RunWebhooks) String() string {
	return "RunWebhooks(" + string(a.Type) + ", " + string(a.Phase) + ")"
}
func (CheckMetrics) String() string   { return "CheckMetrics" }
func (a Event) String() string        { return "Event(" + a.Type + ", " + a.Reason + ": " + a.Message + ")" }
func (a Alert) String() string        { return "Alert(" + string(a.Severity) + ": " + a.Message + ")" }
func (RevertTarget) String() string   { return "RevertTarget" }
func (FinalizeTarget) String() string { return "FinalizeTarget" }
func (a Requeue) String() string      { return "Requeue(" + a.After.String() + ")" }
