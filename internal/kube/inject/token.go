package inject

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// LabelManagedBy marks the Secrets the injector writes.
const LabelManagedBy = "app.kubernetes.io/managed-by"

// annotationConfigTracking is the Deployment canary target's opt-out (deploytarget): a
// workload injected offline names the token Secret in its pod template, and without it a
// canary would copy the Secret to a -primary twin and count a token change as a release.
const annotationConfigTracking = "canarymesh.dev/config-tracking"

// TokenSecrets puts the push stream's token into the Secret (Config.ProxyTokenSecret)
// that injected proxies read, in the namespace of every injected pod, so the token is
// never written into pod specs and no one copies it by hand. A Secret of that name that
// Canarymesh did not create is left alone, with a log line.
type TokenSecrets struct {
	Reader client.Reader // uncached: the manager's cache would watch every Secret
	Writer client.Client
	Name   string // the Secret's name
	Token  string
	Log    *slog.Logger

	done sync.Map // namespace → struct{}: already checked by this process
}

// SetupWithManager registers the check for injected pods as they appear.
func (s *TokenSecrets) SetupWithManager(mgr ctrl.Manager) error {
	injected := predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return e.Object.GetAnnotations()[AnnotationInjected] != "" },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("canarymesh-proxy-token").
		For(&corev1.Pod{}, builder.WithPredicates(injected)).
		WithOptions(controller.Options{SkipNameValidation: ptr(true)}).
		Complete(s)
}

// Reconcile ensures the Secret in the pod's namespace.
func (s *TokenSecrets) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	return reconcile.Result{}, s.Ensure(ctx, req.Namespace)
}

// Ensure writes the Secret into namespace unless it already holds the token.
func (s *TokenSecrets) Ensure(ctx context.Context, namespace string) error {
	if _, ok := s.done.Load(namespace); ok {
		return nil
	}
	key := types.NamespacedName{Namespace: namespace, Name: s.Name}
	sec := &corev1.Secret{}
	err := s.Reader.Get(ctx, key, sec)
	switch {
	case apierrors.IsNotFound(err):
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: s.Name, Labels: map[string]string{LabelManagedBy: "canarymesh"},
				Annotations: map[string]string{annotationConfigTracking: "disabled"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"token": []byte(s.Token)},
		}
		if err := s.Writer.Create(ctx, sec); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Secret %s: %w", key, err)
		}
		s.Log.Info("proxy token Secret created", "secret", key.String())
	case err != nil:
		return fmt.Errorf("read Secret %s: %w", key, err)
	case sec.Labels[LabelManagedBy] != "canarymesh":
		s.Log.Warn("proxy token Secret exists and is not Canarymesh's; left as it is", "secret", key.String())
	case string(sec.Data["token"]) != s.Token || sec.Annotations[annotationConfigTracking] != "disabled":
		sec.Data = map[string][]byte{"token": []byte(s.Token)}
		if sec.Annotations == nil {
			sec.Annotations = map[string]string{}
		}
		sec.Annotations[annotationConfigTracking] = "disabled"
		if err := s.Writer.Update(ctx, sec); err != nil {
			return fmt.Errorf("update Secret %s: %w", key, err)
		}
		s.Log.Info("proxy token Secret updated", "secret", key.String())
	}
	s.done.Store(namespace, struct{}{})
	return nil
}
