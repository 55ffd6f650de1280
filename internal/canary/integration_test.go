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
	"sync"
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
	delayEnv     = "CANARY_TEST_DELAY"
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
	delay, _ := time.ParseDuration(os.Getenv(delayEnv))
	err := demoapp.Run(ctx, "127.0.0.1:"+os.Getenv(workload.EnvPort),
		demoapp.Options{Version: os.Getenv(versionEnv), ErrorRate: rate, Delay: delay})
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
	// proxies are the in-process proxies, for tests that scrape their metrics.
	proxies *local.Manager
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
		Hooks: &hooks.Caller{}, Recorder: &hooks.Recorder{Store: h.st, Source: "canary-controller"}, Log: log,
		Propagation: &controlplane.Propagation{Sync: sync, Proxies: push.Proxies}}
	run(func(ctx context.Context) { _ = ctrl.Run(ctx) })
	return &stack{t: t, h: h, egress: egress, proxies: mgr}
}

// app is how the demo app behaves: its version and the faults it stages (as demo-app's
// --version, --error-rate and --delay).
type app struct {
	version   string
	errorRate float64
	delay     time.Duration
}

func (a app) env() []v1alpha1.EnvVar {
	return []v1alpha1.EnvVar{{Name: childEnv, Value: "1"}, {Name: versionEnv, Value: a.version},
		{Name: errorRateEnv, Value: strconv.FormatFloat(a.errorRate, 'f', -1, 64)}, {Name: delayEnv, Value: a.delay.String()}}
}

// podinfo is the demo app as a Workload of two replicas, probed on /readyz.
func (s *stack) podinfo(a app) *v1alpha1.Workload {
	exe, err := os.Executable()
	if err != nil {
		s.t.Fatal(err)
	}
	w := podinfo()
	w.Spec.Command = []string{exe}
	w.Spec.Env = a.env()
	w.Spec.ReadinessProbe = &v1alpha1.Probe{HTTPGet: &v1alpha1.HTTPGetAction{Path: "/readyz"}, PeriodSeconds: 1}
	return w
}

// release gives the target a new version (and faults): a new revision.
func (s *stack) release(a app) {
	s.t.Helper()
	ctx := context.Background()
	for range 10 {
		w := s.h.workload("podinfo")
		w.Spec.Env = a.env()
		if _, err := s.h.st.Update(ctx, w); err == nil {
			return
		}
	}
	s.t.Fatal("cannot update the target")
}

// version asks podinfo.demo through the egress listener which version answers.
func (s *stack) version() string { return s.ask("podinfo.demo", nil) }

// ask sends GET /version for host through the egress listener and returns the version
// that answered, or a description of the failure (never a version).
func (s *stack) ask(host string, header http.Header) string {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.egress+"/version", nil)
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "<error: " + err.Error() + ">"
	}
	defer resp.Body.Close()
	var v struct{ Version string }
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("<status %d: %.80s>", resp.StatusCode, b)
	}
	_ = json.Unmarshal(b, &v)
	return v.Version
}

// load sends rate requests per second to host through the egress listener until the
// returned stop is called, which waits for the generator and returns its result.
func (s *stack) load(host string, header http.Header, rate float64) (stop func() *loadtest.Result) {
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan *loadtest.Result, 1)
	go func() {
		r, _ := loadtest.Run(ctx, loadtest.Config{URL: "http://" + s.egress + "/", Host: host, Header: header,
			Rate: rate, Concurrency: 16, Duration: 3 * time.Minute})
		res <- r
	}()
	var once sync.Once
	var out *loadtest.Result
	stop = func() *loadtest.Result {
		once.Do(func() { cancel(); out = <-res })
		return out
	}
	s.t.Cleanup(func() {
		if r := stop(); r != nil && s.t.Failed() {
			s.t.Logf("load on %s %v: %d requests, status codes %v, errors %v", host, header, r.Requests, r.StatusCodes, r.ErrorDist)
		}
	})
	return stop
}

// fastCanary is the seed's canary analysed every second, its metrics over 5s windows.
func fastCanary() *v1alpha1.Canary {
	cd := seedCanary()
	cd.Spec.Service.Retries = nil
	cd.Spec.Analysis.Interval = "1s"
	for i := range cd.Spec.Analysis.Metrics {
		cd.Spec.Analysis.Metrics[i].Interval = "5s"
	}
	return cd
}

// initialized runs podinfo 3.1.0 with the Canary and waits until 3.1.0 answers behind
// the initialised primary.
func (s *stack) initialized(cd *v1alpha1.Canary) {
	s.t.Helper()
	s.h.create(s.podinfo(app{version: "3.1.0"}))
	s.h.create(cd)
	s.watch("Initialized", time.Minute, func(cd *v1alpha1.Canary) bool { return cd.Status.Phase == v1alpha1.CanaryPhaseInitialized })
	s.watch("3.1.0 answering", 30*time.Second, func(*v1alpha1.Canary) bool { return s.version() == "3.1.0" })
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
	s.initialized(fastCanary())

	stopLoad := s.load("podinfo.demo", nil, 100)

	s.release(app{version: "3.1.1"})
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

	s.release(app{version: "3.1.2", errorRate: 0.5})
	s.watch("Failed", 90*time.Second, func(cd *v1alpha1.Canary) bool { return cd.Status.Phase == v1alpha1.CanaryPhaseFailed })
	got := s.h.canary()
	if got.Status.FailedChecks < 2 || got.Status.CanaryWeight != 0 {
		t.Errorf("after the rollback: failedChecks %d, weight %d, message %q", got.Status.FailedChecks, got.Status.CanaryWeight, got.Status.Message)
	}
	// The status is written before the actions that carry it out: the route follows.
	s.backOnPrimary("3.1.1")
	if res := stopLoad(); res == nil || res.Requests == 0 {
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
