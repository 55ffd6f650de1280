package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Defaults for Options.
const (
	DefaultQPS         = 100
	DefaultBurst       = 200
	DefaultWatchBuffer = 256
)

// Options tune a Store. The zero value is usable.
type Options struct {
	// Logger receives the store's log lines (default: discarded).
	Logger *slog.Logger
	// NoCoreEvents turns off the core/v1 mirror of Events.
	NoCoreEvents bool
	// EventSource is the core/v1 Event's source.component when the Event names none
	// (default "canarymesh").
	EventSource string
	// WatchBuffer is how many events a merged watch holds for a slow consumer
	// (default 256); the API server's own buffering is behind it.
	WatchBuffer int
	// WatchTimeout asks the API server to end each watch request after this long
	// (rounded to seconds); the store resumes it from the last revision delivered.
	// Zero leaves the API server's own limit.
	WatchTimeout time.Duration
}

// NewScheme returns a scheme with client-go's kinds and every canarymesh.dev/v1alpha1 kind.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register client-go kinds: %w", err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("register %s kinds: %w", v1alpha1.APIVersion, err)
	}
	return s, nil
}

// Store is a store.Store on the Kubernetes API server.
type Store struct {
	opts    Options
	log     *slog.Logger
	scheme  *runtime.Scheme
	params  runtime.ParameterCodec
	clients map[schema.GroupVersion]rest.Interface

	mu     sync.Mutex
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// New returns a Store talking to the API server cfg names. A cfg without rate limits
// gets DefaultQPS and DefaultBurst: client-go's defaults (5 and 10) would throttle a
// controller that writes the status of every object.
func New(cfg *rest.Config, opts Options) (*Store, error) {
	if cfg == nil {
		return nil, errors.New("kube store: no API server configuration")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.EventSource == "" {
		opts.EventSource = "canarymesh"
	}
	if opts.WatchBuffer <= 0 {
		opts.WatchBuffer = DefaultWatchBuffer
	}
	sch, err := NewScheme()
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts:    opts,
		log:     opts.Logger,
		scheme:  sch,
		params:  runtime.NewParameterCodec(sch),
		clients: map[schema.GroupVersion]rest.Interface{},
		done:    make(chan struct{}),
	}
	codecs := serializer.NewCodecFactory(sch)
	for _, gv := range []schema.GroupVersion{{Version: "v1"}, v1alpha1.GroupVersion} {
		c := rest.CopyConfig(cfg)
		c.GroupVersion = &gv
		c.APIPath = "/apis"
		if gv.Group == "" {
			c.APIPath = "/api"
		}
		c.NegotiatedSerializer = codecs.WithoutConversion()
		c.ContentType = runtime.ContentTypeJSON
		if c.QPS == 0 {
			c.QPS = DefaultQPS
		}
		if c.Burst == 0 {
			c.Burst = DefaultBurst
		}
		if c.UserAgent == "" {
			c.UserAgent = "canarymesh"
		}
		rc, err := rest.RESTClientFor(c)
		if err != nil {
			return nil, fmt.Errorf("kube store: client for %s: %w", gv, err)
		}
		s.clients[gv] = rc
	}
	return s, nil
}

// Close ends every watch. Requests in flight finish on their own.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	return nil
}

// kindRef is a resolved kind with its client.
type kindRef struct {
	info *v1alpha1.KindInfo
	gv   schema.GroupVersion
	rc   rest.Interface
}

func (s *Store) ref(k *v1alpha1.KindInfo) (kindRef, error) {
	gv, err := schema.ParseGroupVersion(k.APIVersion)
	if err != nil {
		return kindRef{}, fmt.Errorf("%s: %w", k.Kind, err)
	}
	rc, ok := s.clients[gv]
	if !ok {
		return kindRef{}, fmt.Errorf("%s: apiVersion %s is not served by this store", k.Kind, k.APIVersion)
	}
	return kindRef{info: k, gv: gv, rc: rc}, nil
}

func (r kindRef) req(verb string, ns string) *rest.Request {
	var q *rest.Request
	switch verb {
	case "GET":
		q = r.rc.Get()
	case "POST":
		q = r.rc.Post()
	case "PUT":
		q = r.rc.Put()
	case "DELETE":
		q = r.rc.Delete()
	}
	return q.NamespaceIfScoped(ns, r.info.Namespaced).Resource(r.info.Plural)
}

// storedKinds are the kinds kept in the API server, sorted by kind name.
func storedKinds() []*v1alpha1.KindInfo {
	var out []*v1alpha1.KindInfo
	for _, k := range v1alpha1.Kinds() {
		if !k.ReadOnly {
			out = append(out, k)
		}
	}
	return out
}

// resolveKey checks a key and makes its kind canonical.
func resolveKey(key store.Key) (*v1alpha1.KindInfo, store.Key, error) {
	k, err := v1alpha1.LookupKind(key.Kind)
	if err != nil {
		return nil, key, err
	}
	key.Kind = k.Kind
	if !k.Namespaced {
		key.Namespace = ""
	} else if key.Namespace == "" {
		return nil, key, fmt.Errorf("%s %q: metadata.namespace is required", k.Kind, key.Name)
	}
	if key.Name == "" {
		return nil, key, fmt.Errorf("%s: metadata.name is required", k.Kind)
	}
	return k, key, nil
}

func readOnly(k *v1alpha1.KindInfo) error {
	return fmt.Errorf("%s is read-only: the control plane computes it and no store keeps it", k.Kind)
}

// mapErr wraps an API server error with the key and the store's sentinel for it.
func mapErr(key store.Key, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case apierrors.IsAlreadyExists(err):
		sentinel = store.ErrExists
	case apierrors.IsConflict(err):
		sentinel = store.ErrConflict
	case apierrors.IsNotFound(err):
		sentinel = store.ErrNotFound
	case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
		sentinel = store.ErrGone
	}
	if sentinel == nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return fmt.Errorf("%s: %w (%w)", key, sentinel, err)
}

// finish sets apiVersion and kind, which the API server's typed responses may omit.
func finish(k *v1alpha1.KindInfo, obj v1alpha1.Object) v1alpha1.Object {
	obj.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	return obj
}

// Get returns the stored object.
func (s *Store) Get(ctx context.Context, key store.Key) (v1alpha1.Object, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	k, key, err := resolveKey(key)
	if err != nil {
		return nil, err
	}
	if k.ReadOnly {
		return nil, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	return s.get(ctx, k, key)
}

func (s *Store) get(ctx context.Context, k *v1alpha1.KindInfo, key store.Key) (v1alpha1.Object, error) {
	r, err := s.ref(k)
	if err != nil {
		return nil, err
	}
	obj := k.New()
	if err := r.req("GET", key.Namespace).Name(key.Name).Do(ctx).Into(obj); err != nil {
		return nil, mapErr(key, err)
	}
	return finish(k, obj), nil
}

// List returns the objects f selects, sorted by kind, namespace and name, all read at
// the one revision it returns.
func (s *Store) List(ctx context.Context, f store.Filter) ([]v1alpha1.Object, uint64, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, err
	}
	sel, err := resolveFilter(f)
	if err != nil {
		return nil, 0, err
	}
	var (
		out []v1alpha1.Object
		rv  string
	)
	for _, ks := range sel {
		objs, listRV, err := s.list(ctx, ks, rv)
		if err != nil {
			return nil, 0, err
		}
		if rv == "" {
			rv = listRV
		}
		out = append(out, objs...)
	}
	sortObjects(out)
	if rv == "" { // only read-only kinds were asked for
		rv, err = s.currentRV(ctx)
		if err != nil {
			return nil, 0, err
		}
	}
	n, err := parseRV(rv)
	if err != nil {
		return nil, 0, err
	}
	return out, n, nil
}

// selection is one kind a Filter selects, with the namespace to list it in.
type selection struct {
	kind      *v1alpha1.KindInfo
	namespace string
}

// resolveFilter lists the stored kinds f selects: its Kind, or every namespaced kind
// when it names only a namespace, or every kind.
func resolveFilter(f store.Filter) ([]selection, error) {
	if f.Kind != "" {
		k, err := v1alpha1.LookupKind(f.Kind)
		if err != nil {
			return nil, err
		}
		if k.ReadOnly {
			return nil, nil
		}
		ns := f.Namespace
		if !k.Namespaced {
			ns = ""
		}
		return []selection{{k, ns}}, nil
	}
	var out []selection
	for _, k := range storedKinds() {
		if f.Namespace != "" && !k.Namespaced {
			continue
		}
		out = append(out, selection{k, f.Namespace})
	}
	return out, nil
}

// list reads one kind; at revision rv exactly when rv is set, else the newest.
func (s *Store) list(ctx context.Context, sel selection, rv string) ([]v1alpha1.Object, string, error) {
	r, err := s.ref(sel.kind)
	if err != nil {
		return nil, "", err
	}
	opts := &metav1.ListOptions{}
	if rv != "" {
		opts.ResourceVersion = rv
		opts.ResourceVersionMatch = metav1.ResourceVersionMatchExact
	}
	lobj, err := s.scheme.New(r.gv.WithKind(sel.kind.Kind + "List"))
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", sel.kind.Plural, err)
	}
	if err := r.req("GET", sel.namespace).VersionedParams(opts, s.params).Do(ctx).Into(lobj); err != nil {
		return nil, "", listErr(sel, err)
	}
	items, err := meta.ExtractList(lobj)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", sel.kind.Plural, err)
	}
	out := make([]v1alpha1.Object, 0, len(items))
	for _, it := range items {
		o, ok := it.(v1alpha1.Object)
		if !ok {
			return nil, "", fmt.Errorf("list %s: item of type %T", sel.kind.Plural, it)
		}
		out = append(out, finish(sel.kind, o))
	}
	lm, err := meta.ListAccessor(lobj)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", sel.kind.Plural, err)
	}
	return out, lm.GetResourceVersion(), nil
}

func listErr(sel selection, err error) error {
	what := sel.kind.Plural
	if sel.namespace != "" {
		what += " in namespace " + sel.namespace
	}
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return fmt.Errorf("list %s: %w (%w)", what, store.ErrGone, err)
	}
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("list %s: the API server does not serve them; are the CRDs installed? %w", what, err)
	}
	return fmt.Errorf("list %s: %w", what, err)
}

// currentRV returns the API server's newest revision.
func (s *Store) currentRV(ctx context.Context) (string, error) {
	r, err := s.ref(mustKind("Namespace"))
	if err != nil {
		return "", err
	}
	lobj := &corev1.NamespaceList{}
	if err := r.req("GET", "").VersionedParams(&metav1.ListOptions{Limit: 1}, s.params).Do(ctx).Into(lobj); err != nil {
		return "", fmt.Errorf("read the API server's revision: %w", err)
	}
	return lobj.ResourceVersion, nil
}

func mustKind(name string) *v1alpha1.KindInfo {
	k, err := v1alpha1.LookupKind(name)
	if err != nil {
		panic(err)
	}
	return k
}

func parseRV(rv string) (uint64, error) {
	var n uint64
	if rv == "" {
		return 0, errors.New("the API server returned no resourceVersion")
	}
	for _, c := range rv {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("resourceVersion %q is not a number: this store needs an etcd-backed API server", rv)
		}
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}

func sortObjects(objs []v1alpha1.Object) {
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i], objs[j]
		ak, bk := a.GetObjectKind().GroupVersionKind().Kind, b.GetObjectKind().GroupVersionKind().Kind
		if ak != bk {
			return ak < bk
		}
		if a.GetNamespace() != b.GetNamespace() {
			return a.GetNamespace() < b.GetNamespace()
		}
		return a.GetName() < b.GetName()
	})
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
	finish(k, o)
	if !k.Namespaced {
		o.SetNamespace("")
	}
	_, key, err := resolveKey(store.Key{Kind: k.Kind, Namespace: o.GetNamespace(), Name: o.GetName()})
	if err != nil {
		return nil, store.Key{}, nil, err
	}
	if k.ReadOnly {
		return nil, store.Key{}, nil, readOnly(k)
	}
	return k, key, o, nil
}

func isNil(obj v1alpha1.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Create stores a new object; a status it carries is written through the status
// subresource right after.
func (s *Store) Create(ctx context.Context, obj v1alpha1.Object) (v1alpha1.Object, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	k, key, o, err := prepare(obj)
	if err != nil {
		return nil, err
	}
	return s.create(ctx, k, key, o)
}

func (s *Store) create(ctx context.Context, k *v1alpha1.KindInfo, key store.Key, o v1alpha1.Object) (v1alpha1.Object, error) {
	r, err := s.ref(k)
	if err != nil {
		return nil, err
	}
	// The API server assigns these; a set resourceVersion is refused on create.
	o.SetResourceVersion("")
	o.SetUID("")
	o.SetCreationTimestamp(metav1.Time{})
	o.SetGeneration(0)
	o.SetDeletionTimestamp(nil)
	out := k.New()
	if err := r.req("POST", key.Namespace).Body(o).Do(ctx).Into(out); err != nil {
		return nil, mapErr(key, err)
	}
	finish(k, out)
	out, err = s.writeStatus(ctx, r, key, o, out)
	if err != nil {
		return nil, err
	}
	s.mirrorEvent(ctx, out)
	return out, nil
}

// Update replaces an object, compare-and-swap on its resourceVersion when set.
func (s *Store) Update(ctx context.Context, obj v1alpha1.Object) (v1alpha1.Object, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	k, key, o, err := prepare(obj)
	if err != nil {
		return nil, err
	}
	if o.GetResourceVersion() != "" {
		return s.update(ctx, k, key, o)
	}
	// Unconditional: write over whatever is stored now, again if it changes meanwhile.
	for {
		cur, err := s.get(ctx, k, key)
		if err != nil {
			return nil, err
		}
		o.SetResourceVersion(cur.GetResourceVersion())
		out, err := s.update(ctx, k, key, o)
		if errors.Is(err, store.ErrConflict) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			continue
		}
		return out, err
	}
}

func (s *Store) update(ctx context.Context, k *v1alpha1.KindInfo, key store.Key, o v1alpha1.Object) (v1alpha1.Object, error) {
	r, err := s.ref(k)
	if err != nil {
		return nil, err
	}
	// The API server keeps uid and creationTimestamp; a uid that differs from the stored
	// one would be refused, and the store's contract is to keep the stored one.
	o.SetUID("")
	if o.GetDeletionTimestamp() != nil {
		// Only a DELETE sets the mark; if it is not set yet, this is DeleteOrMark.
		cur, err := s.get(ctx, k, key)
		if err != nil {
			return nil, err
		}
		if cur.GetResourceVersion() != o.GetResourceVersion() {
			return nil, fmt.Errorf("%s: %w", key, store.ErrConflict)
		}
		if cur.GetDeletionTimestamp() == nil && len(o.GetFinalizers()) > 0 {
			if !slices.Equal(cur.GetFinalizers(), o.GetFinalizers()) {
				// Finalizers first, then the mark.
				o.SetDeletionTimestamp(nil)
				out, err := s.update(ctx, k, key, o)
				if err != nil {
					return nil, err
				}
				o.SetResourceVersion(out.GetResourceVersion())
			}
			return s.deleteAt(ctx, r, key, o.GetResourceVersion(), cur)
		}
	}
	out := k.New()
	if err := r.req("PUT", key.Namespace).Name(key.Name).Body(o).Do(ctx).Into(out); err != nil {
		return nil, mapErr(key, err)
	}
	finish(k, out)
	if out.GetDeletionTimestamp() != nil && len(out.GetFinalizers()) == 0 {
		return out, nil // removed by the API server: the last finalizer went
	}
	out, err = s.writeStatus(ctx, r, key, o, out)
	if err != nil {
		return nil, err
	}
	s.mirrorEvent(ctx, out)
	return out, nil
}

// writeStatus puts want's status through the status subresource when the main write
// (whose result is got) did not store it.
func (s *Store) writeStatus(ctx context.Context, r kindRef, key store.Key, want, got v1alpha1.Object) (v1alpha1.Object, error) {
	if r.gv != v1alpha1.GroupVersion {
		return got, nil // core kinds: the cluster owns their status
	}
	ws, err := statusOf(want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	gs, err := statusOf(got)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if ws == gs {
		return got, nil
	}
	next, ok := want.DeepCopyObject().(v1alpha1.Object)
	if !ok {
		return nil, fmt.Errorf("%s: deep copy is not an object", key)
	}
	next.SetResourceVersion(got.GetResourceVersion())
	next.SetUID(got.GetUID())
	out := r.info.New()
	if err := r.req("PUT", key.Namespace).Name(key.Name).SubResource("status").Body(next).Do(ctx).Into(out); err != nil {
		return nil, mapErr(key, fmt.Errorf("status: %w", err))
	}
	return finish(r.info, out), nil
}

// Delete removes an object; with a non-empty resourceVersion only if it matches. Its
// finalizers are cleared first: the store's Delete removes, store.DeleteOrMark marks.
func (s *Store) Delete(ctx context.Context, key store.Key, resourceVersion string) (v1alpha1.Object, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	k, key, err := resolveKey(key)
	if err != nil {
		return nil, err
	}
	if k.ReadOnly {
		return nil, readOnly(k)
	}
	return s.delete(ctx, k, key, resourceVersion)
}

func (s *Store) delete(ctx context.Context, k *v1alpha1.KindInfo, key store.Key, resourceVersion string) (v1alpha1.Object, error) {
	r, err := s.ref(k)
	if err != nil {
		return nil, err
	}
	cur, err := s.get(ctx, k, key)
	if err != nil {
		return nil, err
	}
	if resourceVersion != "" && resourceVersion != cur.GetResourceVersion() {
		return nil, fmt.Errorf("%s: %w", key, store.ErrConflict)
	}
	rv := cur.GetResourceVersion()
	if len(cur.GetFinalizers()) > 0 {
		next, _ := cur.DeepCopyObject().(v1alpha1.Object)
		next.SetFinalizers(nil)
		out := k.New()
		if err := r.req("PUT", key.Namespace).Name(key.Name).Body(next).Do(ctx).Into(out); err != nil {
			return nil, mapErr(key, err)
		}
		finish(k, out)
		if cur.GetDeletionTimestamp() != nil {
			s.unmirrorEvent(ctx, out)
			return out, nil // the API server removed it with its last finalizer
		}
		rv = out.GetResourceVersion()
		cur = out
	}
	out, err := s.deleteAt(ctx, r, key, rv, cur)
	if err != nil {
		return nil, err
	}
	s.unmirrorEvent(ctx, out)
	return out, nil
}

// deleteAt sends DELETE with a resourceVersion precondition and returns the object the
// API server answers with: removed (at the revision of its removal), or marked with a
// deletionTimestamp while finalizers remain. cur stands in when the answer is a Status.
func (s *Store) deleteAt(ctx context.Context, r kindRef, key store.Key, rv string, cur v1alpha1.Object) (v1alpha1.Object, error) {
	opts := &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}}
	res := r.req("DELETE", key.Namespace).Name(key.Name).Body(opts).Do(ctx)
	if err := res.Error(); err != nil {
		return nil, mapErr(key, err)
	}
	out := r.info.New()
	if err := res.Into(out); err != nil || out.GetName() == "" {
		// The answer is a Status, not the object: return the object as last read.
		return cur, nil
	}
	return finish(r.info, out), nil
}

// Txn runs fn in a transaction whose writes are sent when fn returns nil (see the
// package comment for what Kubernetes allows).
func (s *Store) Txn(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	t := &tx{s: s, ctx: ctx, entries: map[store.Key]*txEntry{}}
	err := fn(t)
	t.done = true
	if err != nil {
		return err
	}
	return t.commit()
}

// MapError wraps an error of the API server about key with the store's sentinel error
// for it: ErrNotFound, ErrExists, ErrConflict or ErrGone.
func MapError(key store.Key, err error) error { return mapErr(key, err) }
