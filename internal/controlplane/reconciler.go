package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// StatusReconciler keeps the conditions of mesh objects true: whether the objects they
// name exist, and whether they are in effect. It does the same for MetricTemplates and
// AlertProviders, whose Ready condition says whether a canary can use them as written
// (see deliveryConditions). It is level-based: on any change it lists
// everything and writes only the statuses that differ, so it converges whatever the
// order of applies.
type StatusReconciler struct {
	Store store.Store
	Log   *slog.Logger
	Now   func() time.Time
	// Settle is how long to wait for more changes before reconciling (default 50ms), so
	// an apply of many objects is reconciled once.
	Settle time.Duration

	mu sync.Mutex
	// written holds the resourceVersions of the status writes of the last Sync: Run does
	// not reconcile again for its own writes.
	written map[uint64]bool
}

// Run reconciles until ctx ends.
func (r *StatusReconciler) Run(ctx context.Context) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Settle == 0 {
		r.Settle = 50 * time.Millisecond
	}
	for ctx.Err() == nil {
		rv, err := r.Sync(ctx)
		if err != nil {
			r.Log.ErrorContext(ctx, "status reconcile failed", "err", err)
			if !sleep(ctx, time.Second) {
				break
			}
			continue
		}
		if err := r.waitForChange(ctx, rv); err != nil && !errors.Is(err, context.Canceled) {
			r.Log.WarnContext(ctx, "watch for status reconcile ended", "err", err)
		}
	}
	return nil
}

// waitForChange returns once something changed after rv and the changes have settled.
func (r *StatusReconciler) waitForChange(ctx context.Context, rv uint64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := r.Store.Watch(wctx, store.Filter{}, rv)
	if err != nil {
		return err
	}
	for waiting := true; waiting; {
		select {
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			waiting = !r.concerns(ev)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	timer := time.NewTimer(r.Settle)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return nil
			}
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// concerns reports whether a change can alter what Sync would write: a change of a
// mesh object, a MetricTemplate, an AlertProvider or a namespace, other than one of the
// last Sync's own status writes. Canaries, events, workloads and the like are not read.
func (r *StatusReconciler) concerns(ev store.Event) bool {
	_, _, mesh := meshStatus(ev.Object)
	_, delivery := deliveryStatus(ev.Object)
	_, ns := ev.Object.(*corev1.Namespace)
	if !mesh && !delivery && !ns {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Type == store.Modified && r.written[ev.ResourceVersion] {
		delete(r.written, ev.ResourceVersion)
		return false
	}
	return true
}

// wrote records a status write of Sync.
func (r *StatusReconciler) wrote(o v1alpha1.Object) {
	rv, err := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.written == nil {
		r.written = map[uint64]bool{}
	}
	r.written[rv] = true
}

// Sync reconciles every mesh object, MetricTemplate and AlertProvider once and returns the resourceVersion it saw.
func (r *StatusReconciler) Sync(ctx context.Context) (uint64, error) {
	r.mu.Lock()
	clear(r.written) // what the List below sees
	r.mu.Unlock()
	objs, rv, err := r.Store.List(ctx, store.Filter{})
	if err != nil {
		return 0, err
	}
	ix := newIndex(objs)
	clock := r.Now
	if clock == nil {
		clock = time.Now
	}
	now := metav1.NewTime(clock().Truncate(time.Second))
	for _, o := range objs {
		st, ref, ok := meshStatus(o)
		if !ok {
			if st, ok := deliveryStatus(o); ok {
				if err := r.write(ctx, o, st, deliveryConditions(o), now); err != nil {
					return 0, err
				}
			}
			continue
		}
		if ref == nil && joinMesh(ix, o) {
			// The object joined a mesh that appeared, or whose selector now matches,
			// after it was applied; its status is computed on the next pass.
			if _, err := r.Store.Update(ctx, o); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
				return 0, err
			}
			continue
		}
		if err := r.write(ctx, o, st, desiredConditions(ix, o), now); err != nil {
			return 0, err
		}
	}
	return rv, nil
}

// write stores o with the wanted conditions when its status differs from them.
func (r *StatusReconciler) write(ctx context.Context, o v1alpha1.Object, st *v1alpha1.MeshObjectStatus, want []metav1.Condition, now metav1.Time) error {
	if !applyConditions(st, o.GetGeneration(), want, now) {
		return nil
	}
	out, err := r.Store.Update(ctx, o)
	if err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return nil // changed meanwhile; the watch brings us back
		}
		return err
	}
	r.wrote(out)
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
