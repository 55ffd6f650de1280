package hooks

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Recorder stores Events about objects. The same event repeated (same object, type,
// reason and message) updates one Event's count and last time instead of adding rows,
// as Kubernetes' event recorder does, and each object keeps at most MaxPerObject events.
type Recorder struct {
	Store  store.Store
	Source string
	Now    func() time.Time
	// MaxPerObject bounds the events kept per object (default 100): the oldest go first.
	MaxPerObject int
}

// Record stores an event about obj.
func (r *Recorder) Record(ctx context.Context, obj v1alpha1.Object, eventType, reason, message string) error {
	now := metav1.NewTime(r.now())
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	name := eventName(kind, obj.GetName(), eventType, reason, message)
	ns := obj.GetNamespace()
	return r.Store.Txn(ctx, func(tx store.Tx) error {
		cur, err := tx.Get(store.Key{Kind: "Event", Namespace: ns, Name: name})
		if err == nil {
			ev := cur.(*v1alpha1.Event)
			ev.Count++
			ev.LastTimestamp = now
			_, err = tx.Update(ev)
			return err
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		ev := &v1alpha1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: ns},
			InvolvedObject: v1alpha1.ObjectReference{Kind: kind, Namespace: ns, Name: obj.GetName(), UID: string(obj.GetUID())},
			Type:           eventType, Reason: reason, Message: message, Count: 1,
			FirstTimestamp: now, LastTimestamp: now, Source: r.Source,
		}
		ev.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Event"))
		if _, err := tx.Create(ev); err != nil {
			return err
		}
		return r.prune(tx, ev.InvolvedObject)
	})
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// prune drops the oldest events of one object beyond MaxPerObject.
func (r *Recorder) prune(tx store.Tx, ref v1alpha1.ObjectReference) error {
	limit := r.MaxPerObject
	if limit == 0 {
		limit = 100
	}
	evs, err := tx.List(store.Filter{Kind: "Event", Namespace: ref.Namespace})
	if err != nil {
		return err
	}
	mine := For(evs, ref.Kind, ref.Name)
	for i := 0; i+limit < len(mine); i++ {
		if _, err := tx.Delete(store.Key{Kind: "Event", Namespace: ref.Namespace, Name: mine[i].Name}, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// For picks the events about one object from a list, oldest first.
func For(objs []v1alpha1.Object, kind, name string) []*v1alpha1.Event {
	var out []*v1alpha1.Event
	for _, o := range objs {
		ev, ok := o.(*v1alpha1.Event)
		if ok && strings.EqualFold(ev.InvolvedObject.Kind, kind) && ev.InvolvedObject.Name == name {
			out = append(out, ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastTimestamp.Before(&out[j].LastTimestamp) })
	return out
}

func eventName(kind, name, eventType, reason, message string) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s", eventType, reason, message)
	return fmt.Sprintf("%s-%s.%x", strings.ToLower(kind), name, h.Sum64())
}
