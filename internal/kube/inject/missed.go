package inject

import (
	"context"
	"errors"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Event reasons of the missed-injection check.
const (
	ReasonProxyNotInjected = "ProxyNotInjected"
)

// MissedInjections looks at every pod once, when it appears (and at every start of the
// controller), and records a Warning event on a pod that should carry the proxy but does
// not: the webhook was down or unreachable and its failurePolicy Ignore let the pod
// through, or the pod predates the injector.
type MissedInjections struct {
	Reader       client.Reader // reads pods
	Config       Config
	VirtualNodes VirtualNodeLister
	Namespaces   NamespaceGetter
	Recorder     events.EventRecorder // where the Warning events go
	Log          *slog.Logger
}

// SetupWithManager registers the check for pod creations.
func (m *MissedInjections) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("canarymesh-missed-injections").
		For(&corev1.Pod{}, builder.WithPredicates(onlyCreate)).
		// Several managers may run in one process (tests, two replicas in one binary).
		WithOptions(controller.Options{SkipNameValidation: ptr(true)}).
		Complete(m)
}

// onlyCreate: a pod's containers never change after creation, so one look is enough.
var onlyCreate = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return true },
	UpdateFunc:  func(event.UpdateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// Reconcile checks one pod.
func (m *MissedInjections) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pod := &corev1.Pod{}
	if err := m.Reader.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return reconcile.Result{}, nil
	}
	msg, err := m.Check(ctx, pod)
	if err != nil {
		return reconcile.Result{}, err
	}
	if msg != "" {
		m.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, ReasonProxyNotInjected, "Inject", "%s", msg)
		m.Log.Warn("pod runs without its proxy", "pod", req.String(), "reason", msg)
	}
	return reconcile.Result{}, nil
}

// Check returns why the pod should carry the proxy and does not, or "" when it is as it
// should be.
func (m *MissedInjections) Check(ctx context.Context, pod *corev1.Pod) (string, error) {
	h := Handler{Config: m.Config, VirtualNodes: m.VirtualNodes, Namespaces: m.Namespaces}
	d, err := h.decide(ctx, pod, pod.Namespace)
	if apierrors.IsNotFound(err) {
		return "", nil // the namespace is going away
	}
	const tail = "; the injector webhook was not called or did not answer, and its failurePolicy let the pod through. Delete the pod so that it is re-created with the proxy"
	var rerr *readError
	if errors.As(err, &rerr) {
		return "", err
	}
	if err != nil {
		return "created without the canarymesh proxy, and the injector would have refused it: " + err.Error() + tail, nil
	}
	if !d.Inject {
		return "", nil
	}
	return "created without the canarymesh proxy although " + d.Reason + " and VirtualNode " + d.VirtualNode + " selects it" + tail, nil
}
