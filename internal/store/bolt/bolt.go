// Package bolt is the embedded store of standalone mode: every object and the recent
// change history live in one bbolt file, canarymesh.db, inside a data directory that one
// canarymesh process holds at a time (a file lock; a second opener fails with ErrInUse).
//
// Layout of the file:
//
//	meta     "format"    → uint64, the layout version
//	         "revision"  → uint64, the last resourceVersion given out
//	         "compacted" → uint64, the newest revision dropped from history
//	objects  kind \x00 namespace \x00 name → object JSON (apiVersion and kind set)
//	history  revision, 8 bytes big-endian → {"type", "kind", "namespace", "name", "object"}
//
// The object key puts kind first and namespace second, so listing one kind, or one kind
// in one namespace, is a prefix scan that already comes out sorted. Every written object
// takes the next revision and leaves exactly one history entry, so history keys are
// contiguous; the oldest are dropped once more than Options.HistorySize are kept.
//
// A write transaction is one bbolt transaction, fsynced before the write returns, so an
// acknowledged write survives kill -9 and power loss. Events are broadcast after commit:
//
//	writer: bbolt commit ──▶ broadcast (non-blocking) ──▶ each watcher's live buffer
//	watcher: subscribe ─▶ replay history (from, now] ─▶ live events newer than the replay
//
// Subscribing before replaying means nothing committed in between is missed; skipping
// live events at or below the last replayed revision means nothing is seen twice.
package bolt

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// FileName is the name of the database file inside the data directory.
const FileName = "canarymesh.db"

// Defaults for Options.
const (
	DefaultFileMode    os.FileMode = 0o600
	DefaultHistorySize             = 10000
	DefaultWatchBuffer             = 1024
	DefaultLockTimeout             = time.Second
)

// formatVersion is the layout described in the package comment.
const formatVersion = 1

// ErrInUse is returned by Open when another process holds the data directory.
var ErrInUse = errors.New("database file is locked")

var (
	bucketMeta    = []byte("meta")
	bucketObjects = []byte("objects")
	bucketHistory = []byte("history")

	keyFormat    = []byte("format")
	keyRevision  = []byte("revision")
	keyCompacted = []byte("compacted")
)

// Options tune a Store. The zero value is usable.
type Options struct {
	// FileMode is the permission of a newly created database file (default 0600).
	FileMode os.FileMode
	// HistorySize is how many past changes are kept for Watch to resume from
	// (default 10000).
	HistorySize int
	// WatchBuffer is how many events a watcher may fall behind before it is closed
	// (default 1024).
	WatchBuffer int
	// LockTimeout bounds the wait for the data directory's file lock (default 1s).
	LockTimeout time.Duration
	// Logger receives the store's log lines (default: discarded).
	Logger *slog.Logger
	// Now is the clock for creationTimestamp (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.FileMode == 0 {
		o.FileMode = DefaultFileMode
	}
	if o.HistorySize <= 0 {
		o.HistorySize = DefaultHistorySize
	}
	if o.WatchBuffer <= 0 {
		o.WatchBuffer = DefaultWatchBuffer
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is a store.Store on a bbolt file.
type Store struct {
	db   *bbolt.DB
	dir  string
	opts Options
	log  *slog.Logger

	// wmu serialises each write transaction together with its broadcast, so events
	// reach watchers in revision order.
	wmu sync.Mutex

	mu       sync.Mutex // guards closed and watchers
	closed   bool
	watchers map[*watcher]struct{}
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in data directory dir.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	timeout := opts.LockTimeout
	if dl, ok := ctx.Deadline(); ok {
		// bbolt reads a zero timeout as "wait forever", so keep it positive.
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	path := filepath.Join(dir, FileName)
	db, err := bbolt.Open(path, opts.FileMode, &bbolt.Options{Timeout: timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("data directory %s is in use by another canarymesh: %w", dir, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{
		db:       db,
		dir:      dir,
		opts:     opts,
		log:      opts.Logger,
		watchers: make(map[*watcher]struct{}),
		done:     make(chan struct{}),
	}
	var rev uint64
	err = db.Update(func(btx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketObjects, bucketHistory} {
			if _, err := btx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := btx.Bucket(bucketMeta)
		switch f := getUint(meta, keyFormat); f {
		case 0:
			if err := putUint(meta, keyFormat, formatVersion); err != nil {
				return err
			}
		case formatVersion:
		default:
			return fmt.Errorf("database format %d is newer than this canarymesh understands (%d)", f, formatVersion)
		}
		rev = getUint(meta, keyRevision)
		// A smaller HistorySize than last time takes effect now, not at the next write.
		return compact(meta, btx.Bucket(bucketHistory), rev, opts.HistorySize)
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s.log.Info("store opened", "path", path, "revision", rev)
	return s, nil
}

// Close ends every watch and closes the database file. Writes in flight finish first.
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
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.db.Path(), err)
	}
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// view runs fn in a read transaction.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}

// write runs fn in one write transaction and broadcasts its events after commit.
func (s *Store) write(ctx context.Context, fn func(*tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.isClosed() {
		return store.ErrClosed
	}
	var t *tx
	err := s.db.Update(func(btx *bbolt.Tx) error {
		t = newTx(s, btx)
		defer func() { t.done = true }()
		if err := fn(t); err != nil {
			return err
		}
		return t.commit()
	})
	if err != nil {
		return err
	}
	s.broadcast(t.records)
	return nil
}

// Get returns the stored object.
func (s *Store) Get(ctx context.Context, key store.Key) (v1alpha1.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k, key, err := resolveKey(key)
	if err != nil {
		return nil, err
	}
	var obj v1alpha1.Object
	err = s.view(func(btx *bbolt.Tx) error {
		raw := btx.Bucket(bucketObjects).Get(encodeKey(key))
		if raw == nil {
			return fmt.Errorf("%s: %w", key, store.ErrNotFound)
		}
		o, err := decode(k, raw)
		obj = o
		return err
	})
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// List returns the objects f selects, sorted by kind, namespace and name, and the
// store's revision they were read at.
func (s *Store) List(ctx context.Context, f store.Filter) ([]v1alpha1.Object, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	m, err := resolveFilter(f)
	if err != nil {
		return nil, 0, err
	}
	var (
		out []v1alpha1.Object
		rev uint64
	)
	err = s.view(func(btx *bbolt.Tx) error {
		rev = getUint(btx.Bucket(bucketMeta), keyRevision)
		objs, err := listIn(btx, m, s.log)
		out = objs
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return out, rev, nil
}

// Create stores a new object.
func (s *Store) Create(ctx context.Context, obj v1alpha1.Object) (v1alpha1.Object, error) {
	var out v1alpha1.Object
	err := s.write(ctx, func(t *tx) (err error) {
		out, err = t.Create(obj)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Update replaces an object, compare-and-swap on its resourceVersion if set.
func (s *Store) Update(ctx context.Context, obj v1alpha1.Object) (v1alpha1.Object, error) {
	var out v1alpha1.Object
	err := s.write(ctx, func(t *tx) (err error) {
		out, err = t.Update(obj)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete removes an object, only if its resourceVersion matches when one is given.
func (s *Store) Delete(ctx context.Context, key store.Key, resourceVersion string) (v1alpha1.Object, error) {
	var out v1alpha1.Object
	err := s.write(ctx, func(t *tx) (err error) {
		out, err = t.Delete(key, resourceVersion)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Txn runs fn in one write transaction; fn's error is returned as it is and undoes
// every write fn made. fn must use only tx: the Store's own methods wait for the
// transaction fn is in.
func (s *Store) Txn(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.write(ctx, func(t *tx) error { return fn(t) })
}

// matcher is a resolved Filter: Kind is canonical, and Namespace is empty for a
// cluster-scoped Kind.
type matcher struct {
	kind, namespace string
}

func (m matcher) match(kind, namespace string) bool {
	return (m.kind == "" || m.kind == kind) && (m.namespace == "" || m.namespace == namespace)
}

// prefix is where a scan for m starts in the objects bucket.
func (m matcher) prefix() []byte {
	switch {
	case m.kind == "":
		return nil
	case m.namespace == "":
		return []byte(m.kind + "\x00")
	default:
		return []byte(m.kind + "\x00" + m.namespace + "\x00")
	}
}

func resolveFilter(f store.Filter) (matcher, error) {
	if f.Kind == "" {
		return matcher{namespace: f.Namespace}, nil
	}
	k, err := v1alpha1.LookupKind(f.Kind)
	if err != nil {
		return matcher{}, err
	}
	m := matcher{kind: k.Kind, namespace: f.Namespace}
	if !k.Namespaced {
		m.namespace = ""
	}
	return m, nil
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
	if strings.ContainsRune(key.Name, 0) || strings.ContainsRune(key.Namespace, 0) {
		return nil, key, fmt.Errorf("%s: name and namespace must not contain NUL", key)
	}
	return k, key, nil
}

func encodeKey(k store.Key) []byte {
	return []byte(k.Kind + "\x00" + k.Namespace + "\x00" + k.Name)
}

func decodeKey(b []byte) (store.Key, bool) {
	parts := bytes.SplitN(b, []byte{0}, 3)
	if len(parts) != 3 {
		return store.Key{}, false
	}
	return store.Key{Kind: string(parts[0]), Namespace: string(parts[1]), Name: string(parts[2])}, true
}

// listIn scans the objects bucket for m, skipping (with a warning) kinds this binary no
// longer knows, so one leftover object cannot break every list.
func listIn(btx *bbolt.Tx, m matcher, log *slog.Logger) ([]v1alpha1.Object, error) {
	var out []v1alpha1.Object
	prefix := m.prefix()
	c := btx.Bucket(bucketObjects).Cursor()
	for bk, raw := c.Seek(prefix); bk != nil && bytes.HasPrefix(bk, prefix); bk, raw = c.Next() {
		key, ok := decodeKey(bk)
		if !ok {
			return nil, fmt.Errorf("malformed object key %q", bk)
		}
		if !m.match(key.Kind, key.Namespace) {
			continue
		}
		k, err := v1alpha1.LookupKind(key.Kind)
		if err != nil {
			log.Warn("skipping object of unknown kind", "key", key.String())
			continue
		}
		obj, err := decode(k, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}

// decode returns a new object of kind k from its stored JSON.
func decode(k *v1alpha1.KindInfo, raw []byte) (v1alpha1.Object, error) {
	obj := k.NewObject()
	if err := json.Unmarshal(raw, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.Kind, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	return obj, nil
}

func isNil(obj v1alpha1.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// newUID returns a random (version 4) UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getUint(b *bbolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bbolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, u64(v))
}
