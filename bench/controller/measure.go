package main

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/bench/internal/procstat"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/store"
)

// lags collects, inside the measured window, how late the runs of the canaries started
// (canary.Controller.OnRun). Two dues are told apart:
//
//   - the round's: a round of checks is due one interval after the previous round of
//     the same canary started (DESIGN.md: rounds are paced from their start, so the
//     time the checks take does not stretch the interval). This is the lag a user sees.
//   - the timer's: when the controller's own timer for the run was set to fire. It is
//     set an interval after the run that judged the previous round, so this lag leaves
//     out the time from a round's start to its judgement.
type lags struct {
	interval time.Duration
	mu       sync.Mutex
	from     time.Time // zero until the window opens
	to       time.Time
	last     map[store.Key]time.Time // start of each canary's last round
	rounds   []time.Duration         // round lag
	paced    []time.Duration         // timer lag of the runs on a timer
	atOnce   []time.Duration         // timer lag of the runs asked for at once (judging a round)
	other    int                     // runs a watch event caused
}

func (l *lags) open(from, to time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.from, l.to = from, to
}

func (l *lags) observe(t canary.RunTiming) {
	l.mu.Lock()
	defer l.mu.Unlock()
	in := !l.from.IsZero() && !t.Start.Before(l.from) && !t.Start.After(l.to)
	if t.Round {
		if prev, ok := l.last[t.Canary]; ok && in {
			l.rounds = append(l.rounds, t.Start.Sub(prev.Add(l.interval)))
		}
		if l.last == nil {
			l.last = map[store.Key]time.Time{}
		}
		l.last[t.Canary] = t.Start
	}
	switch {
	case !in:
	case t.Due.IsZero():
		l.other++
	case t.Wait > 0:
		l.paced = append(l.paced, t.Start.Sub(t.Due))
	default:
		l.atOnce = append(l.atOnce, t.Start.Sub(t.Due))
	}
}

// usage is the process' CPU time and peak resident set so far.
type usage struct {
	cpu    time.Duration
	maxRSS int64 // KiB
	// machine is every core's busy time (procstat.MachineBusy), to tell what else ran.
	machine time.Duration
}

func rusage() usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}
	}
	tv := func(t syscall.Timeval) time.Duration {
		return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
	}
	return usage{cpu: tv(ru.Utime) + tv(ru.Stime), maxRSS: int64(ru.Maxrss), machine: procstat.MachineBusy()}
}

// storeRevision is the store's resourceVersion now: every write moves it by one.
func storeRevision(ctx context.Context, st store.Store) uint64 {
	_, rv, err := st.List(ctx, store.Filter{Kind: "Mesh"})
	if err != nil {
		return 0
	}
	return rv
}

// countEvents counts the Events the controller records (new ones and repeats), from
// the store's change stream, until ctx ends.
func countEvents(ctx context.Context, st store.Store, n *atomic.Int64) {
	rv := storeRevision(ctx, st)
	for ctx.Err() == nil {
		ev, err := st.Watch(ctx, store.Filter{Kind: "Event"}, rv)
		if err != nil {
			_, rv, _ = st.List(ctx, store.Filter{Kind: "Event"}) // compacted: lose a few, go on
			continue
		}
		for e := range ev {
			rv = e.ResourceVersion
			if e.Type != store.Deleted {
				n.Add(1)
			}
		}
	}
}

// timedStore is the store with the time of every write recorded inside the window: the
// bolt store serialises writes and syncs each to disk, so a slow disk shows up as lag.
type timedStore struct {
	store.Store
	mu       sync.Mutex
	from, to time.Time
	writes   []time.Duration
}

func (s *timedStore) open(from, to time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.from, s.to = from, to
}

func (s *timedStore) took(start time.Time) {
	d := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.from.IsZero() && !start.Before(s.from) && !start.After(s.to) {
		s.writes = append(s.writes, d)
	}
}

func (s *timedStore) Create(ctx context.Context, o v1alpha1.Object) (v1alpha1.Object, error) {
	defer s.took(time.Now())
	return s.Store.Create(ctx, o)
}

func (s *timedStore) Update(ctx context.Context, o v1alpha1.Object) (v1alpha1.Object, error) {
	defer s.took(time.Now())
	return s.Store.Update(ctx, o)
}

func (s *timedStore) Delete(ctx context.Context, k store.Key, rv string) (v1alpha1.Object, error) {
	defer s.took(time.Now())
	return s.Store.Delete(ctx, k, rv)
}

func (s *timedStore) Txn(ctx context.Context, fn func(tx store.Tx) error) error {
	defer s.took(time.Now())
	return s.Store.Txn(ctx, fn)
}
