package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/canarymesh/canarymesh/bench/internal/seed"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/mesh"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

const benchToken = "bench-fanout-token"

// controlPlane is what `canarymesh up --no-proxies` runs for the push stream: the bolt
// store, the mesh compiler (MeshSync) feeding the push-stream server over gRPC, and the
// status reconciler, which also wakes on every change.
type controlPlane struct {
	store *bolt.Store
	push  *stream.Server
	sync  *controlplane.MeshSync
	grpc  *grpc.Server
	addr  string
	stop  func()
	// compiles counts MeshSync's compiles of the whole mesh.
	compiles atomic.Int64
}

func startControlPlane(ctx context.Context, dir string, c config, nodes int) (*controlPlane, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := bolt.Open(ctx, dir, bolt.Options{})
	if err != nil {
		return nil, err
	}
	if err := seed.CreateAll(ctx, st, world(c.services, c.backends, nodes)); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("storing the mesh: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	cp := &controlPlane{store: st, addr: lis.Addr().String()}
	cp.push = stream.NewServer(stream.TokenAuth(benchToken), log)
	cp.grpc = grpc.NewServer(stream.ServerOptions()...)
	cp.push.Register(cp.grpc)
	go func() { _ = cp.grpc.Serve(lis) }()
	cp.sync = &controlplane.MeshSync{Store: st, Sink: cp.push, Log: log,
		Options: mesh.Options{EgressPort: mesh.DefaultEgressPort, Sidecar: true},
		OnNodes: func([]string) { cp.compiles.Add(1) }}
	rec := &controlplane.StatusReconciler{Store: st, Log: log}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { _ = cp.sync.Run(runCtx); done <- struct{}{} }()
	go func() { _ = rec.Run(runCtx); done <- struct{}{} }()
	cp.stop = func() {
		cp.push.Close()
		cp.grpc.Stop()
		cancel()
		<-done
		<-done
		_ = st.Close()
	}
	return cp, nil
}

// fleet is the child processes holding the proxy connections.
type fleet struct {
	children []*child
}

type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	count int
}

// startFleet starts c.procs children sharing c.proxies connections to addr.
func startFleet(ctx context.Context, c config, h *harness, addr string, nodes int) (*fleet, error) {
	f := &fleet{}
	per, extra := c.proxies/c.procs, c.proxies%c.procs
	first := 0
	for k := range c.procs {
		n := per
		if k < extra {
			n++
		}
		argv := []string{h.self, "-role", "proxies", "-target", addr, "-token", benchToken,
			"-first", strconv.Itoa(first), "-count", strconv.Itoa(n), "-node-count", strconv.Itoa(nodes), "-apply", c.apply}
		if c.childProfileDir != "" {
			argv = append(argv, "-child-profile", c.childProfileDir)
		}
		if h.pin {
			argv = append([]string{h.taskset, "-c", strconv.Itoa(h.proxyCPU)}, argv...)
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stderr = os.Stderr
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(c.childProcs))
		in, err := cmd.StdinPipe()
		if err != nil {
			f.stop()
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			f.stop()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			f.stop()
			return nil, err
		}
		f.children = append(f.children, &child{cmd: cmd, in: in, out: bufio.NewReader(out), count: n})
		first += n
	}
	return f, nil
}

// applied asks every child when each of its connections applied a version ≥ v (zero
// where one has not), and returns that with the CPU time of all children so far.
func (f *fleet) applied(v uint64) ([]time.Time, time.Duration, error) {
	return f.ask(fmt.Sprintf("report %d", v))
}

// cpu is the CPU time of all children so far.
func (f *fleet) cpu() (time.Duration, error) {
	_, cpu, err := f.ask("cpu")
	return cpu, err
}

func (f *fleet) ask(request string) ([]time.Time, time.Duration, error) {
	var out []time.Time
	var cpu time.Duration
	for _, c := range f.children {
		if _, err := fmt.Fprintln(c.in, request); err != nil {
			return nil, 0, err
		}
	}
	for _, c := range f.children {
		for {
			line, err := c.out.ReadString('\n')
			if err != nil {
				return nil, 0, fmt.Errorf("proxies child %d: %w", c.cmd.Process.Pid, err)
			}
			line = strings.TrimSpace(line)
			if line == "end" {
				break
			}
			if n, ok := strings.CutPrefix(line, "cpu "); ok {
				ns, _ := strconv.ParseInt(n, 10, 64)
				cpu += time.Duration(ns)
				continue
			}
			ns, err := strconv.ParseInt(line, 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("proxies child %d: %q", c.cmd.Process.Pid, line)
			}
			var t time.Time
			if ns != 0 {
				t = time.Unix(0, ns)
			}
			out = append(out, t)
		}
	}
	return out, cpu, nil
}

// stop closes the children's stdin, which ends them, and waits.
func (f *fleet) stop() {
	for _, c := range f.children {
		_ = c.in.Close()
	}
	for _, c := range f.children {
		done := make(chan error, 1)
		go func() { done <- c.cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				say("proxies child: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	}
}
