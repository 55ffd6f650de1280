package workload

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Reasons an instance is not running, as conditions show them.
const (
	ReasonCommandNotFound    = "CommandNotFound"
	ReasonWorkingDirNotFound = "WorkingDirNotFound"
	ReasonStartFailed        = "StartFailed"
	ReasonCrashLoop          = "CrashLoop"
)

// Environment variables every instance gets, besides the workload's own env.
const (
	EnvPort      = "PORT"
	EnvWorkload  = "CANARYMESH_WORKLOAD"
	EnvNamespace = "CANARYMESH_NAMESPACE"
	EnvInstance  = "CANARYMESH_INSTANCE"
	EnvRevision  = "CANARYMESH_REVISION"
)

// waitDelay bounds the wait for an exited program's output when a child it left behind
// still holds the pipe.
const waitDelay = time.Second

// exitInfo describes how a process ended.
type exitInfo struct {
	At     time.Time
	RanFor time.Duration
	Status string // as os.ProcessState says it: "exit status 1", "signal: killed"
}

// instanceState is what status reports of an instance.
type instanceState struct {
	PID       int
	Ready     bool
	Restarts  int32
	StartedAt time.Time
	LastExit  *exitInfo
	// Reason and Message say why the instance is not serving: a start failure, or a
	// crash loop until the process has run for StableAfter.
	Reason, Message string
	started         bool // a process was started at least once
}

// instance is one supervised process slot: it starts the program, restarts it with
// exponential backoff when it exits, probes its readiness, and stops it gracefully.
// Its port and index never change; a new revision gets a new instance.
type instance struct {
	opts     *Options
	index    int
	port     int
	revision string
	spec     v1alpha1.WorkloadSpec
	env      []string
	sink     *sink
	notify   func()
	// portReserved: this instance holds port in the supervisor's set, and frees it.
	portReserved bool

	stopCh   chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu sync.Mutex
	st instanceState
}

func newInstance(opts *Options, w *v1alpha1.Workload, rev string, index, port int, out *sink, notify func()) *instance {
	env := inheritedEnv()
	for _, e := range w.Spec.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	// The supervisor's variables come last, so they win: the probe must find the
	// program on the port the supervisor chose.
	env = append(env,
		EnvPort+"="+strconv.Itoa(port),
		EnvWorkload+"="+w.Name,
		EnvNamespace+"="+w.Namespace,
		EnvInstance+"="+strconv.Itoa(index),
		EnvRevision+"="+rev,
	)
	return &instance{
		opts: opts, index: index, port: port, revision: rev,
		spec: *w.Spec.DeepCopy(), env: env, sink: out, notify: notify,
		stopCh: make(chan struct{}), done: make(chan struct{}),
	}
}

// inheritedEnv is the supervisor's environment without the API token: a workload is
// the user's program, not part of the control plane, and a podinfo-like /env would show
// it to anyone calling through the mesh. A Workload that needs it sets it in spec.env.
func inheritedEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "CANARYMESH_TOKEN=")
	})
}

// state returns a copy of the instance's state.
func (in *instance) state() instanceState {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := in.st
	if st.LastExit != nil {
		e := *st.LastExit
		st.LastExit = &e
	}
	return st
}

func (in *instance) update(f func(st *instanceState)) {
	in.mu.Lock()
	f(&in.st)
	in.mu.Unlock()
	in.notify()
}

func (in *instance) isReady() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.st.Ready
}

// requestStop asks the instance to stop; done closes once its process has exited.
func (in *instance) requestStop() { in.stopOnce.Do(func() { close(in.stopCh) }) }

func (in *instance) stopRequested() bool {
	select {
	case <-in.stopCh:
		return true
	default:
		return false
	}
}

func (in *instance) finished() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// run starts the program and keeps it running until requestStop.
func (in *instance) run() {
	defer in.notify()
	defer close(in.done)
	backoff := in.opts.BackoffInitial
	for !in.stopRequested() {
		var wait time.Duration
		cmd, err := in.start()
		if err != nil {
			reason := startFailureReason(err)
			msg := fmt.Sprintf("%v; retrying in %v", err, backoff)
			in.update(func(st *instanceState) { st.Reason, st.Message = reason, msg })
			in.sink.notice("instance %d could not start: %s", in.index, msg)
			wait, backoff = backoff, min(2*backoff, in.opts.BackoffMax)
		} else if in.supervise(cmd) {
			// It ran stably: restart at once and forget earlier crashes.
			backoff = in.opts.BackoffInitial
		} else if !in.stopRequested() {
			st := in.state()
			msg := fmt.Sprintf("instance %d exited (%s) after %v; restarting in %v (%d restarts)",
				in.index, st.LastExit.Status, st.LastExit.RanFor.Round(time.Millisecond), backoff, st.Restarts)
			in.update(func(st *instanceState) { st.Reason, st.Message = ReasonCrashLoop, msg })
			wait, backoff = backoff, min(2*backoff, in.opts.BackoffMax)
		}
		if !in.sleep(wait) {
			return
		}
	}
}

// sleep waits d unless a stop is requested first; it reports whether to go on.
func (in *instance) sleep(d time.Duration) bool {
	if d <= 0 {
		return !in.stopRequested()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-in.stopCh:
		return false
	}
}

// startError carries the reason a process could not start.
type startError struct {
	reason string
	err    error
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

func startFailureReason(err error) string {
	var se *startError
	switch {
	case errors.As(err, &se):
		return se.reason
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return ReasonCommandNotFound
	default:
		return ReasonStartFailed
	}
}

// SelfCommand, as a workload's command, names the running canarymesh binary itself, so
// manifests can run `canarymesh demo-app` or `canarymesh loadtester` without the binary
// being on PATH.
const SelfCommand = "canarymesh"

func commandPath(name string) string {
	if name != SelfCommand {
		return name
	}
	if self, err := os.Executable(); err == nil && filepath.Base(self) == SelfCommand {
		return self
	}
	return name
}

func (in *instance) start() (*exec.Cmd, error) {
	if dir := in.spec.WorkingDir; dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, &startError{ReasonWorkingDirNotFound, fmt.Errorf("working directory %q is not a directory", dir)}
		}
	}
	argv := append(slices.Clone(in.spec.Command[1:]), in.spec.Args...)
	cmd := exec.Command(commandPath(in.spec.Command[0]), argv...)
	cmd.Dir = in.spec.WorkingDir
	cmd.Env = in.env
	cmd.Stdout = in.sink
	cmd.Stderr = in.sink
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	in.update(func(st *instanceState) {
		if st.started {
			st.Restarts++
		}
		st.started = true
		st.PID, st.Ready, st.StartedAt = pid, false, time.Now()
		if st.Reason != ReasonCrashLoop {
			st.Reason, st.Message = "", ""
		}
	})
	in.sink.notice("instance %d started: pid %d, port %d, revision %s", in.index, pid, in.port, in.revision)
	return cmd, nil
}

// supervise watches a started process until it exits or a stop is requested, probing
// its readiness meanwhile. It reports whether the process ran for StableAfter.
func (in *instance) supervise(cmd *exec.Cmd) (stable bool) {
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	probeCtx, cancelProbe := context.WithCancel(context.Background())
	probeDone := make(chan struct{})
	if p := in.spec.ReadinessProbe; p != nil && p.HTTPGet != nil {
		go func() {
			defer close(probeDone)
			in.probe(probeCtx, p)
		}()
	} else {
		close(probeDone)
		in.update(func(st *instanceState) { st.Ready = true })
	}
	stableTimer := time.NewTimer(in.opts.StableAfter)
	defer stableTimer.Stop()
loop:
	for {
		select {
		case <-exited:
			break loop
		case <-stableTimer.C:
			stable = true
			in.update(func(st *instanceState) { st.Reason, st.Message = "", "" })
		case <-in.stopCh:
			in.update(func(st *instanceState) { st.Ready = false })
			in.stop(cmd, exited)
			break loop
		}
	}
	cancelProbe()
	<-probeDone
	_ = kill(cmd.Process) // children it left behind would hold its port
	exit := &exitInfo{At: time.Now(), RanFor: time.Since(start), Status: cmd.ProcessState.String()}
	in.update(func(st *instanceState) { st.PID, st.Ready, st.LastExit = 0, false, exit })
	in.sink.notice("instance %d: pid %d %s after %v", in.index, cmd.Process.Pid, exit.Status, exit.RanFor.Round(time.Millisecond))
	return stable || exit.RanFor >= in.opts.StableAfter
}

// stop sends SIGTERM to the process group, and SIGKILL after the grace period.
func (in *instance) stop(cmd *exec.Cmd, exited <-chan error) {
	in.sink.notice("instance %d: stopping pid %d", in.index, cmd.Process.Pid)
	if err := terminate(cmd.Process); err != nil {
		_ = kill(cmd.Process)
	}
	t := time.NewTimer(in.opts.GracePeriod)
	defer t.Stop()
	select {
	case <-exited:
		return
	case <-t.C:
	}
	in.sink.notice("instance %d: pid %d still running after %v; killing it", in.index, cmd.Process.Pid, in.opts.GracePeriod)
	_ = kill(cmd.Process)
	<-exited
}
