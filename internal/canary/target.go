package canary

import (
	"context"
	"errors"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Target is what the controller drives to release a new version of a Canary's target:
// the standalone Workload target (internal/workload) or a Kubernetes Deployment.
type Target interface {
	// Initialize creates <target>-primary from the target when it does not exist yet.
	Initialize(ctx context.Context, cd *v1alpha1.Canary) error
	// Revision returns the hash of the target's spec; a change of it is a new release.
	// A missing target is ErrTargetNotFound.
	Revision(ctx context.Context, cd *v1alpha1.Canary) (string, error)
	// PrimaryRevision returns the target revision the primary was last initialised or
	// promoted from; empty when unknown.
	PrimaryRevision(ctx context.Context, cd *v1alpha1.Canary) (string, error)
	// ScaleCanary sets the target's replicas. 0 parks it, remembering its count;
	// RestoreReplicas brings that count back.
	ScaleCanary(ctx context.Context, cd *v1alpha1.Canary, replicas int32) error
	// Promote copies the target's spec, replicas aside, into the primary.
	Promote(ctx context.Context, cd *v1alpha1.Canary) error
	// Rollback parks the target (the primary serves everything again).
	Rollback(ctx context.Context, cd *v1alpha1.Canary) error
	// Ready reports whether enough instances of the primary or the canary run the
	// current revision and are ready, as primaryReadyThreshold and
	// canaryReadyThreshold ask; message says why not. An error wrapping ErrStuck says
	// it will not become ready without a new revision.
	Ready(ctx context.Context, cd *v1alpha1.Canary, role Role) (ready bool, message string, err error)
}

// ErrStuck is wrapped by Target.Ready when the canary cannot become ready without a new
// revision: a Deployment past its own progressDeadlineSeconds, a Workload whose command
// or working directory does not exist. The analysis rolls back at once, as Flagger does
// for a readiness error it does not retry, rather than waiting out the Canary's
// progressDeadlineSeconds while the primary keeps serving.
var ErrStuck = errors.New("cannot become ready without a new revision")

// Finalizer is implemented by Targets that made objects of their own for a Canary and
// remove them when it is deleted with revertOnDeletion, after the target got its
// traffic back (a Deployment target: the primary, its Services, HPA and copies).
type Finalizer interface {
	Finalize(ctx context.Context, cd *v1alpha1.Canary) error
}

// Role is the part a workload plays in a release.
type Role string

// Roles.
const (
	RolePrimary Role = "primary"
	RoleCanary  Role = "canary"
)

// RestoreReplicas asks ScaleCanary for the count the target had before it was parked.
const RestoreReplicas int32 = -1

// ErrTargetNotFound: the Canary's targetRef names nothing this Target can run.
var ErrTargetNotFound = errors.New("target not found")

// Router moves a Canary's traffic: the apex VirtualRouter's route weights, and the
// route of the A/B match.
type Router interface {
	// Initialize creates the mesh objects of the Canary that do not exist yet (virtual
	// nodes, apex router and services), all traffic on the primary.
	Initialize(ctx context.Context, cd *v1alpha1.Canary) error
	// SetWeights sets the apex route's weights; with w.Mirror, the canary also receives
	// a copy of w.MirrorWeight percent of the primary's requests, and with w.Affinity,
	// the session-affinity cookies are handed out and routed on.
	SetWeights(ctx context.Context, cd *v1alpha1.Canary, w SetWeights) error
	// SetMatch routes the requests matching any of match to the canary, ahead of the
	// weighted route; an empty match removes that route.
	SetMatch(ctx context.Context, cd *v1alpha1.Canary, match []v1alpha1.HTTPMatchRequest) error
}

// MetricChecker measures one metric check of a Canary.
type MetricChecker interface {
	Check(ctx context.Context, cd *v1alpha1.Canary, m *v1alpha1.CanaryMetric) MetricResult
}

// Clock tells the time and runs timers; tests pass a fake one, so a ten-minute
// analysis is a millisecond test.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d; stop cancels it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// RealClock is the system clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
