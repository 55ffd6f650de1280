package workload

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// runner reconciles one Workload: it owns the workload's instances and is the only
// writer of its status. Its loop wakes on a new version of the object, on any change in
// an instance (started, ready, exited), and every ResyncInterval.
type runner struct {
	s        *Supervisor
	ns, name string
	ctx      context.Context
	cancel   context.CancelFunc
	kickCh   chan struct{}

	mu     sync.Mutex
	latest *v1alpha1.Workload // newest object seen, set by the supervisor
	sinks  map[int]*sink      // output of each index ever run, for Logs

	// Owned by loop.
	obj       *v1alpha1.Workload // defaulted copy of the object acted on
	rev       string
	invalid   string                  // why the spec cannot run; "" when it can
	instances []*instance             // live: not asked to stop
	stopping  []*instance             // asked to stop, not exited yet
	rolling   map[int]bool            // indexes whose replacement is under way
	stored    v1alpha1.WorkloadStatus // status as last seen in the store
}

func newRunner(ctx context.Context, s *Supervisor, ns, name string) *runner {
	ctx, cancel := context.WithCancel(ctx)
	return &runner{
		s: s, ns: ns, name: name, ctx: ctx, cancel: cancel,
		kickCh:  make(chan struct{}, 1),
		sinks:   make(map[int]*sink),
		rolling: make(map[int]bool),
	}
}

// update hands the runner a new version of its object.
func (r *runner) update(w *v1alpha1.Workload) {
	r.mu.Lock()
	r.latest = w
	r.mu.Unlock()
	r.kick()
}

func (r *runner) kick() {
	select {
	case r.kickCh <- struct{}{}:
	default:
	}
}

func (r *runner) loop() {
	tick := time.NewTicker(r.s.opts.ResyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			r.shutdown()
			return
		case <-r.kickCh:
		case <-tick.C:
		}
		r.sync()
	}
}

func (r *runner) sync() {
	r.mu.Lock()
	latest := r.latest
	r.mu.Unlock()
	if latest != nil && (r.obj == nil || latest.ResourceVersion != r.obj.ResourceVersion) {
		obj := latest.DeepCopy()
		// The revision is the stored spec's, as everyone else computes it; defaults
		// are filled in only to run it.
		r.rev = obj.Revision()
		obj.Default()
		r.obj = obj
		r.stored = *latest.Status.DeepCopy()
		r.invalid = ""
		if err := obj.Validate().ToError(); err != nil {
			r.invalid = err.Error()
		}
	}
	if r.obj == nil {
		return
	}
	r.reconcile()
	r.writeStatus(r.ctx)
}

// reconcile moves the instances one step towards the spec: replicas instances of the
// current revision, at indexes 0..replicas-1.
//
// A new revision replaces instances index by index, at most maxSurge indexes at a time.
// With free ports (spec.port 0) the new instance starts beside the old one, which stops
// only once the new one is ready, so the workload never loses its last ready endpoint.
// A fixed port cannot be shared: there the old instance stops first and the new one
// starts on its port when it has exited; the other indexes keep serving meanwhile.
func (r *runner) reconcile() {
	r.reapStopped()
	want := int(r.obj.GetReplicas())
	if r.invalid != "" {
		want = 0
	}
	byIndex := make(map[int][]*instance)
	for _, in := range r.instances {
		byIndex[in.index] = append(byIndex[in.index], in)
	}
	for i, list := range byIndex {
		if i >= want {
			r.stopAll(list)
			delete(r.rolling, i)
		}
	}
	var toRoll []int
	busy := 0
	for i := range want {
		cur, olds := r.split(byIndex[i])
		// An old instance that is not ready serves nobody: replace it at once.
		olds = r.stopUnready(olds)
		switch {
		case cur == nil && len(olds) == 0:
			if !r.portHeld(i) {
				r.startInstance(i)
			}
			if r.rolling[i] {
				busy++
			}
		case cur == nil:
			toRoll = append(toRoll, i)
		case cur.isReady():
			r.stopAll(olds)
			delete(r.rolling, i)
		case len(olds) > 0 || r.rolling[i]:
			r.rolling[i] = true
			busy++
		}
	}
	surge := max(1, (want+3)/4) // a quarter of the replicas, rounded up, as Deployments do
	for _, i := range toRoll {
		if busy >= surge {
			break
		}
		busy++
		r.rolling[i] = true
		if r.obj.Spec.Port != 0 {
			r.stopAll(byIndex[i])
			continue
		}
		r.startInstance(i)
	}
}

// split returns the instance of the current revision among list (stopping any
// duplicate) and the instances of older revisions.
func (r *runner) split(list []*instance) (cur *instance, olds []*instance) {
	for _, in := range list {
		switch {
		case in.revision != r.rev:
			olds = append(olds, in)
		case cur == nil:
			cur = in
		default:
			r.stopAll([]*instance{in})
		}
	}
	return cur, olds
}

func (r *runner) stopUnready(olds []*instance) []*instance {
	var keep []*instance
	for _, in := range olds {
		if in.isReady() {
			keep = append(keep, in)
		} else {
			r.stopAll([]*instance{in})
		}
	}
	return keep
}

// portHeld reports whether an exiting instance still holds index i's fixed port.
func (r *runner) portHeld(i int) bool {
	if r.obj.Spec.Port == 0 {
		return false
	}
	port := int(r.obj.Spec.Port) + i
	return slices.ContainsFunc(r.stopping, func(in *instance) bool { return in.port == port })
}

func (r *runner) startInstance(i int) {
	port, reserved := int(r.obj.Spec.Port), true
	if port != 0 {
		port += i
		if reserved = r.s.reservePort(port); !reserved {
			r.s.log.Warn("fixed port held by another workload's instance", "workload", r.ns+"/"+r.name, "port", port)
		}
	} else {
		var err error
		if port, err = r.s.freePort(); err != nil {
			r.s.log.Error("no port for instance", "workload", r.ns+"/"+r.name, "index", i, "err", err)
			return
		}
	}
	in := newInstance(&r.s.opts, r.obj, r.rev, i, port, r.sinkFor(i), r.kick)
	in.portReserved = reserved
	r.instances = append(r.instances, in)
	go in.run()
}

func (r *runner) sinkFor(i int) *sink {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.sinks[i]; s != nil {
		return s
	}
	path := ""
	if r.s.opts.DataDir != "" {
		path = LogPath(r.s.opts.DataDir, r.ns, r.name, i)
	}
	s := newSink(path, r.s.opts.LogBufferBytes, r.s.opts.LogMaxBytes, r.s.log)
	r.sinks[i] = s
	return s
}

// stopAll asks instances to stop and moves them from live to stopping.
func (r *runner) stopAll(list []*instance) {
	for _, in := range list {
		in.requestStop()
		r.stopping = append(r.stopping, in)
	}
	r.instances = slices.DeleteFunc(r.instances, func(in *instance) bool { return slices.Contains(list, in) })
}

// reapStopped forgets instances that have exited and frees their ports.
func (r *runner) reapStopped() {
	r.stopping = slices.DeleteFunc(r.stopping, func(in *instance) bool {
		if in.finished() {
			if in.portReserved {
				r.s.releasePort(in.port)
			}
			return true
		}
		return false
	})
}

// shutdown stops every instance, waits for them, and records that none runs.
func (r *runner) shutdown() {
	r.stopAll(slices.Clone(r.instances))
	for _, in := range r.stopping {
		<-in.done
	}
	r.reapStopped()
	if r.obj != nil {
		// Best effort: a status that still listed ready instances would mislead whoever
		// reads it before the next start. The store may already be closing.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 2*time.Second)
		r.writeStatus(ctx)
		cancel()
	}
	r.mu.Lock()
	for _, s := range r.sinks {
		s.close()
	}
	r.mu.Unlock()
}
