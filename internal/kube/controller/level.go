package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// meshKinds are the kinds whose changes the status and mesh controllers react to:
// every stored kind but Event (recording an event changes no status or route).
func meshKinds() []client.Object {
	var out []client.Object
	for _, k := range v1alpha1.Kinds() {
		if k.ReadOnly || k.Kind == "Event" {
			continue
		}
		out = append(out, k.New())
	}
	return out
}

// levelReconciler runs one level-based sync of the whole mesh per request.
type levelReconciler struct {
	sync func(context.Context) error
}

func (r levelReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	return reconcile.Result{}, r.sync(ctx)
}

// addLevelController adds a controller that watches every mesh kind (and, with
// endpoints, the Pods and EndpointSlices virtual node endpoints come from) and runs sync
// once per burst of changes: every event maps to the one request named after the
// controller, which the work queue holds at most once. Watching a kind through the
// manager's cache also starts the informer its cached client reads.
func addLevelController(mgr manager.Manager, name string, leaderOnly, endpoints bool, sync func(context.Context) error) error {
	c, err := controller.New(name, mgr, controller.Options{
		Reconciler:              levelReconciler{sync: sync},
		MaxConcurrentReconciles: 1,
		NeedLeaderElection:      &leaderOnly,
	})
	if err != nil {
		return err
	}
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	})
	objs := meshKinds()
	if endpoints {
		objs = append(objs, &corev1.Pod{}, &discoveryv1.EndpointSlice{})
	}
	for _, o := range objs {
		if err := c.Watch(source.Kind(mgr.GetCache(), o, one)); err != nil {
			return err
		}
	}
	return nil
}
