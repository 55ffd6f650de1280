package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// replayBatch bounds how many history entries one read transaction scans, so a slow
// consumer never holds a read transaction (and with it the file's remapping) open.
const replayBatch = 256

// errCompacted: history was compacted past a watcher while it replayed.
var errCompacted = errors.New("history compacted during replay")

// watcher is one Watch. live is filled by broadcast and never blocks it: when live is
// full, broadcast closes it and drops the watcher, which then delivers what live still
// holds and closes out.
type watcher struct {
	m    matcher
	live chan record
	out  chan store.Event
}

// Watch streams the changes f selects after revision from; see store.Store.
func (s *Store) Watch(ctx context.Context, f store.Filter, from uint64) (<-chan store.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := resolveFilter(f)
	if err != nil {
		return nil, err
	}
	w := &watcher{m: m, live: make(chan record, s.opts.WatchBuffer), out: make(chan store.Event)}
	if !s.subscribe(w) {
		return nil, store.ErrClosed
	}
	if err := s.checkFrom(from); err != nil {
		s.unsubscribe(w)
		s.wg.Done()
		return nil, err
	}
	go s.run(ctx, w, from)
	return w.out, nil
}

// checkFrom fails with ErrGone when history no longer holds every change after from.
func (s *Store) checkFrom(from uint64) error {
	var rev, compacted uint64
	err := s.view(func(btx *bbolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		rev, compacted = getUint(meta, keyRevision), getUint(meta, keyCompacted)
		return nil
	})
	switch {
	case err != nil:
		return err
	case from < compacted:
		return fmt.Errorf("watch from resourceVersion %d: the oldest kept is %d: %w", from, compacted+1, store.ErrGone)
	case from > rev:
		// Only a replaced or restored data directory gets here; the client's view
		// belongs to another history, so it must list again.
		return fmt.Errorf("watch from resourceVersion %d: the store is at %d: %w", from, rev, store.ErrGone)
	}
	return nil
}

// subscribe adds w to the watchers that broadcast feeds; false if the store is closed.
// On success the caller owns one count of s.wg.
func (s *Store) subscribe(w *watcher) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.watchers[w] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Store) unsubscribe(w *watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watchers, w)
}

// broadcast hands committed records to every watcher they match, dropping (and closing)
// any watcher whose buffer is full rather than waiting for it.
func (s *Store) broadcast(recs []record) {
	if len(recs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		for _, r := range recs {
			if !w.m.match(r.Kind, r.Namespace) {
				continue
			}
			select {
			case w.live <- r:
				continue
			default:
			}
			delete(s.watchers, w)
			close(w.live)
			s.log.Warn("watcher fell behind; closing it", "kind", w.m.kind, "namespace", w.m.namespace,
				"buffer", cap(w.live), "resourceVersion", r.Rev)
			break
		}
	}
}

// run replays history after from, then forwards live records newer than the replay.
func (s *Store) run(ctx context.Context, w *watcher, from uint64) {
	defer s.wg.Done()
	defer close(w.out)
	defer s.unsubscribe(w)
	last := from
	for {
		recs, scanned, err := s.readHistory(w.m, last)
		if err != nil {
			if !errors.Is(err, store.ErrClosed) {
				s.log.Warn("watch replay stopped", "after", last, "err", err)
			}
			return
		}
		for _, r := range recs {
			if !s.send(ctx, w, r) {
				return
			}
		}
		if scanned == last {
			break
		}
		last = scanned
	}
	for {
		select {
		case r, ok := <-w.live:
			if !ok {
				return
			}
			if r.Rev <= last {
				continue
			}
			if !s.send(ctx, w, r) {
				return
			}
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

// readHistory returns the records m selects among up to replayBatch history entries
// after revision after, and the last revision scanned (after itself when caught up).
func (s *Store) readHistory(m matcher, after uint64) ([]record, uint64, error) {
	var recs []record
	scanned := after
	err := s.view(func(btx *bbolt.Tx) error {
		c := btx.Bucket(bucketHistory).Cursor()
		n := 0
		for k, v := c.Seek(u64(after + 1)); k != nil && n < replayBatch; k, v = c.Next() {
			rev := revOf(k)
			if rev != scanned+1 {
				return fmt.Errorf("want revision %d, oldest kept is %d: %w", scanned+1, rev, errCompacted)
			}
			scanned, n = rev, n+1
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("history entry %d: %w", rev, err)
			}
			if !m.match(r.Kind, r.Namespace) {
				continue
			}
			r.Rev = rev
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return nil, after, err
	}
	return recs, scanned, nil
}

// send decodes r into the watcher's own object and delivers it; false when the watch
// ends first. A record of a kind this binary does not know is skipped.
func (s *Store) send(ctx context.Context, w *watcher, r record) bool {
	k, err := v1alpha1.LookupKind(r.Kind)
	if err != nil {
		s.log.Warn("skipping change of unknown kind", "kind", r.Kind, "resourceVersion", r.Rev)
		return true
	}
	obj, err := decode(k, r.Object)
	if err != nil {
		s.log.Error("watch stopped on an undecodable change", "resourceVersion", r.Rev, "err", err)
		return false
	}
	select {
	case w.out <- store.Event{Type: r.Type, Object: obj, ResourceVersion: r.Rev}:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}
