package canary_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/demoapp"
	"github.com/canarymesh/canarymesh/internal/hooks"
	"github.com/canarymesh/canarymesh/internal/loadtest"
	"github.com/canarymesh/canarymesh/internal/mesh"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/proxy/local"
	"github.com/canarymesh/canarymesh/internal/workload"
)

// The integration test runs the demo app as real processes: this test binary, started
// again by the supervisor with childEnv set, serves as podinfo instead of testing.
const (
	childEnv     = "CANARY_TEST_CHILD"
	versionEnv   = "CANARY_TEST_VERSION"
	errorRateEnv = "CANARY_TEST_ERROR_RATE"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runDemoApp())
	}
	os.Exit(m.Run())
}

func runDemoApp() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	rate, _ := strconv.ParseFloat(os.Getenv(errorRateEnv), 64)
	err := demoapp.Run(ctx, "127.0.0.1:"+os.Getenv(workload.EnvPort), demoapp.Options{Version: os.Getenv(versionEnv), ErrorRate: rate})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo app:", err)
		return 1
	}
	return 0
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// stack is the standalone data plane and controller built in-process from their real
// pieces: the bolt store, the supervisor running the demo app, the mesh compiler and
// push stream, the in-process proxies, and the canary controller with a real clock.
type stack struct {
	t      *testing.T
	h      *harness // for its store helpers; its fake-clock controller is not started
	egress string
}

func newStack(t *testing.T) *stack {
	if testing.Short() {
		t.Skip("runs real processes for a minute; skipped with -short")
	}
	h := newHarness(t)
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("CANARY_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stops []func()
	t.Cleanup(func() {
		cancel()
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	})
	run := func(f func(context.Context)) {
		done := make(chan struct{})
		go func() { defer close(done); f(ctx) }()
		stops = append(stops, func() { <-done })
	}
	sup := workload.New(h.st, workload.Options{DataDir: t.TempDir(), Log: log, GracePeriod: 3 * time.Second,
		BackoffInitial: 50 * time.Millisecond, BackoffMax: 400 * time.Millisecond, ResyncInterval: time.Second})
	run(func(ctx context.Context) { _ = sup.Run(ctx) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	push := stream.NewServer(stream.TokenAuth(apiToken), log)
	gs := grpc.NewServer(stream.ServerOptions()...)
	push.Register(gs)
	go func() { _ = gs.Serve(ln) }()
	stops = append(stops, gs.Stop, push.Close)

	egress := freeAddr(t)
	mgr := local.NewManager(ctx, local.Options{Target: ln.Addr().String(), Token: apiToken, Log: log, EgressAddr: egress})
	stops = append(stops, mgr.Close)
	port, _ := strconv.Atoi(egress[len("127.0.0.1:"):])
	sync := &controlplane.MeshSync{Store: h.st, Sink: push, Log: log, Options: mesh.Options{EgressPort: port}, OnNodes: mgr.Reconcile}
	run(func(ctx context.Context) { _ = sync.Run(ctx) })

	windows := builtin.WindowFunc(func(cluster string, d time.Duration) builtin.Stats {
		w := mgr.Window(cluster, d)
		return builtin.Stats{Requests: w.Requests, Errors5xx: w.Errors5xx, SuccessRate: w.SuccessRate, P99: w.P99, NoData: w.NoData}
	})
	ctrl := &canary.Controller{Store: h.st, Target: &workload.WorkloadTarget{Store: h.st},
		Router: &canary.MeshRouter{Store: h.st, Log: log}, Metrics: &canary.MeshMetrics{Store: h.st, Windows: windows},
		Hooks: &hooks.Caller{}, Recorder: &hooks.Recorder{Store: h.st, Source: "canary-controller"}, Log: log}
	run(func(ctx context.Context) { _ = ctrl.Run(ctx) })
	return &stack{t: t, h: h, egress: egress}
}

// podinfo is the demo app as a Workload of two replicas, probed on /readyz.
func (s *stack) podinfo(version string, errorRate float64) *v1alpha1.Workload {
	exe, err := os.Executable()
	if err != nil {
		s.t.Fatal(err)
	}
	w := podinfo()
	w.Spec.Command = []string{exe}
	w.Spec.Env = []v1alpha1.EnvVar{{Name: childEnv, Value: "1"}, {Name: versionEnv, Value: version},
		{Name: errorRateEnv, Value: strconv.FormatFloat(errorRate, 'f', -1, 64)}}
	w.Spec.ReadinessProbe = &v1alpha1.Probe{HTTPGet: &v1alpha1.HTTPGetAction{Path: "/readyz"}, PeriodSeconds: 1}
	return w
}

// release gives the target a new version (and error rate): a new revision.
func (s *stack) release(version string, errorRate float64) {
	s.t.Helper()
	ctx := context.Background()
	for range 10 {
		w := s.h.workload("podinfo")
		w.Spec.Env = s.podinfo(version, errorRate).Spec.Env
		if _, err := s.h.st.Update(ctx, w); err == nil {
			return
		}
	}
	s.t.Fatal("cannot update the target")
}

// version asks podinfo.demo through the egress listener which version answers.
func (s *stack) version() string {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.egress+"/version", nil)
	req.Host = "podinfo.demo"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct{ Version string }
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &v)
	return v.Version
}

// watch polls the Canary until done holds or the time is up, keeping the weights seen.
func (s *stack) watch(what string, limit time.Duration, done func(cd *v1alpha1.Canary) bool) []int {
	s.t.Helper()
	var weights []int
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		cd := s.h.canary()
		if w := cd.Status.CanaryWeight; len(weights) == 0 || weights[len(weights)-1] != w {
			weights = append(weights, w)
		}
		if done(cd) {
			return weights
		}
		time.Sleep(50 * time.Millisecond)
	}
	cd := s.h.canary()
	s.t.Fatalf("no %s within %v: phase %s, weight %d, message %q, metrics %+v", what, limit, cd.Status.Phase,
		cd.Status.CanaryWeight, cd.Status.Message, cd.Status.LastMetrics)
	return nil
}

// Given podinfo 3.1.0 running as real processes behind in-process proxies, when 3.1.1
// is released under load, then the controller shifts traffic 20, 40, 60 one second
// apart on the proxies' own success rate and promotes it; when 3.1.2 answers half its
// requests with 500s, then two failed checks roll it back and 3.1.1 keeps serving.
func TestReleasesWithRealProcesses(t *testing.T) {
	s := newStack(t)
	s.h.create(s.podinfo("3.1.0", 0))
	cd := seedCanary()
	cd.Spec.Service.Retries = nil
	cd.Spec.Analysis.Interval = "1s"
	cd.Spec.Analysis.Metrics[0].Interval = "5s"
	cd.Spec.Analysis.Metrics[1].Interval = "5s"
	s.h.create(cd)
	s.watch("Initialized", time.Minute, func(cd *v1alpha1.Canary) bool { return cd.Status.Phase == v1alpha1.CanaryPhaseInitialized })
	s.watch("3.1.0 answering", 30*time.Second, func(*v1alpha1.Canary) bool { return s.version() == "3.1.0" })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := make(chan *loadtest.Result, 1)
	go func() {
		res, _ := loadtest.Run(ctx, loadtest.Config{URL: "http://" + s.egress + "/", Host: "podinfo.demo",
			Rate: 100, Concurrency: 8, Duration: 3 * time.Minute})
		load <- res
	}()

	s.release("3.1.1", 0)
	weights := s.watch("Succeeded", 90*time.Second, func(cd *v1alpha1.Canary) bool { return cd.Status.Phase == v1alpha1.CanaryPhaseSucceeded })
	if !isSubsequence([]int{20, 40, 60}, weights) {
		t.Errorf("weights seen %v, want 20, 40, 60 in order", weights)
	}
	if v := s.version(); v != "3.1.1" {
		t.Errorf("podinfo.demo answers %q after the promotion, want 3.1.1", v)
	}
	if sr := s.h.canary().Status.LastMetrics[0]; sr.Name != "request-success-rate" || sr.Value < 99 {
		t.Errorf("success rate of the promoted canary: %+v", sr)
	}

	s.release("3.1.2", 0.5)
	s.watch("Failed", 90*time.Second, func(cd *v1alpha1.Canary) bool { return cd.Status.Phase == v1alpha1.CanaryPhaseFailed })
	got := s.h.canary()
	if got.Status.FailedChecks < 2 || got.Status.CanaryWeight != 0 {
		t.Errorf("after the rollback: failedChecks %d, weight %d, message %q", got.Status.FailedChecks, got.Status.CanaryWeight, got.Status.Message)
	}
	// The status is written before the actions that carry it out: the route follows.
	s.watch("the route back on the primary", 10*time.Second, func(*v1alpha1.Canary) bool {
		p, c := s.h.weights()
		return p == 100 && c == 0
	})
	s.watch("3.1.1 answering", 10*time.Second, func(*v1alpha1.Canary) bool { return s.version() == "3.1.1" })
	for range 5 {
		if v := s.version(); v != "3.1.1" {
			t.Errorf("podinfo.demo answers %q after the rollback, want 3.1.1", v)
		}
	}
	cancel()
	if res := <-load; res == nil || res.Requests == 0 {
		t.Error("the load generator sent nothing")
	}
}

func isSubsequence(want, got []int) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
