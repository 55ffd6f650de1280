// Package store keeps Canarymesh's objects. Store is the interface both modes share;
// bolt/ implements it on an embedded bbolt file (standalone mode), kube/ on the
// Kubernetes API server.
//
// Every write gets a new resourceVersion from one counter that only grows, like etcd's
// revision. Writes are compare-and-swap: an update or delete that names a resourceVersion
// other than the stored one fails with ErrConflict. Watch replays every change after a
// given resourceVersion and then streams new ones, so a client that lost its connection
// resumes without missing anything.
package store

import (
	"context"
	"errors"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: no object by that kind, namespace and name.
	ErrNotFound = errors.New("not found")
	// ErrExists: Create found an object of that name already.
	ErrExists = errors.New("already exists")
	// ErrConflict: the object changed since the resourceVersion the writer read.
	ErrConflict = errors.New("conflict: the object has been modified; read it again and retry")
	// ErrGone: Watch was asked to resume from a resourceVersion older than the kept history.
	ErrGone = errors.New("resourceVersion too old: history was compacted; list again")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// EventType says what happened to an object.
type EventType string

// Event types, named as Kubernetes watch events are.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one change. For Deleted, Object is the object as it was, with the
// resourceVersion of the deletion.
type Event struct {
	Type            EventType
	Object          v1alpha1.Object
	ResourceVersion uint64
}

// Key names one object. Namespace is empty for cluster-scoped kinds.
type Key struct {
	Kind      string // the kind name, e.g. "VirtualRouter"
	Namespace string
	Name      string
}

func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind + "/" + k.Name
	}
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

// Filter selects objects for List and Watch. Empty fields match everything. Kind is any
// name v1alpha1.LookupKind knows; Namespace is ignored for a cluster-scoped Kind (as with
// kubectl -n), and without a Kind it selects only namespaced objects in that namespace.
type Filter struct {
	Kind      string
	Namespace string
}

// Store keeps objects with optimistic concurrency and a resumable change stream.
type Store interface {
	// Get returns a copy of the stored object.
	Get(ctx context.Context, key Key) (v1alpha1.Object, error)
	// List returns the matching objects, sorted by kind, namespace, name, and the
	// store's current resourceVersion, from which a Watch continues.
	List(ctx context.Context, f Filter) ([]v1alpha1.Object, uint64, error)
	// Create stores a new object; ErrExists if one of that key is present. It sets uid,
	// creationTimestamp, generation 1 and resourceVersion, and returns what was stored.
	Create(ctx context.Context, obj v1alpha1.Object) (v1alpha1.Object, error)
	// Update replaces an object. If obj's resourceVersion is set and differs from the
	// stored one, it fails with ErrConflict. generation grows when spec changed.
	Update(ctx context.Context, obj v1alpha1.Object) (v1alpha1.Object, error)
	// Delete removes an object; with a non-empty resourceVersion, only if it matches.
	Delete(ctx context.Context, key Key, resourceVersion string) (v1alpha1.Object, error)
	// Txn runs fn in one serialised write transaction: every write inside it lands
	// together or, if fn returns an error, none does. fn must use only tx: calling the
	// Store from inside fn may deadlock.
	Txn(ctx context.Context, fn func(tx Tx) error) error
	// Watch streams every change after resourceVersion from, replayed from history, then
	// live. From 0 replays all kept history — what List→Watch needs when the List found
	// an empty store; ErrGone when that history was compacted. The channel closes when
	// ctx ends, the store closes, or the consumer falls too far behind; the consumer then
	// resumes from the last resourceVersion it saw.
	Watch(ctx context.Context, f Filter, from uint64) (<-chan Event, error)
	// Close releases the store; pending watches end.
	Close() error
}

// Tx is a write transaction. Its methods behave as the Store's, seeing earlier writes of
// the same transaction.
type Tx interface {
	Get(key Key) (v1alpha1.Object, error)
	List(f Filter) ([]v1alpha1.Object, error)
	Create(obj v1alpha1.Object) (v1alpha1.Object, error)
	Update(obj v1alpha1.Object) (v1alpha1.Object, error)
	Delete(key Key, resourceVersion string) (v1alpha1.Object, error)
}

// KeyOf returns the key of an object from its kind and metadata.
func KeyOf(obj v1alpha1.Object) (Key, error) {
	k, err := v1alpha1.KindOf(obj)
	if err != nil {
		return Key{}, err
	}
	ns := obj.GetNamespace()
	if !k.Namespaced {
		ns = ""
	}
	return Key{Kind: k.Kind, Namespace: ns, Name: obj.GetName()}, nil
}
