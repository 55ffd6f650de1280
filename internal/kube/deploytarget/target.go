package deploytarget

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
)

// Target is the canary.Target of Kubernetes mode: Canaries whose targetRef is a
// Deployment.
type Target struct {
	// Client reaches the API server.
	Client kubernetes.Interface
	// OwnerReferences makes the Canary the owner of every object it generates, so that
	// Kubernetes deletes them with it. Set it when the Canaries are objects of the same
	// API server; an owner that the API server does not know would have the objects
	// collected at once.
	OwnerReferences bool
	// SelectorLabels are the selector labels looked for, in order; nil means
	// DefaultSelectorLabels.
	SelectorLabels []string
	// Log defaults to discarding.
	Log *slog.Logger
}

var _ canary.Target = (*Target)(nil)

func (t *Target) log() *slog.Logger {
	if t.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Log
}

func (t *Target) selectorLabels() []string {
	if len(t.SelectorLabels) > 0 {
		return t.SelectorLabels
	}
	return DefaultSelectorLabels
}

// own sets the owner annotation, and the owner reference when asked for, on m.
func (t *Target) own(cd *v1alpha1.Canary, m metav1.Object) {
	ann := m.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationOwner] = owner(cd)
	m.SetAnnotations(ann)
	if t.OwnerReferences {
		m.SetOwnerReferences(setOwner(m.GetOwnerReferences(), cd))
	}
}

// target reads the Deployment the Canary releases; a missing one (or a targetRef of
// another kind) is canary.ErrTargetNotFound.
func (t *Target) target(ctx context.Context, cd *v1alpha1.Canary) (*appsv1.Deployment, error) {
	ref := cd.Spec.TargetRef
	if ref.Kind != v1alpha1.TargetKindDeployment {
		return nil, fmt.Errorf("canary %s/%s: spec.targetRef.kind %q is not Deployment, the kind this controller releases: %w",
			cd.Namespace, cd.Name, ref.Kind, canary.ErrTargetNotFound)
	}
	if ref.APIVersion != "" && ref.APIVersion != "apps/v1" {
		return nil, fmt.Errorf("canary %s/%s: spec.targetRef.apiVersion %q is not apps/v1: %w",
			cd.Namespace, cd.Name, ref.APIVersion, canary.ErrTargetNotFound)
	}
	dep, err := t.Client.AppsV1().Deployments(cd.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("canary %s/%s: deployment %s/%s does not exist: %w",
			cd.Namespace, cd.Name, cd.Namespace, ref.Name, canary.ErrTargetNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("canary %s/%s: get deployment %s: %w", cd.Namespace, cd.Name, ref.Name, err)
	}
	return dep, nil
}

// observed is the target with what a revision and a primary are made of.
type observed struct {
	dep        *appsv1.Deployment
	key, value string // selector label and the target's value of it
	tracked    configSet
	rev        string
}

func (t *Target) observe(ctx context.Context, cd *v1alpha1.Canary) (*observed, error) {
	dep, err := t.target(ctx, cd)
	if err != nil {
		return nil, err
	}
	key, value, err := selectorLabel(dep, t.selectorLabels())
	if err != nil {
		return nil, err
	}
	tracked, err := t.loadConfigs(ctx, dep.Namespace, &dep.Spec.Template.Spec)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	rev, err := revision(&dep.Spec.Template, tracked)
	if err != nil {
		return nil, err
	}
	return &observed{dep: dep, key: key, value: value, tracked: tracked, rev: rev}, nil
}

// Initialize creates what a Canary needs beside its target, those objects that do not
// exist yet: the primary copies of the tracked ConfigMaps and Secrets, the primary
// Deployment, the primary HPA and the apex, primary and canary Services. An existing
// primary Deployment is left as it is (a promotion changes it); one another Canary made
// is an error. The controller scales the target to zero once the primary is ready.
func (t *Target) Initialize(ctx context.Context, cd *v1alpha1.Canary) error {
	o, err := t.observe(ctx, cd)
	if err != nil {
		return err
	}
	// Everything that can be wrong with the Canary is found before anything is made.
	svcs, err := t.desiredServices(cd, o)
	if err != nil {
		return err
	}
	hpa, err := t.autoscaler(ctx, cd)
	if err != nil {
		return err
	}
	name := PrimaryName(o.dep.Name)
	deps := t.Client.AppsV1().Deployments(cd.Namespace)
	cur, err := deps.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if err := t.copyConfigs(ctx, cd, o.tracked); err != nil {
			return err
		}
		p := primaryDeployment(cd, o.dep, o.key, PrimaryName(o.value), o.rev, o.tracked)
		t.own(cd, p)
		if _, err := deps.Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create deployment %s/%s: %w", cd.Namespace, name, err)
		}
		t.log().InfoContext(ctx, "primary deployment created", "canary", cd.Namespace+"/"+cd.Name,
			"deployment", name, "revision", o.rev)
	case err != nil:
		return fmt.Errorf("get deployment %s/%s: %w", cd.Namespace, name, err)
	default:
		if err := checkOwner(cd, "deployment", cur); err != nil {
			return err
		}
	}
	if err := t.ensureHPA(ctx, cd, hpa, false); err != nil {
		return err
	}
	for _, svc := range svcs {
		if err := t.ensureService(ctx, cd, svc); err != nil {
			return err
		}
	}
	return nil
}

// Revision returns the hash of the target's pod template and tracked configs.
func (t *Target) Revision(ctx context.Context, cd *v1alpha1.Canary) (string, error) {
	o, err := t.observe(ctx, cd)
	if err != nil {
		return "", err
	}
	return o.rev, nil
}

// PrimaryRevision returns the target revision recorded on the primary Deployment.
func (t *Target) PrimaryRevision(ctx context.Context, cd *v1alpha1.Canary) (string, error) {
	name := PrimaryName(cd.Spec.TargetRef.Name)
	p, err := t.Client.AppsV1().Deployments(cd.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get deployment %s/%s: %w", cd.Namespace, name, err)
	}
	return p.Annotations[AnnotationPromotedRevision], nil
}

// ScaleCanary sets the target's replicas. Parking it (0) remembers its count in an
// annotation; canary.RestoreReplicas brings that back, else the primary's count, else 1.
func (t *Target) ScaleCanary(ctx context.Context, cd *v1alpha1.Canary, replicas int32) error {
	if replicas < 0 && replicas != canary.RestoreReplicas {
		return fmt.Errorf("replicas %d is negative", replicas)
	}
	if _, err := t.target(ctx, cd); err != nil {
		return err
	}
	restore := int32(1)
	if replicas == canary.RestoreReplicas {
		p, err := t.Client.AppsV1().Deployments(cd.Namespace).Get(ctx, PrimaryName(cd.Spec.TargetRef.Name), metav1.GetOptions{})
		switch {
		case err == nil && p.Spec.Replicas != nil && *p.Spec.Replicas > 0:
			restore = *p.Spec.Replicas
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("get primary of %s/%s: %w", cd.Namespace, cd.Spec.TargetRef.Name, err)
		}
	}
	return t.modifyDeployment(ctx, cd.Namespace, cd.Spec.TargetRef.Name, func(d *appsv1.Deployment) error {
		cur := int32(1)
		if d.Spec.Replicas != nil {
			cur = *d.Spec.Replicas
		}
		want := replicas
		switch {
		case want == canary.RestoreReplicas:
			if cur > 0 {
				return nil
			}
			want = restore
			if n, err := strconv.ParseInt(d.Annotations[AnnotationCanaryReplicas], 10, 32); err == nil && n > 0 {
				want = int32(n)
			}
			delete(d.Annotations, AnnotationCanaryReplicas)
		case want == 0 && cur > 0:
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations[AnnotationCanaryReplicas] = strconv.Itoa(int(cur))
		}
		d.Spec.Replicas = &want
		return nil
	})
}

// Promote copies the target's pod template, rollout settings, labels and annotations
// into the primary (replicas and selector stay the primary's), after copying the
// tracked ConfigMaps and Secrets to their primary names, and brings the primary HPA in
// line with the target's. The controller waits for the primary's rollout through Ready.
func (t *Target) Promote(ctx context.Context, cd *v1alpha1.Canary) error {
	o, err := t.observe(ctx, cd)
	if err != nil {
		return err
	}
	hpa, err := t.autoscaler(ctx, cd)
	if err != nil {
		return err
	}
	if err := t.copyConfigs(ctx, cd, o.tracked); err != nil {
		return err
	}
	pv := PrimaryName(o.value)
	tmpl := primaryTemplate(o.dep, o.key, pv, o.rev, o.tracked)
	err = t.modifyDeployment(ctx, cd.Namespace, PrimaryName(o.dep.Name), func(p *appsv1.Deployment) error {
		if err := checkOwner(cd, "deployment", p); err != nil {
			return err
		}
		promotedMeta(p, o.dep, o.key, pv)
		copyToPrimary(p, o.dep, o.rev, tmpl)
		t.own(cd, p)
		return nil
	})
	if err != nil {
		return err
	}
	t.log().InfoContext(ctx, "primary deployment promoted", "canary", cd.Namespace+"/"+cd.Name, "revision", o.rev)
	return t.ensureHPA(ctx, cd, hpa, true)
}

// Rollback parks the target; the router has sent all traffic back to the primary.
func (t *Target) Rollback(ctx context.Context, cd *v1alpha1.Canary) error {
	return t.ScaleCanary(ctx, cd, 0)
}

// Ready reports whether the primary (or the canary: the target) has rolled out its
// current template with enough available replicas for the Canary's threshold.
func (t *Target) Ready(ctx context.Context, cd *v1alpha1.Canary, role canary.Role) (bool, string, error) {
	name, threshold := cd.Spec.TargetRef.Name, cd.GetAnalysisCanaryReadyThreshold()
	if role == canary.RolePrimary {
		name, threshold = PrimaryName(name), cd.GetAnalysisPrimaryReadyThreshold()
	}
	d, err := t.Client.AppsV1().Deployments(cd.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if role == canary.RoleCanary {
			return false, "", fmt.Errorf("deployment %s/%s does not exist: %w", cd.Namespace, name, canary.ErrTargetNotFound)
		}
		return false, fmt.Sprintf("deployment %s/%s does not exist", cd.Namespace, name), nil
	}
	if err != nil {
		return false, "", fmt.Errorf("get deployment %s/%s: %w", cd.Namespace, name, err)
	}
	ok, msg := deploymentReady(d, threshold)
	if !ok && role == canary.RoleCanary && deadlineExceeded(d) {
		// Kubernetes has given up on this rollout: nothing changes until a new
		// template, so the analysis rolls back now (as Flagger does).
		return false, "", fmt.Errorf("%s: %w", msg, canary.ErrStuck)
	}
	return ok, msg, nil
}

// writeBackoff paces the retries of a write that lost a race: the Deployment controller
// writes the status of a Deployment under rollout many times a second.
var writeBackoff = wait.Backoff{Steps: 12, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.1, Cap: 2 * time.Second}

// modifyDeployment applies f to the Deployment and updates it, reading it again when the
// update lost a race; nothing is written when f changed nothing.
func (t *Target) modifyDeployment(ctx context.Context, ns, name string, f func(d *appsv1.Deployment) error) error {
	deps := t.Client.AppsV1().Deployments(ns)
	err := retry.RetryOnConflict(writeBackoff, func() error {
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		before := d.DeepCopy()
		if err := f(d); err != nil {
			return err
		}
		if equality.Semantic.DeepEqual(before, d) {
			return nil
		}
		_, err = deps.Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("update deployment %s/%s: %w", ns, name, err)
	}
	return nil
}

// SelectorLabel returns the label the Canary's pods are told apart by and the target's
// value of it: the canary virtual node selects key: value, the primary one
// key: value-primary (PrimaryName(value)).
func (t *Target) SelectorLabel(ctx context.Context, cd *v1alpha1.Canary) (key, value string, err error) {
	dep, err := t.target(ctx, cd)
	if err != nil {
		return "", "", err
	}
	return selectorLabel(dep, t.selectorLabels())
}
