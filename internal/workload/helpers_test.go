package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

const testNS = "demo"

// harness is a bolt store in a temporary data directory with a Supervisor running on
// it, tuned for short tests.
type harness struct {
	t       *testing.T
	dir     string
	st      *bolt.Store
	sup     *Supervisor
	cancel  context.CancelFunc
	stopped chan error
}

func newHarness(t *testing.T, tune func(o *Options)) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(context.Background(), dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		DataDir:        dir,
		GracePeriod:    3 * time.Second,
		BackoffInitial: 50 * time.Millisecond,
		BackoffMax:     400 * time.Millisecond,
		StableAfter:    2 * time.Second,
		ResyncInterval: time.Second,
	}
	if tune != nil {
		tune(&opts)
	}
	h := &harness{t: t, dir: dir, st: st, sup: New(st, opts), stopped: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.stopped <- h.sup.Run(ctx) }()
	t.Cleanup(func() {
		h.stop()
		st.Close()
	})
	return h
}

// stop ends the supervisor and waits, boundedly, for every instance to exit.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err, ok := <-h.stopped:
		if ok && err != nil {
			h.t.Errorf("supervisor: %v", err)
		}
		if ok {
			close(h.stopped)
		}
	case <-time.After(20 * time.Second):
		h.t.Fatal("supervisor did not stop within 20s")
	}
}

// testBinary is the command that runs a child program (see main_test.go).
func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// appWorkload is a Workload of the demo app child, probed on /readyz.
func appWorkload(t *testing.T, name string, replicas int32, version string) *v1alpha1.Workload {
	w := &v1alpha1.Workload{Spec: v1alpha1.WorkloadSpec{
		Command:  []string{testBinary(t)},
		Replicas: &replicas,
		Env: []v1alpha1.EnvVar{
			{Name: childModeEnv, Value: childApp},
			{Name: childVersionEnv, Value: version},
		},
		ReadinessProbe: &v1alpha1.Probe{HTTPGet: &v1alpha1.HTTPGetAction{Path: "/readyz"}, PeriodSeconds: 1},
		Labels:         map[string]string{"app": name},
	}}
	w.Name, w.Namespace = name, testNS
	return w
}

func (h *harness) create(w *v1alpha1.Workload) *v1alpha1.Workload {
	h.t.Helper()
	out, err := h.st.Create(context.Background(), w)
	if err != nil {
		h.t.Fatal(err)
	}
	return out.(*v1alpha1.Workload)
}

func (h *harness) get(name string) *v1alpha1.Workload {
	h.t.Helper()
	obj, err := h.st.Get(context.Background(), store.Key{Kind: "Workload", Namespace: testNS, Name: name})
	if err != nil {
		h.t.Fatal(err)
	}
	return obj.(*v1alpha1.Workload)
}

// edit changes a workload's spec, retrying on conflicts with the supervisor's status
// writes.
func (h *harness) edit(name string, f func(w *v1alpha1.Workload)) *v1alpha1.Workload {
	h.t.Helper()
	for range 20 {
		w := h.get(name)
		f(w)
		out, err := h.st.Update(context.Background(), w)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			h.t.Fatal(err)
		}
		return out.(*v1alpha1.Workload)
	}
	h.t.Fatal("edit kept conflicting")
	return nil
}

// waitFor polls cond until it holds or timeout passes; cond says what it saw.
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v: %s", timeout, saw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStatus waits until the stored status of name satisfies cond.
func (h *harness) waitStatus(name string, timeout time.Duration, cond func(w *v1alpha1.Workload) bool) *v1alpha1.Workload {
	h.t.Helper()
	var w *v1alpha1.Workload
	waitFor(h.t, timeout, func() (bool, string) {
		w = h.get(name)
		return cond(w), describe(w)
	})
	return w
}

func describe(w *v1alpha1.Workload) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: replicas %d ready %d revision %q (spec %s) gen %d/%d;", w.Name, w.Status.Replicas,
		w.Status.ReadyReplicas, w.Status.Revision, w.Revision(), w.Status.ObservedGeneration, w.Generation)
	for _, in := range w.Status.Instances {
		fmt.Fprintf(&b, " [%d port %d pid %d ready %v restarts %d rev %s]", in.Index, in.Port, in.PID, in.Ready, in.Restarts, in.Revision)
	}
	for _, c := range w.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

// allReady: every desired instance runs the spec's revision and is ready.
func allReady(w *v1alpha1.Workload) bool {
	want := w.GetReplicas()
	if w.Status.ObservedGeneration != w.Generation || int32(len(w.Status.Instances)) != want || w.Status.ReadyReplicas != want {
		return false
	}
	for _, in := range w.Status.Instances {
		if in.Revision != w.Revision() || !in.Ready || in.PID == 0 {
			return false
		}
	}
	return w.Status.Revision == w.Revision()
}

func condition(w *v1alpha1.Workload, typ string) (status, reason, msg string) {
	c := meta.FindStatusCondition(w.Status.Conditions, typ)
	if c == nil {
		return "", "", ""
	}
	return string(c.Status), c.Reason, c.Message
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// fetch GETs path from an instance on port and returns the body.
func fetch(port int32, path string) (string, error) {
	resp, err := httpClient.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

// alive reports whether process pid exists.
func alive(pid int32) bool {
	return syscall.Kill(int(pid), 0) == nil
}

// freePortPair finds a port p with p+1 free too, for fixed-port workloads.
func freePortPair(t *testing.T) int32 {
	t.Helper()
	for range 50 {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.Addr().(*net.TCPAddr).Port
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		a.Close()
		if err == nil {
			b.Close()
			return int32(p)
		}
	}
	t.Fatal("no two free consecutive ports")
	return 0
}
