package kube

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

var errTxDone = errors.New("store transaction already finished")

// txEntry is one object a transaction touched: as the API server had it when first
// read (base, nil when absent) and as the transaction leaves it (cur, nil when deleted).
type txEntry struct {
	kind  *v1alpha1.KindInfo
	key   store.Key
	base  v1alpha1.Object
	cur   v1alpha1.Object
	dirty bool
	// handed are the copies given to fn; commit refreshes them with what was stored.
	handed []v1alpha1.Object
}

// tx is a store.Tx that reads through to the API server and keeps its writes until
// commit.
type tx struct {
	s       *Store
	ctx     context.Context
	entries map[store.Key]*txEntry
	order   []store.Key
	done    bool
}

var _ store.Tx = (*tx)(nil)

func (t *tx) entry(k *v1alpha1.KindInfo, key store.Key) (*txEntry, error) {
	if e, ok := t.entries[key]; ok {
		return e, nil
	}
	e := &txEntry{kind: k, key: key}
	obj, err := t.s.get(t.ctx, k, key)
	switch {
	case err == nil:
		e.base, e.cur = obj, obj
	case errors.Is(err, store.ErrNotFound):
	default:
		return nil, err
	}
	t.entries[key] = e
	t.order = append(t.order, key)
	return e, nil
}

func (e *txEntry) hand(o v1alpha1.Object) v1alpha1.Object {
	c, _ := o.DeepCopyObject().(v1alpha1.Object)
	e.handed = append(e.handed, c)
	return c
}

// Get returns the object as this transaction sees it.
func (t *tx) Get(key store.Key) (v1alpha1.Object, error) {
	if t.done {
		return nil, errTxDone
	}
	k, key, err := resolveKey(key)
	if err != nil {
		return nil, err
	}
	if k.ReadOnly {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	e, err := t.entry(k, key)
	if err != nil {
		return nil, err
	}
	if e.cur == nil {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	return e.hand(e.cur), nil
}

// List returns the objects f selects as this transaction sees them.
func (t *tx) List(f store.Filter) ([]v1alpha1.Object, error) {
	if t.done {
		return nil, errTxDone
	}
	sel, err := resolveFilter(f)
	if err != nil {
		return nil, err
	}
	var out []v1alpha1.Object
	seen := map[store.Key]bool{}
	for _, ks := range sel {
		objs, _, err := t.s.list(t.ctx, ks, "")
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			key := store.Key{Kind: ks.kind.Kind, Namespace: o.GetNamespace(), Name: o.GetName()}
			seen[key] = true
			if e, ok := t.entries[key]; ok {
				if e.cur != nil {
					out = append(out, e.hand(e.cur))
				}
				continue
			}
			out = append(out, o)
		}
		for _, key := range t.order {
			e := t.entries[key]
			if seen[key] || e.cur == nil || key.Kind != ks.kind.Kind || ks.namespace != "" && key.Namespace != ks.namespace {
				continue
			}
			out = append(out, e.hand(e.cur))
		}
	}
	sortObjects(out)
	return out, nil
}

// Create notes a new object; ErrExists if one of its key is there.
func (t *tx) Create(obj v1alpha1.Object) (v1alpha1.Object, error) {
	if t.done {
		return nil, errTxDone
	}
	k, key, o, err := prepare(obj)
	if err != nil {
		return nil, err
	}
	e, err := t.entry(k, key)
	if err != nil {
		return nil, err
	}
	if e.cur != nil {
		return nil, fmt.Errorf("%s: %w", key, store.ErrExists)
	}
	o.SetResourceVersion("")
	o.SetGeneration(1)
	e.cur, e.dirty = o, true
	return e.hand(o), nil
}

// Update notes a replaced object, compare-and-swap on its resourceVersion when set.
func (t *tx) Update(obj v1alpha1.Object) (v1alpha1.Object, error) {
	if t.done {
		return nil, errTxDone
	}
	k, key, o, err := prepare(obj)
	if err != nil {
		return nil, err
	}
	e, err := t.entry(k, key)
	if err != nil {
		return nil, err
	}
	if e.cur == nil {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	if rv := o.GetResourceVersion(); rv != "" && rv != e.cur.GetResourceVersion() {
		return nil, fmt.Errorf("%s: %w", key, store.ErrConflict)
	}
	o.SetResourceVersion(e.cur.GetResourceVersion())
	o.SetUID(e.cur.GetUID())
	o.SetCreationTimestamp(e.cur.GetCreationTimestamp())
	o.SetGeneration(e.cur.GetGeneration())
	e.cur, e.dirty = o, true
	return e.hand(o), nil
}

// Delete notes a removed object.
func (t *tx) Delete(key store.Key, resourceVersion string) (v1alpha1.Object, error) {
	if t.done {
		return nil, errTxDone
	}
	k, key, err := resolveKey(key)
	if err != nil {
		return nil, err
	}
	if k.ReadOnly {
		return nil, readOnly(k)
	}
	e, err := t.entry(k, key)
	if err != nil {
		return nil, err
	}
	if e.cur == nil {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	if resourceVersion != "" && resourceVersion != e.cur.GetResourceVersion() {
		return nil, fmt.Errorf("%s: %w", key, store.ErrConflict)
	}
	old := e.cur
	e.cur, e.dirty = nil, true
	return e.hand(old), nil
}

// commit sends the writes, in the order the objects were first touched.
func (t *tx) commit() error {
	for _, key := range t.order {
		e := t.entries[key]
		if !e.dirty {
			continue
		}
		var (
			out v1alpha1.Object
			err error
		)
		switch {
		case e.base == nil && e.cur == nil:
			continue
		case e.base == nil:
			out, err = t.s.create(t.ctx, e.kind, key, e.cur)
		case e.cur == nil:
			out, err = t.s.delete(t.ctx, e.kind, key, e.base.GetResourceVersion())
		default:
			e.cur.SetResourceVersion(e.base.GetResourceVersion())
			out, err = t.s.update(t.ctx, e.kind, key, e.cur)
		}
		if err != nil {
			return fmt.Errorf("transaction: %w", err)
		}
		for _, h := range e.handed {
			refresh(h, out)
		}
	}
	return nil
}

// refresh overwrites dst, an object handed out by the transaction, with src as stored.
func refresh(dst, src v1alpha1.Object) {
	if src == nil {
		return
	}
	dv, sv := reflect.ValueOf(dst), reflect.ValueOf(src)
	if dv.Type() != sv.Type() || dv.Kind() != reflect.Pointer {
		return
	}
	dv.Elem().Set(reflect.ValueOf(src.DeepCopyObject()).Elem())
}
