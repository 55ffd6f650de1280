package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Defaults of Options.
const (
	DefaultGracePeriod          = 5 * time.Second
	DefaultBackoffInitial       = time.Second
	DefaultBackoffMax           = 30 * time.Second
	DefaultStableAfter          = 10 * time.Second
	DefaultStartupProbeInterval = 250 * time.Millisecond
	DefaultLogMaxBytes          = 10 << 20
	DefaultLogBufferBytes       = 256 << 10
	DefaultResyncInterval       = 5 * time.Second
)

// ErrUnknownWorkload: the supervisor runs no workload of that name.
var ErrUnknownWorkload = errors.New("workload not supervised here")

// Options tune a Supervisor. The zero value is usable.
type Options struct {
	// DataDir holds the instances' log files, under logs/<namespace>/<name>-<index>.log;
	// empty keeps output in memory only.
	DataDir string
	// Log receives the supervisor's own lines (default: discarded).
	Log *slog.Logger
	// GracePeriod between SIGTERM and SIGKILL when stopping an instance (default 5s).
	GracePeriod time.Duration
	// BackoffInitial is the wait before restarting a process that exited early; it
	// doubles at each early exit up to BackoffMax (defaults 1s and 30s).
	BackoffInitial, BackoffMax time.Duration
	// StableAfter is how long a process must run for its backoff to reset and a crash
	// loop to be over (default 10s).
	StableAfter time.Duration
	// StartupProbeInterval is how often an instance is probed until it first passes
	// (default 250ms, never more often than the probe's period).
	StartupProbeInterval time.Duration
	// LogMaxBytes caps a log file; a full one is rotated to <file>.1 (default 10 MiB).
	LogMaxBytes int64
	// LogBufferBytes of each instance's output are kept in memory (default 256 KiB).
	LogBufferBytes int
	// ResyncInterval between reconciles without any change, which retries status
	// writes that failed (default 5s).
	ResyncInterval time.Duration
	// Now is the clock for condition times (default time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.GracePeriod, DefaultGracePeriod)
	def(&o.BackoffInitial, DefaultBackoffInitial)
	def(&o.BackoffMax, DefaultBackoffMax)
	def(&o.StableAfter, DefaultStableAfter)
	def(&o.StartupProbeInterval, DefaultStartupProbeInterval)
	def(&o.ResyncInterval, DefaultResyncInterval)
	o.BackoffMax = max(o.BackoffMax, o.BackoffInitial)
	if o.LogMaxBytes <= 0 {
		o.LogMaxBytes = DefaultLogMaxBytes
	}
	if o.LogBufferBytes <= 0 {
		o.LogBufferBytes = DefaultLogBufferBytes
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Supervisor runs the processes of every Workload in a store and writes their status
// back. Run it once; it stops every process when its context ends.
type Supervisor struct {
	store store.Store
	opts  Options
	log   *slog.Logger

	mu      sync.Mutex
	runners map[store.Key]*runner
	ports   map[int]bool // ports handed to live instances
	wg      sync.WaitGroup
}

// New returns a Supervisor of the Workloads in st.
func New(st store.Store, opts Options) *Supervisor {
	opts = opts.withDefaults()
	return &Supervisor{
		store:   st,
		opts:    opts,
		log:     opts.Log,
		runners: make(map[store.Key]*runner),
		ports:   make(map[int]bool),
	}
}

// Run supervises until ctx ends, then stops every instance gracefully and returns once
// all have exited. Processes of an earlier run are not adopted: they were this
// process's children and ended with it.
func (s *Supervisor) Run(ctx context.Context) error {
	defer s.stopAll()
	for ctx.Err() == nil {
		rv, err := s.resync(ctx)
		if err == nil {
			err = s.follow(ctx, rv)
		}
		if err == nil || ctx.Err() != nil {
			continue
		}
		if errors.Is(err, store.ErrClosed) {
			return err
		}
		s.log.Warn("workload watch failed; listing again", "err", err)
		if !sleepCtx(ctx, time.Second) {
			break
		}
	}
	return nil
}

// resync lists every Workload, starts or updates its runner, and stops the runners of
// workloads that are gone.
func (s *Supervisor) resync(ctx context.Context) (uint64, error) {
	objs, rv, err := s.store.List(ctx, store.Filter{Kind: "Workload"})
	if err != nil {
		return 0, err
	}
	seen := make(map[store.Key]bool, len(objs))
	for _, o := range objs {
		if w, ok := o.(*v1alpha1.Workload); ok {
			seen[keyOf(w)] = true
			s.apply(ctx, w)
		}
	}
	s.mu.Lock()
	var gone []store.Key
	for k := range s.runners {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	s.mu.Unlock()
	for _, k := range gone {
		s.remove(k)
	}
	return rv, nil
}

// follow applies watch events from rv until the watch ends.
func (s *Supervisor) follow(ctx context.Context, rv uint64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := s.store.Watch(wctx, store.Filter{Kind: "Workload"}, rv)
	if err != nil {
		return err
	}
	for ev := range events {
		w, ok := ev.Object.(*v1alpha1.Workload)
		if !ok {
			continue
		}
		if ev.Type == store.Deleted {
			s.remove(keyOf(w))
		} else {
			s.apply(ctx, w)
		}
	}
	return nil
}

func keyOf(w *v1alpha1.Workload) store.Key {
	return store.Key{Kind: "Workload", Namespace: w.Namespace, Name: w.Name}
}

func (s *Supervisor) apply(ctx context.Context, w *v1alpha1.Workload) {
	k := keyOf(w)
	s.mu.Lock()
	r := s.runners[k]
	if r == nil {
		r = newRunner(ctx, s, w.Namespace, w.Name)
		s.runners[k] = r
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			r.loop()
		}()
	}
	s.mu.Unlock()
	r.update(w)
}

// remove stops a deleted workload's instances; Run waits for them to exit.
func (s *Supervisor) remove(k store.Key) {
	s.mu.Lock()
	r := s.runners[k]
	delete(s.runners, k)
	s.mu.Unlock()
	if r != nil {
		r.cancel()
	}
}

func (s *Supervisor) stopAll() {
	s.mu.Lock()
	for _, r := range s.runners {
		r.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// freePort picks a loopback port no live instance holds.
func (s *Supervisor) freePort() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if s.reservePort(port) {
			return port, nil
		}
	}
	return 0, errors.New("no free port found")
}

// reservePort marks port as held; false if a live instance holds it already.
func (s *Supervisor) reservePort(port int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ports[port] {
		return false
	}
	s.ports[port] = true
	return true
}

func (s *Supervisor) releasePort(port int) {
	s.mu.Lock()
	delete(s.ports, port)
	s.mu.Unlock()
}

// Logs returns the output of every instance of workload ns/name that this supervisor
// keeps in memory, each line prefixed with [name-index]. With follow, the reader goes
// on with new output until it is closed or the workload stops.
func (s *Supervisor) Logs(ns, name string, follow bool) (io.ReadCloser, error) {
	s.mu.Lock()
	r := s.runners[store.Key{Kind: "Workload", Namespace: ns, Name: name}]
	s.mu.Unlock()
	if r == nil {
		return nil, fmt.Errorf("workload %s/%s: %w", ns, name, ErrUnknownWorkload)
	}
	r.mu.Lock()
	indexes := make([]int, 0, len(r.sinks))
	for i := range r.sinks {
		indexes = append(indexes, i)
	}
	slices.Sort(indexes)
	sinks := make([]*sink, len(indexes))
	prefixes := make([]string, len(indexes))
	for j, i := range indexes {
		sinks[j] = r.sinks[i]
		prefixes[j] = fmt.Sprintf("[%s-%d] ", name, i)
	}
	r.mu.Unlock()
	return followSinks(sinks, prefixes, follow), nil
}
