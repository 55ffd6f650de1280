package hooks

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Recorder stores Events about objects. The same event repeated (same object, type,
// reason and message) updates one Event's count and last time instead of adding rows,
// as Kubernetes' event recorder does, and each object keeps at most MaxPerObject events.
//
// The events of a namespace are listed once, on its first event; after that the
// Recorder keeps their names and times in memory, so recording costs the same with ten
// objects or thousands. Events others write meanwhile are only noticed by name.
type Recorder struct {
	Store  store.Store
	Source string
	Now    func() time.Time
	// MaxPerObject bounds the events kept per object (default 100): the oldest go first.
	MaxPerObject int

	mu    sync.Mutex
	index map[string]map[string]map[string]time.Time // namespace → object → event name → last time
}

// Record stores an event about obj.
func (r *Recorder) Record(ctx context.Context, obj v1alpha1.Object, eventType, reason, message string) error {
	now := metav1.NewTime(r.now())
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	name := eventName(kind, obj.GetName(), eventType, reason, message)
	ns := obj.GetNamespace()
	objKey := strings.ToLower(kind) + "/" + obj.GetName()
	r.mu.Lock()
	defer r.mu.Unlock()
	var seen map[string]map[string]time.Time
	var pruned []string
	err := r.Store.Txn(ctx, func(tx store.Tx) error {
		var err error
		if seen, err = r.namespaceIndex(tx, ns); err != nil {
			return err
		}
		pruned = nil
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
		pruned, err = r.prune(tx, ns, seen[objKey], name)
		return err
	})
	if err != nil {
		return err
	}
	// The index changes only once the transaction is in.
	if r.index == nil {
		r.index = map[string]map[string]map[string]time.Time{}
	}
	r.index[ns] = seen
	if seen[objKey] == nil {
		seen[objKey] = map[string]time.Time{}
	}
	seen[objKey][name] = now.Time
	for _, n := range pruned {
		delete(seen[objKey], n)
	}
	return nil
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// namespaceIndex returns the names and times of the events of a namespace by object,
// listing them the first time.
func (r *Recorder) namespaceIndex(tx store.Tx, ns string) (map[string]map[string]time.Time, error) {
	if seen, ok := r.index[ns]; ok {
		return seen, nil
	}
	evs, err := tx.List(store.Filter{Kind: "Event", Namespace: ns})
	if err != nil {
		return nil, err
	}
	seen := map[string]map[string]time.Time{}
	for _, o := range evs {
		ev, ok := o.(*v1alpha1.Event)
		if !ok {
			continue
		}
		k := strings.ToLower(ev.InvolvedObject.Kind) + "/" + ev.InvolvedObject.Name
		if seen[k] == nil {
			seen[k] = map[string]time.Time{}
		}
		seen[k][ev.Name] = ev.LastTimestamp.Time
	}
	return seen, nil
}

// prune deletes the oldest events of one object beyond MaxPerObject, counting the one
// just created, and returns their names.
func (r *Recorder) prune(tx store.Tx, ns string, known map[string]time.Time, created string) ([]string, error) {
	limit := r.MaxPerObject
	if limit == 0 {
		limit = 100
	}
	type entry struct {
		name string
		last time.Time
	}
	var all []entry
	for n, t := range known {
		if n != created {
			all = append(all, entry{n, t})
		}
	}
	extra := len(all) + 1 - limit
	if extra <= 0 {
		return nil, nil
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].last.Equal(all[j].last) {
			return all[i].last.Before(all[j].last)
		}
		return all[i].name < all[j].name
	})
	var out []string
	for _, e := range all[:extra] {
		if _, err := tx.Delete(store.Key{Kind: "Event", Namespace: ns, Name: e.name}, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		out = append(out, e.name)
	}
	return out, nil
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
	sort.SliceStable(out, func(i, j int) bool {
		a, b := &out[i].LastTimestamp, &out[j].LastTimestamp
		if !a.Equal(b) {
			return a.Before(b)
		}
		return writtenBefore(out[i].ResourceVersion, out[j].ResourceVersion)
	})
	return out
}

// writtenBefore orders two events of the same second, which their stored times cannot
// tell apart, by the store revision of their last write, when both are numbers (the
// embedded store's are).
func writtenBefore(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA == nil && errB == nil && x < y
}

func eventName(kind, name, eventType, reason, message string) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s", eventType, reason, message)
	return fmt.Sprintf("%s-%s.%x", strings.ToLower(kind), name, h.Sum64())
}
