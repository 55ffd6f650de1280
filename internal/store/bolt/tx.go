package bolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	bbolt "go.etcd.io/bbolt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

var errTxDone = errors.New("store transaction already finished")

// record is one change as history keeps it and as watchers receive it. Object is shared
// between watchers and never modified; each watcher decodes its own copy.
type record struct {
	Rev       uint64          `json:"-"`
	Type      store.EventType `json:"type"`
	Kind      string          `json:"kind"`
	Namespace string          `json:"namespace,omitempty"`
	Name      string          `json:"name"`
	Object    json.RawMessage `json:"object"`
}

// tx is a store.Tx on one bbolt write transaction. Revisions are handed out in memory
// and written to meta, with the history entries, by commit.
type tx struct {
	s       *Store
	btx     *bbolt.Tx
	objects *bbolt.Bucket
	rev     uint64 // the last revision handed out
	records []record
	done    bool
}

var _ store.Tx = (*tx)(nil)

func newTx(s *Store, btx *bbolt.Tx) *tx {
	rev := getUint(btx.Bucket(bucketMeta), keyRevision)
	return &tx{s: s, btx: btx, objects: btx.Bucket(bucketObjects), rev: rev}
}

// commit writes the revision counter and one history entry per change, then drops
// history beyond the kept size.
func (t *tx) commit() error {
	if len(t.records) == 0 {
		return nil
	}
	meta, hist := t.btx.Bucket(bucketMeta), t.btx.Bucket(bucketHistory)
	for _, r := range t.records {
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := hist.Put(u64(r.Rev), v); err != nil {
			return err
		}
	}
	if err := putUint(meta, keyRevision, t.rev); err != nil {
		return err
	}
	return compact(meta, hist, t.rev, t.s.opts.HistorySize)
}

// compact drops history entries older than the newest size ones.
func compact(meta, hist *bbolt.Bucket, rev uint64, size int) error {
	if rev <= uint64(size) {
		return nil
	}
	cut := rev - uint64(size) // drop every revision <= cut
	if getUint(meta, keyCompacted) >= cut {
		return nil
	}
	// Collect first: deleting under a moving bbolt cursor can skip keys.
	var doomed [][]byte
	c := hist.Cursor()
	for k, _ := c.First(); k != nil && revOf(k) <= cut; k, _ = c.Next() {
		doomed = append(doomed, bytes.Clone(k))
	}
	for _, k := range doomed {
		if err := hist.Delete(k); err != nil {
			return err
		}
	}
	return putUint(meta, keyCompacted, cut)
}

// revOf reads a history key.
func revOf(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func (t *tx) check() error {
	if t.done {
		return errTxDone
	}
	return nil
}

// Get returns the object as this transaction sees it.
func (t *tx) Get(key store.Key) (v1alpha1.Object, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	k, key, err := resolveKey(key)
	if err != nil {
		return nil, err
	}
	raw := t.objects.Get(encodeKey(key))
	if raw == nil {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	return decode(k, raw)
}

// List returns the objects f selects as this transaction sees them.
func (t *tx) List(f store.Filter) ([]v1alpha1.Object, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	m, err := resolveFilter(f)
	if err != nil {
		return nil, err
	}
	return listIn(t.btx, m, t.s.log)
}

// Create stores a new object with a fresh uid, creationTimestamp and generation 1.
func (t *tx) Create(obj v1alpha1.Object) (v1alpha1.Object, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	k, key, o, err := prepare(obj)
	if err != nil {
		return nil, err
	}
	bk := encodeKey(key)
	if t.objects.Get(bk) != nil {
		return nil, fmt.Errorf("%s: %w", key, store.ErrExists)
	}
	o.SetUID(types.UID(newUID()))
	o.SetCreationTimestamp(metav1.NewTime(t.s.opts.Now()))
	o.SetGeneration(1)
	return t.put(k, key, bk, o, store.Added)
}

// Update replaces an object. uid and creationTimestamp stay as stored; generation grows
// by one when spec changed.
func (t *tx) Update(obj v1alpha1.Object) (v1alpha1.Object, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	k, key, o, err := prepare(obj)
	if err != nil {
		return nil, err
	}
	bk := encodeKey(key)
	old := t.objects.Get(bk)
	if old == nil {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	stored, err := decode(k, old)
	if err != nil {
		return nil, err
	}
	if rv := o.GetResourceVersion(); rv != "" && rv != stored.GetResourceVersion() {
		return nil, fmt.Errorf("%s: %w", key, store.ErrConflict)
	}
	o.SetUID(stored.GetUID())
	o.SetCreationTimestamp(stored.GetCreationTimestamp())
	gen := max(stored.GetGeneration(), 1)
	changed, err := specChanged(old, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if changed {
		gen++
	}
	o.SetGeneration(gen)
	return t.put(k, key, bk, o, store.Modified)
}

// Delete removes an object. The returned object, like the Deleted event, carries the
// deletion's resourceVersion.
func (t *tx) Delete(key store.Key, resourceVersion string) (v1alpha1.Object, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	k, key, err := resolveKey(key)
	if err != nil {
		return nil, err
	}
	bk := encodeKey(key)
	old := t.objects.Get(bk)
	if old == nil {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	stored, err := decode(k, old)
	if err != nil {
		return nil, err
	}
	if resourceVersion != "" && resourceVersion != stored.GetResourceVersion() {
		return nil, fmt.Errorf("%s: %w", key, store.ErrConflict)
	}
	if err := t.objects.Delete(bk); err != nil {
		return nil, err
	}
	return t.record(k, key, stored, store.Deleted)
}

// put writes o under the next revision.
func (t *tx) put(k *v1alpha1.KindInfo, key store.Key, bk []byte, o v1alpha1.Object, typ store.EventType) (v1alpha1.Object, error) {
	out, err := t.record(k, key, o, typ)
	if err != nil {
		return nil, err
	}
	raw := t.records[len(t.records)-1].Object
	if err := t.objects.Put(bk, raw); err != nil {
		t.records = t.records[:len(t.records)-1]
		t.rev--
		return nil, err
	}
	return out, nil
}

// record gives o the next revision and notes the change; it returns a copy of o as
// stored.
func (t *tx) record(k *v1alpha1.KindInfo, key store.Key, o v1alpha1.Object, typ store.EventType) (v1alpha1.Object, error) {
	rev := t.rev + 1
	o.SetResourceVersion(strconv.FormatUint(rev, 10))
	raw, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", key, err)
	}
	out, err := decode(k, raw)
	if err != nil {
		return nil, err
	}
	t.rev = rev
	t.records = append(t.records, record{
		Rev: rev, Type: typ, Kind: key.Kind, Namespace: key.Namespace, Name: key.Name, Object: raw,
	})
	return out, nil
}

// prepare copies obj (the caller's object is never changed), sets its apiVersion and
// kind from the registry and checks its key.
func prepare(obj v1alpha1.Object) (*v1alpha1.KindInfo, store.Key, v1alpha1.Object, error) {
	if isNil(obj) {
		return nil, store.Key{}, nil, errors.New("store: nil object")
	}
	k, err := v1alpha1.KindOf(obj)
	if err != nil {
		return nil, store.Key{}, nil, err
	}
	o, ok := obj.DeepCopyObject().(v1alpha1.Object)
	if !ok {
		return nil, store.Key{}, nil, fmt.Errorf("%s: deep copy is not an object", k.Kind)
	}
	o.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	if !k.Namespaced {
		o.SetNamespace("")
	}
	_, key, err := resolveKey(store.Key{Kind: k.Kind, Namespace: o.GetNamespace(), Name: o.GetName()})
	if err != nil {
		return nil, store.Key{}, nil, err
	}
	return k, key, o, nil
}

// specChanged compares the spec in the stored JSON with the spec of o, both in
// canonical form (object keys sorted, numbers as written).
func specChanged(old []byte, o v1alpha1.Object) (bool, error) {
	raw, err := json.Marshal(o)
	if err != nil {
		return false, err
	}
	a, err := canonicalSpec(old)
	if err != nil {
		return false, err
	}
	b, err := canonicalSpec(raw)
	if err != nil {
		return false, err
	}
	return !bytes.Equal(a, b), nil
}

func canonicalSpec(raw []byte) ([]byte, error) {
	var top struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	if len(top.Spec) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(top.Spec))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}
