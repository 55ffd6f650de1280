// Package promtest starts a real Prometheus server for tests: Debian's prometheus
// binary (or $CANARYMESH_PROMETHEUS), a generated configuration scraping every second,
// its storage in the test's temporary directory and its API on a free loopback port.
// A test without the binary is skipped, or fails when CI=true.
package promtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// DefaultBinary is where Debian's prometheus package installs the server.
const DefaultBinary = "/usr/bin/prometheus"

// Target is one scrape job of the generated configuration.
type Target struct {
	// Job is the job_name; Addresses are host:port of the targets.
	Job       string
	Addresses []string
	// MetricsPath defaults to /metrics.
	MetricsPath string
	// Labels are added to every target of the job.
	Labels map[string]string
	// MetricRelabel is the job's metric_relabel_configs, as YAML-able maps.
	MetricRelabel []map[string]any
}

// Options configure the server.
type Options struct {
	// Targets are static scrape jobs.
	Targets []Target
	// Config, when set, is the whole configuration file's content, used instead of one
	// generated from Targets (relative paths in it resolve against Dir).
	Config string
	// Dir is where Config's side files live; defaults to a new temporary directory.
	Dir string
	// WebConfig, when set, is the content of --web.config.file (TLS, basic auth).
	WebConfig string
	// ReadyUser and ReadyPassword are the basic-auth credentials of WebConfig that the
	// readiness probe uses: behind basic auth /-/ready answers 401 before Prometheus is
	// ready too. Without them a 401 is taken for ready.
	ReadyUser, ReadyPassword string
	// Addr is the listen address (default: a free loopback port), for a test that must
	// tell others where Prometheus will be before it starts.
	Addr string
}

// Server is a running Prometheus.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string
	// Dir holds the configuration and the storage.
	Dir string
}

// Binary returns the prometheus binary to run: $CANARYMESH_PROMETHEUS, else DefaultBinary.
func Binary() string {
	if b := os.Getenv("CANARYMESH_PROMETHEUS"); b != "" {
		return b
	}
	return DefaultBinary
}

// Require skips the test (fails it under CI=true) when no prometheus binary is found.
func Require(t testing.TB) string {
	t.Helper()
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus is required under CI: %v", err)
		}
		t.Skipf("no prometheus server at %s (apt-get install prometheus): skipped", bin)
	}
	return bin
}

// Start runs Prometheus until the test ends and waits until it is ready.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Require(t)
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := o.Config
	if cfg == "" {
		b, err := yaml.Marshal(generate(o.Targets))
		if err != nil {
			t.Fatalf("prometheus config: %v", err)
		}
		cfg = string(b)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := o.Addr
	if addr == "" {
		addr = FreeAddr(t)
	}
	args := []string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--web.enable-lifecycle", "--log.level=warn"}
	if o.WebConfig != "" {
		p := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(p, []byte(o.WebConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--web.config.file="+p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cancel()
			<-exited
		}
		cancel()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	s := &Server{URL: "http://" + addr, Dir: dir}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("prometheus exited before it was ready:\n%s", out.String())
		default:
		}
		if ready(s.URL+"/-/ready", o.ReadyUser, o.ReadyPassword) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 60s:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ready(url, user, password string) bool {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if user == "" && resp.StatusCode == http.StatusUnauthorized {
		return true // behind basic auth without the credentials: the best this can tell
	}
	return resp.StatusCode == http.StatusOK
}

// Reload asks the server to read its configuration again.
func (s *Server) Reload(t testing.TB) {
	t.Helper()
	resp, err := http.Post(s.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatalf("reloading prometheus: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reloading prometheus: status %d", resp.StatusCode)
	}
}

// FreeAddr returns a loopback address with a port free at the time of the call.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// generate builds a configuration scraping every second.
func generate(targets []Target) map[string]any {
	jobs := make([]any, 0, len(targets))
	for _, tg := range targets {
		path := tg.MetricsPath
		if path == "" {
			path = "/metrics"
		}
		group := map[string]any{"targets": tg.Addresses}
		if len(tg.Labels) > 0 {
			group["labels"] = tg.Labels
		}
		job := map[string]any{"job_name": tg.Job, "metrics_path": path, "static_configs": []any{group}}
		if len(tg.MetricRelabel) > 0 {
			job["metric_relabel_configs"] = tg.MetricRelabel
		}
		jobs = append(jobs, job)
	}
	return map[string]any{
		"global":         map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"},
		"scrape_configs": jobs,
	}
}

// lockedBuffer collects the server's output from two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// String describes the server for messages.
func (s *Server) String() string { return fmt.Sprintf("prometheus at %s", s.URL) }

// Query runs an instant query and returns its result, failing the test on an error.
func (s *Server) Query(t testing.TB, q string) model.Value {
	t.Helper()
	v, err := s.query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func (s *Server) query(q string) (model.Value, error) {
	c, err := api.NewClient(api.Config{Address: s.URL})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, _, _, err := promv1.NewAPI(c).Query(ctx, q, time.Now())
	return v, err
}

// WaitForData waits until q returns a non-empty result, at most limit.
func (s *Server) WaitForData(t testing.TB, q string, limit time.Duration) model.Value {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		v, err := s.query(q)
		if err == nil && !empty(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no data after %s (last error: %v)", q, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func empty(v model.Value) bool {
	switch r := v.(type) {
	case model.Vector:
		return len(r) == 0
	case model.Matrix:
		return len(r) == 0
	}
	return v == nil
}
