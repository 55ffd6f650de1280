package kube

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Watch streams every change after resourceVersion from: one API server watch per kind
// f selects, merged into one channel. From 0 starts with an Added event for every
// object there is now (the API server's resourceVersion "0"), which is what List→Watch
// needs. A from older than the API server's compacted history is ErrGone, checked before
// Watch returns; history compacted while watching closes the channel. A watch the API
// server ends on its own (its timeout) is resumed from the last revision it delivered,
// so the channel closes only when ctx ends, the store closes, or history is lost.
//
// Within one kind events come in revision order; between kinds, each kind's stream is
// delivered as it arrives.
func (s *Store) Watch(ctx context.Context, f store.Filter, from uint64) (<-chan store.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sel, err := resolveFilter(f)
	if err != nil {
		return nil, err
	}
	rv := strconv.FormatUint(from, 10)
	if from > 0 && len(sel) > 0 {
		// A watch from a compacted revision fails only once it runs; a list at exactly
		// that revision fails the same way, now.
		r, err := s.ref(sel[0].kind)
		if err != nil {
			return nil, err
		}
		lobj, err := s.scheme.New(r.gv.WithKind(sel[0].kind.Kind + "List"))
		if err != nil {
			return nil, err
		}
		err = r.req("GET", sel[0].namespace).VersionedParams(&metav1.ListOptions{
			ResourceVersion: rv, ResourceVersionMatch: metav1.ResourceVersionMatchExact, Limit: 1,
		}, s.params).Do(ctx).Into(lobj)
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return nil, fmt.Errorf("watch from resourceVersion %d: %w (%w)", from, store.ErrGone, err)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	out := make(chan store.Event, s.opts.WatchBuffer)
	var streams []watch.Interface
	for _, ks := range sel {
		w, err := s.startWatch(wctx, ks, rv)
		if err != nil {
			for _, w := range streams {
				w.Stop()
			}
			cancel()
			return nil, err
		}
		streams = append(streams, w)
	}
	var wg sync.WaitGroup
	for i, ks := range sel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel() // one kind's history lost ends the merged stream
			s.follow(wctx, ks, streams[i], rv, out)
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-wctx.Done():
		case <-s.done:
			cancel()
		}
		wg.Wait()
		close(out)
	}()
	return out, nil
}

func (s *Store) startWatch(ctx context.Context, sel selection, rv string) (watch.Interface, error) {
	r, err := s.ref(sel.kind)
	if err != nil {
		return nil, err
	}
	opts := &metav1.ListOptions{Watch: true, ResourceVersion: rv, AllowWatchBookmarks: true}
	if d := s.opts.WatchTimeout; d > 0 {
		secs := int64(max(d.Round(time.Second), time.Second) / time.Second)
		opts.TimeoutSeconds = &secs
	}
	w, err := r.req("GET", sel.namespace).VersionedParams(opts, s.params).Watch(ctx)
	if err != nil {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return nil, fmt.Errorf("watch %s from resourceVersion %s: %w (%w)", sel.kind.Plural, rv, store.ErrGone, err)
		}
		return nil, fmt.Errorf("watch %s: %w", sel.kind.Plural, err)
	}
	return w, nil
}

// follow forwards one kind's events until ctx ends or its history is lost. A watch the
// API server ends, or ends with another error (its cache still starting, a timeout), is
// started again from the last revision delivered, after a pause that grows to a second.
func (s *Store) follow(ctx context.Context, sel selection, w watch.Interface, rv string, out chan<- store.Event) {
	pause := 50 * time.Millisecond
	for {
		lost := s.forward(ctx, sel, w, &rv, out)
		w.Stop()
		if lost || ctx.Err() != nil {
			return
		}
		for {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			pause = min(2*pause, time.Second)
			var err error
			w, err = s.startWatch(ctx, sel, rv)
			if err == nil {
				s.log.Debug("watch resumed", "kind", sel.kind.Kind, "resourceVersion", rv)
				break
			}
			if errors.Is(err, store.ErrGone) {
				s.log.Warn("watch history lost; the consumer lists again", "kind", sel.kind.Kind, "resourceVersion", rv, "err", err)
				return
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Debug("watch could not resume; retrying", "kind", sel.kind.Kind, "resourceVersion", rv, "err", err)
		}
	}
}

// forward delivers w's events and advances *rv, until w ends; lost says the history
// after *rv is gone.
func (s *Store) forward(ctx context.Context, sel selection, w watch.Interface, rv *string, out chan<- store.Event) (lost bool) {
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Bookmark:
			if o, ok := ev.Object.(v1alpha1.Object); ok && o.GetResourceVersion() != "" {
				*rv = o.GetResourceVersion()
			}
			continue
		case watch.Error:
			if ctx.Err() != nil {
				return false
			}
			err := apierrors.FromObject(ev.Object)
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				s.log.Warn("watch history lost; the consumer lists again", "kind", sel.kind.Kind, "resourceVersion", *rv, "err", err)
				return true
			}
			s.log.Debug("watch ended with an error; resuming", "kind", sel.kind.Kind, "err", err)
			return false
		}
		o, ok := ev.Object.(v1alpha1.Object)
		if !ok {
			s.log.Warn("watch event of an unexpected type", "kind", sel.kind.Kind, "type", fmt.Sprintf("%T", ev.Object))
			continue
		}
		n, err := parseRV(o.GetResourceVersion())
		if err != nil {
			s.log.Warn("watch event without a usable resourceVersion", "kind", sel.kind.Kind, "err", err)
			continue
		}
		*rv = o.GetResourceVersion()
		se := store.Event{Type: store.EventType(ev.Type), Object: finish(sel.kind, o), ResourceVersion: n}
		select {
		case out <- se:
		case <-ctx.Done():
			return false
		}
	}
	return false
}
