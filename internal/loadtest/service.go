package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTaskTimeout bounds every task, as flagger-loadtester's --timeout default.
const DefaultTaskTimeout = time.Hour

// Task types, as flagger-loadtester's metadata.type.
const (
	TaskCmd  = "cmd"  // the default: run in the background, answer 202 at once
	TaskBash = "bash" // run `bash -c` and answer with its outcome
)

// Payload is Flagger's webhook payload.
type Payload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase,omitempty"`
	Checksum  string            `json:"checksum,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// canary is the key flagger-loadtester gives a canary: name.namespace.
func (p Payload) canary() string { return p.Name + "." + p.Namespace }

// ServiceOptions configure the load-tester service.
type ServiceOptions struct {
	// AllowShell lets `bash` tasks, and `cmd` tasks other than hey, run a shell. Off by
	// default: anyone who can reach the service could otherwise run commands on it.
	AllowShell bool
	Logger     *slog.Logger
	// Timeout bounds every task (default 1h); metadata.timeout may shorten it.
	Timeout time.Duration
}

// Service is the flagger-loadtester compatible HTTP API:
//
//	POST /                 run a task: metadata.type cmd (hey, background) or bash
//	/gate/approve          always 200        /gate/halt      always 403
//	/gate/check            200 if the canary's gate is open, else 403
//	/gate/open, /gate/close
//	/rollback/check        200 if the canary's rollback is open (it should roll back)
//	/rollback/open, /rollback/close
//	/healthz, /metrics
//
// Gates are kept in memory per canary (name.namespace), closed until opened.
type Service struct {
	opts   ServiceOptions
	log    *slog.Logger
	mux    *http.ServeMux
	ctx    context.Context // the tasks' parent, cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]bool // canary + command of background tasks in progress

	gates, rollbacks gateStore
	stats            serviceStats
}

type serviceStats struct {
	started, failed, skipped [taskKinds]atomic.Int64
}

// task kinds, for the service's own metrics
const (
	kindHey = iota
	kindShell
	kindBash
	taskKinds
)

var kindNames = [taskKinds]string{"hey", "shell", "bash"}

// NewService returns the load-tester service; Close stops its background tasks.
func NewService(opts ServiceOptions) *Service {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTaskTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		opts: opts, log: log, ctx: ctx, cancel: cancel,
		running:   map[string]bool{},
		gates:     gateStore{open: map[string]bool{}},
		rollbacks: gateStore{open: map[string]bool{}},
	}
	m := http.NewServeMux()
	m.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusOK, "OK") })
	m.HandleFunc("/metrics", s.handleMetrics)
	m.HandleFunc("/gate/approve", func(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusOK, "Approved") })
	m.HandleFunc("/gate/halt", func(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusForbidden, "Forbidden") })
	m.HandleFunc("/gate/check", s.checkHandler(&s.gates, "gate"))
	m.HandleFunc("/gate/open", s.setHandler(&s.gates, "gate", true))
	m.HandleFunc("/gate/close", s.setHandler(&s.gates, "gate", false))
	m.HandleFunc("/rollback/check", s.checkHandler(&s.rollbacks, "rollback"))
	m.HandleFunc("/rollback/open", s.setHandler(&s.rollbacks, "rollback", true))
	m.HandleFunc("/rollback/close", s.setHandler(&s.rollbacks, "rollback", false))
	m.HandleFunc("/", s.handleTask)
	s.mux = m
	return s
}

func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close cancels the background tasks and waits for them to end.
func (s *Service) Close() {
	s.mu.Lock() // no task starts after this: startOnce checks ctx under the lock
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
}

// Executions is the number of tasks started, duplicates not counted.
func (s *Service) Executions() int64 {
	var n int64
	for i := range taskKinds {
		n += s.stats.started[i].Load()
	}
	return n
}

// Running is the number of background tasks in progress.
func (s *Service) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

// GateOpen reports whether the canary's (name.namespace) confirmation gate is open.
func (s *Service) GateOpen(canary string) bool { return s.gates.isOpen(canary) }

// RollbackOpen reports whether the canary's (name.namespace) rollback gate is open.
func (s *Service) RollbackOpen(canary string) bool { return s.rollbacks.isOpen(canary) }

type gateStore struct {
	mu   sync.Mutex
	open map[string]bool
}

func (g *gateStore) set(key string, open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if open {
		g.open[key] = true
	} else {
		delete(g.open, key)
	}
}

func (g *gateStore) isOpen(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open[key]
}

func (s *Service) checkHandler(g *gateStore, what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := decodePayload(w, r)
		if !ok {
			return
		}
		open := g.isOpen(p.canary())
		s.log.Info(what+" check", "canary", p.canary(), "open", open)
		if open {
			reply(w, http.StatusOK, "Approved")
			return
		}
		reply(w, http.StatusForbidden, "Forbidden")
	}
}

func (s *Service) setHandler(g *gateStore, what string, open bool) http.HandlerFunc {
	state := map[bool]string{true: "opened", false: "closed"}[open]
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := decodePayload(w, r)
		if !ok {
			return
		}
		g.set(p.canary(), open)
		s.log.Info(what+" "+state, "canary", p.canary())
		reply(w, http.StatusAccepted, fmt.Sprintf("%s %s for %s", what, state, p.canary()))
	}
}

// decodePayload reads Flagger's payload; it must name a canary.
func decodePayload(w http.ResponseWriter, r *http.Request) (Payload, bool) {
	var p Payload
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		reply(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return p, false
	}
	if err := json.Unmarshal(body, &p); err != nil {
		reply(w, http.StatusBadRequest, "decoding the webhook payload: "+err.Error())
		return p, false
	}
	if p.Name == "" {
		reply(w, http.StatusBadRequest, "the webhook payload names no canary (name is empty)")
		return p, false
	}
	return p, true
}

func (s *Service) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	var b strings.Builder
	counter := func(name, help string, v *[taskKinds]atomic.Int64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		for i, k := range kindNames {
			fmt.Fprintf(&b, "%s{type=%q} %d\n", name, k, v[i].Load())
		}
	}
	counter("canarymesh_loadtester_tasks_total", "Tasks started.", &s.stats.started)
	counter("canarymesh_loadtester_tasks_failed_total", "Tasks that failed.", &s.stats.failed)
	counter("canarymesh_loadtester_tasks_skipped_total", "Tasks skipped because the same one was running.", &s.stats.skipped)
	fmt.Fprintf(&b, "# HELP canarymesh_loadtester_tasks_running Background tasks in progress.\n")
	fmt.Fprintf(&b, "# TYPE canarymesh_loadtester_tasks_running gauge\ncanarymesh_loadtester_tasks_running %d\n", s.Running())
	_, _ = io.WriteString(w, b.String())
}

func reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
	if !strings.HasSuffix(msg, "\n") {
		_, _ = io.WriteString(w, "\n")
	}
}

var errShellRefused = errors.New("shell commands are disabled: start the load tester with --allow-shell to run them; hey commands run without a shell")
