// Package demo plays the seed's Flagger + App Mesh demo on one machine, end to end: it
// starts `canarymesh up` in a temporary directory, deploys podinfo 3.1.0 behind a gateway
// with the seed's canary analysis (times scaled down), sends traffic through the gateway,
// then releases 3.1.1 — analysed step by step and promoted — and 3.1.2, which starts
// failing under the seed's injected 500s and is rolled back. The user watches a live
// table, as with `kubectl get canaries --watch`, and gets a verdict.
//
//	up (child process) ◀── apply ── demo ── load ──▶ gateway ──▶ podinfo / podinfo-primary
//	                                  └── watch canary status, print rows, verdict
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/loadtest"
)

// Options steer a demo run.
type Options struct {
	// Binary is the canarymesh executable to run `up` with.
	Binary string
	Out    io.Writer
	// Keep leaves everything running after the verdict until ctx ends.
	Keep bool
	// StepTimeout bounds each release (default 90s).
	StepTimeout time.Duration
}

// Run plays the demo. It returns nil only if the first release was promoted and the
// second rolled back with all traffic back on the primary.
func Run(ctx context.Context, o Options) error {
	if o.StepTimeout == 0 {
		o.StepTimeout = 90 * time.Second
	}
	d, err := start(ctx, o)
	if err != nil {
		return err
	}
	start := time.Now()
	err = d.play(ctx)
	// A failed demo keeps its data directory: up.log and the workloads' logs say why.
	defer func() { d.stop(o.Keep || err != nil) }()
	d.say("")
	if err != nil {
		d.say("verdict: FAILED after %s: %v", time.Since(start).Round(time.Second), err)
		d.say("logs kept in %s (up.log, logs/)", d.dir)
	} else {
		d.say("verdict: OK in %s — 3.1.1 was promoted; 3.1.2 failed its checks and was rolled back, all traffic on 3.1.1", time.Since(start).Round(time.Second))
	}
	if o.Keep {
		d.say("")
		d.say("still running (Ctrl-C to stop):")
		d.say("  API       %s   (export CANARYMESH_DATA_DIR=%s)", d.api, d.dir)
		d.say("  dashboard %s/ui/   (log in with the token in %s)", d.api, filepath.Join(d.dir, "token"))
		d.say("  gateway   http://127.0.0.1:%d/", d.ports.gateway)
		d.say("  egress    http://127.0.0.1:%d/  (curl -H 'Host: podinfo.demo' ...)", d.ports.egress)
		d.say("  stats     http://%s/stats/prometheus", d.admin)
		<-ctx.Done()
	}
	return err
}

// run is one demo's running parts.
type run struct {
	o      Options
	dir    string
	ports  ports
	api    string
	admin  string
	up     *exec.Cmd
	exited chan struct{} // closed when up has exited
	client *controlplane.Client
	cancel context.CancelFunc
	table  *table
}

func (d *run) say(format string, args ...any) { fmt.Fprintf(d.o.Out, format+"\n", args...) }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func freePorts(n int) ([]int, error) {
	var out []int
	for i := 0; i < n; i++ {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// start runs `canarymesh up` in a fresh data directory and waits for its API.
func start(ctx context.Context, o Options) (*run, error) {
	dir, err := os.MkdirTemp("", "canarymesh-demo-")
	if err != nil {
		return nil, err
	}
	ps, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	d := &run{o: o, dir: dir, ports: ports{gateway: ps[0], loadtester: ps[1], egress: ps[2]}, admin: fmt.Sprintf("127.0.0.1:%d", ps[3])}
	upCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.up = exec.CommandContext(upCtx, o.Binary, "up", "--data-dir", dir, "--listen", "127.0.0.1:0", "--stream-listen", "127.0.0.1:0",
		"--egress-listen", fmt.Sprintf("127.0.0.1:%d", d.ports.egress), "--admin-listen", d.admin, "--log-level", "warn")
	d.up.Cancel = func() error { return d.up.Process.Signal(os.Interrupt) }
	d.up.WaitDelay = 10 * time.Second
	logf, err := os.Create(filepath.Join(dir, "up.log"))
	if err != nil {
		return nil, err
	}
	d.up.Stdout, d.up.Stderr = logf, logf
	if err := d.up.Start(); err != nil {
		cancel()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	d.exited = make(chan struct{})
	go func() {
		_ = d.up.Wait()
		_ = logf.Close()
		close(d.exited)
	}()
	d.say("canarymesh demo: the seed's Flagger + App Mesh demo on this machine (logs in %s)", dir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "server")); err == nil {
			tok, _ := os.ReadFile(filepath.Join(dir, "token"))
			d.api = strings.TrimSpace(string(b))
			d.client = controlplane.NewClient(d.api, strings.TrimSpace(string(tok)))
			if _, err := d.client.Version(ctx); err == nil {
				return d, nil
			}
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("canarymesh up exited (%v); see %s", d.up.ProcessState, filepath.Join(dir, "up.log"))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.stop(true)
			return nil, errors.New("canarymesh up did not start; see " + filepath.Join(dir, "up.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends up and, unless keepDir, removes the data directory.
func (d *run) stop(keepDir bool) {
	d.cancel()
	<-d.exited
	if !keepDir {
		_ = os.RemoveAll(d.dir)
	}
}

// apply stores the demo manifests for a podinfo version.
func (d *run) apply(ctx context.Context, version string) error {
	res, err := manifest.Decode("demo.yaml", []byte(manifests(d.ports, version, 0)), manifest.Options{})
	if err != nil {
		return err
	}
	objs := make([]v1alpha1.Object, len(res.Items))
	for i, it := range res.Items {
		objs[i] = it.Object
	}
	_, err = d.client.Apply(ctx, objs, false)
	return err
}

// load sends steady traffic through the gateway, as the seed's users' browsers would,
// until ctx ends.
func (d *run) load(ctx context.Context, url, host string, rate float64) {
	go func() {
		for ctx.Err() == nil {
			_, _ = loadtest.Run(ctx, loadtest.Config{URL: url, Host: host, Rate: rate, Concurrency: 8, Duration: time.Minute, Timeout: 5 * time.Second})
		}
	}()
}
