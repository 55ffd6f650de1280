package workload

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

func TestReplicasBecomeReady(t *testing.T) {
	t.Setenv("CANARYMESH_TOKEN", "secret-of-the-control-plane")
	h := newHarness(t, nil)
	h.create(appWorkload(t, "podinfo", 2, "3.1.0"))
	w := h.waitStatus("podinfo", 30*time.Second, allReady)

	ports := map[int32]bool{}
	for _, in := range w.Status.Instances {
		if ports[in.Port] || in.Port == 0 {
			t.Fatalf("ports not distinct: %s", describe(w))
		}
		ports[in.Port] = true
		body, err := fetch(in.Port, "/version")
		if err != nil || !strings.Contains(body, `"3.1.0"`) {
			t.Errorf("instance %d /version = %q, %v", in.Index, body, err)
		}
		env, err := fetch(in.Port, "/env")
		for _, want := range []string{
			fmt.Sprintf("%s=%d", EnvPort, in.Port),
			EnvWorkload + "=podinfo",
			EnvNamespace + "=" + testNS,
			fmt.Sprintf("%s=%d", EnvInstance, in.Index),
			EnvRevision + "=" + w.Revision(),
		} {
			if err != nil || !strings.Contains(env, want) {
				t.Errorf("instance %d environment lacks %s (%v)", in.Index, want, err)
			}
		}
		if strings.Contains(env, "secret-of-the-control-plane") {
			t.Errorf("instance %d inherited the API token: %s", in.Index, env)
		}
	}
	for _, typ := range []string{ConditionAvailable, ConditionProgressing, v1alpha1.ConditionReady} {
		if s, reason, msg := condition(w, typ); s != "True" {
			t.Errorf("%s = %s (%s: %s)", typ, s, reason, msg)
		}
	}
}

func TestKilledInstanceRestarts(t *testing.T) {
	h := newHarness(t, nil)
	h.create(appWorkload(t, "podinfo", 1, "3.1.0"))
	w := h.waitStatus("podinfo", 30*time.Second, allReady)
	before := w.Status.Instances[0]

	if err := syscall.Kill(int(before.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w = h.waitStatus("podinfo", 30*time.Second, func(w *v1alpha1.Workload) bool {
		return allReady(w) && w.Status.Instances[0].PID != before.PID && w.Status.Instances[0].Restarts >= 1
	})
	after := w.Status.Instances[0]
	if after.Port != before.Port {
		t.Errorf("port changed across the restart: %d → %d", before.Port, after.Port)
	}
	if after.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", after.Restarts)
	}
	if _, err := fetch(after.Port, "/healthz"); err != nil {
		t.Errorf("restarted instance does not answer: %v", err)
	}
}

// rollAndWatch changes the workload with edit and polls, throughout the roll, that at
// least one instance is listed ready and one listed ready instance answers.
func rollAndWatch(t *testing.T, h *harness, name string, edit func(w *v1alpha1.Workload)) *v1alpha1.Workload {
	t.Helper()
	h.edit(name, edit)
	polls := 0
	var w *v1alpha1.Workload
	waitFor(t, 60*time.Second, func() (bool, string) {
		polls++
		// The stored status lags the processes a little (an instance is stopped a
		// moment before its status says so), so a gap must last a second to count.
		var errs []string
		for attempt := 0; attempt < 5; attempt++ {
			w = h.get(name)
			if w.Status.ReadyReplicas < 1 {
				errs = append(errs, "no instance listed ready: "+describe(w))
			} else if answered, e := readyOneAnswers(w); answered {
				errs = nil
				break
			} else {
				errs = append(errs, e...)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if errs != nil {
			t.Fatalf("no ready instance answered for a second during the roll: %s: %v", describe(w), errs)
		}
		return allReady(w), describe(w)
	})
	t.Logf("roll observed over %d polls", polls)
	return w
}

// readyOneAnswers reports whether one instance listed ready answers its probe.
func readyOneAnswers(w *v1alpha1.Workload) (bool, []string) {
	var errs []string
	for _, in := range w.Status.Instances {
		if !in.Ready {
			continue
		}
		if _, err := fetch(in.Port, "/readyz"); err == nil {
			return true, nil
		} else {
			errs = append(errs, err.Error())
		}
	}
	return false, errs
}

func TestRollingUpdateKeepsAReadyInstance(t *testing.T) {
	h := newHarness(t, nil)
	h.create(appWorkload(t, "podinfo", 2, "3.1.0"))
	old := h.waitStatus("podinfo", 30*time.Second, allReady)

	w := rollAndWatch(t, h, "podinfo", func(w *v1alpha1.Workload) {
		w.Spec.Env[1].Value = "3.1.1"
	})
	if w.Revision() == old.Revision() {
		t.Fatal("the edit did not change the revision")
	}
	for _, in := range w.Status.Instances {
		body, err := fetch(in.Port, "/version")
		if err != nil || !strings.Contains(body, `"3.1.1"`) {
			t.Errorf("instance %d after the roll: %q, %v", in.Index, body, err)
		}
	}
	for _, in := range old.Status.Instances {
		waitFor(t, 10*time.Second, func() (bool, string) {
			return !alive(in.PID), fmt.Sprintf("old pid %d still running", in.PID)
		})
	}
}

// TestRollingUpdateFixedPort: instances keep port+index across the roll, replaced one
// at a time in place, and one of the two stays ready throughout.
func TestRollingUpdateFixedPort(t *testing.T) {
	h := newHarness(t, nil)
	wl := appWorkload(t, "fixed", 2, "1")
	wl.Spec.Port = freePortPair(t)
	h.create(wl)
	h.waitStatus("fixed", 30*time.Second, allReady)

	w := rollAndWatch(t, h, "fixed", func(w *v1alpha1.Workload) { w.Spec.Env[1].Value = "2" })
	for _, in := range w.Status.Instances {
		if in.Port != wl.Spec.Port+in.Index {
			t.Errorf("instance %d on port %d, want %d", in.Index, in.Port, wl.Spec.Port+in.Index)
		}
		if body, err := fetch(in.Port, "/version"); err != nil || !strings.Contains(body, `"2"`) {
			t.Errorf("instance %d after the roll: %q, %v", in.Index, body, err)
		}
	}
}

func TestScaleToZeroAndBack(t *testing.T) {
	h := newHarness(t, nil)
	h.create(appWorkload(t, "podinfo", 2, "3.1.0"))
	w := h.waitStatus("podinfo", 30*time.Second, allReady)

	zero, two := int32(0), int32(2)
	h.edit("podinfo", func(w *v1alpha1.Workload) { w.Spec.Replicas = &zero })
	h.waitStatus("podinfo", 30*time.Second, func(w *v1alpha1.Workload) bool {
		return w.Status.ObservedGeneration == w.Generation && len(w.Status.Instances) == 0 && w.Status.Replicas == 0
	})
	for _, in := range w.Status.Instances {
		waitFor(t, 10*time.Second, func() (bool, string) {
			return !alive(in.PID), fmt.Sprintf("pid %d still running at zero replicas", in.PID)
		})
	}
	h.edit("podinfo", func(w *v1alpha1.Workload) { w.Spec.Replicas = &two })
	h.waitStatus("podinfo", 30*time.Second, allReady)
}

func TestMissingCommand(t *testing.T) {
	h := newHarness(t, nil)
	for name, cmd := range map[string]string{
		"absolute": "/nonexistent/canarymesh-no-such-program",
		"on-path":  "canarymesh-no-such-program",
	} {
		one := int32(1)
		w := &v1alpha1.Workload{Spec: v1alpha1.WorkloadSpec{Command: []string{cmd}, Replicas: &one}}
		w.Name, w.Namespace = name, testNS
		h.create(w)
	}
	for _, name := range []string{"absolute", "on-path"} {
		w := h.waitStatus(name, 30*time.Second, func(w *v1alpha1.Workload) bool {
			_, reason, _ := condition(w, ConditionProgressing)
			return reason == ReasonCommandNotFound
		})
		s, _, msg := condition(w, ConditionProgressing)
		if s != "False" || !strings.Contains(msg, "canarymesh-no-such-program") {
			t.Errorf("%s: Progressing %s: %q", name, s, msg)
		}
		if s, reason, _ := condition(w, v1alpha1.ConditionReady); s != "False" || reason != ReasonCommandNotFound {
			t.Errorf("%s: Ready %s %s", name, s, reason)
		}
		if w.Status.ReadyReplicas != 0 || w.Status.Replicas != 0 {
			t.Errorf("%s: %s", name, describe(w))
		}
	}
}

// maxRestarts bounds the restarts that backoff allows within elapsed: every restart
// after an early exit waits BackoffInitial, doubling up to BackoffMax.
func maxRestarts(o Options, elapsed time.Duration) int32 {
	var n int32
	wait, spent := o.BackoffInitial, time.Duration(0)
	for spent+wait <= elapsed {
		spent += wait
		n++
		wait = min(2*wait, o.BackoffMax)
	}
	return n
}

func TestCrashLoopBacksOff(t *testing.T) {
	h := newHarness(t, nil)
	one := int32(1)
	w := &v1alpha1.Workload{Spec: v1alpha1.WorkloadSpec{
		Command: []string{testBinary(t)}, Replicas: &one,
		Env: []v1alpha1.EnvVar{{Name: childModeEnv, Value: childExit}},
	}}
	w.Name, w.Namespace = "crasher", testNS
	start := time.Now()
	h.create(w)
	w = h.waitStatus("crasher", 30*time.Second, func(w *v1alpha1.Workload) bool {
		_, reason, _ := condition(w, ConditionProgressing)
		available, _, _ := condition(w, ConditionAvailable)
		return reason == ReasonCrashLoop && available == "False" && len(w.Status.Instances) == 1 &&
			w.Status.Instances[0].Restarts >= 3
	})
	elapsed := time.Since(start)
	restarts := w.Status.Instances[0].Restarts
	if bound := maxRestarts(h.sup.opts, elapsed); restarts > bound {
		t.Errorf("%d restarts in %v; backoff allows at most %d", restarts, elapsed, bound)
	}
	_, _, msg := condition(w, ConditionProgressing)
	if !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, "restarting in") {
		t.Errorf("crash loop message %q", msg)
	}
	b, err := os.ReadFile(LogPath(h.dir, testNS, "crasher", 0))
	if err != nil || !strings.Contains(string(b), "crashing on purpose") {
		t.Errorf("log file: %v; %q", err, b)
	}
}

func TestStopTerminatesGracefully(t *testing.T) {
	h := newHarness(t, nil)
	markers := t.TempDir()
	wl := appWorkload(t, "podinfo", 2, "3.1.0")
	wl.Spec.Env = append(wl.Spec.Env, v1alpha1.EnvVar{Name: childMarkerEnv, Value: markers})
	h.create(wl)
	w := h.waitStatus("podinfo", 30*time.Second, allReady)

	h.stop()
	for _, in := range w.Status.Instances {
		if alive(in.PID) {
			t.Errorf("pid %d outlived the supervisor", in.PID)
		}
		marker := filepath.Join(markers, fmt.Sprintf("sigterm-%d-%d", in.Index, in.PID))
		if b, err := os.ReadFile(marker); err != nil || string(b) != "SIGTERM\n" {
			t.Errorf("instance %d did not record SIGTERM: %v", in.Index, err)
		}
	}
	// The last status says nothing runs any more.
	if w = h.get("podinfo"); len(w.Status.Instances) != 0 || w.Status.ReadyReplicas != 0 {
		t.Errorf("status after stop: %s", describe(w))
	}
	b, err := os.ReadFile(LogPath(h.dir, testNS, "podinfo", 0))
	if err != nil || !strings.Contains(string(b), "got SIGTERM") || !strings.Contains(string(b), "exit status 0") {
		t.Errorf("log after stop: %v\n%s", err, b)
	}
}

func TestStopKillsAfterGracePeriod(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.GracePeriod = 300 * time.Millisecond })
	one := int32(1)
	w := &v1alpha1.Workload{Spec: v1alpha1.WorkloadSpec{
		Command: []string{testBinary(t)}, Replicas: &one,
		Env: []v1alpha1.EnvVar{{Name: childModeEnv, Value: childIgnoreTerm}},
	}}
	w.Name, w.Namespace = "stubborn", testNS
	h.create(w)
	w = h.waitStatus("stubborn", 30*time.Second, func(w *v1alpha1.Workload) bool {
		return w.Status.ReadyReplicas == 1
	})
	// Let the child install its handler before it is told to stop.
	waitFor(t, 10*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(LogPath(h.dir, testNS, "stubborn", 0))
		return strings.Contains(string(b), "ignoring SIGTERM"), string(b)
	})
	h.stop()
	if pid := w.Status.Instances[0].PID; alive(pid) {
		t.Errorf("pid %d survived SIGKILL", pid)
	}
	b, _ := os.ReadFile(LogPath(h.dir, testNS, "stubborn", 0))
	if !strings.Contains(string(b), "killing it") || !strings.Contains(string(b), "signal: killed") {
		t.Errorf("log does not show the kill:\n%s", b)
	}
}

func TestDeletedWorkloadStops(t *testing.T) {
	h := newHarness(t, nil)
	h.create(appWorkload(t, "podinfo", 1, "3.1.0"))
	w := h.waitStatus("podinfo", 30*time.Second, allReady)
	if _, err := h.st.Delete(t.Context(), keyOf(w), ""); err != nil {
		t.Fatal(err)
	}
	pid := w.Status.Instances[0].PID
	waitFor(t, 20*time.Second, func() (bool, string) {
		return !alive(pid), fmt.Sprintf("pid %d still running after delete", pid)
	})
}

func TestInvalidSpecCondition(t *testing.T) {
	h := newHarness(t, nil)
	w := &v1alpha1.Workload{}
	w.Name, w.Namespace = "empty", testNS
	h.create(w)
	w = h.waitStatus("empty", 30*time.Second, func(w *v1alpha1.Workload) bool {
		_, reason, _ := condition(w, ConditionProgressing)
		return reason == ReasonInvalidSpec
	})
	if _, _, msg := condition(w, ConditionProgressing); !strings.Contains(msg, "spec.command") {
		t.Errorf("message %q does not name the field", msg)
	}
}

// TestStatusWritesOnlyOnChange: a steady workload's object stops changing.
func TestStatusWritesOnlyOnChange(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ResyncInterval = 50 * time.Millisecond })
	h.create(appWorkload(t, "podinfo", 1, "3.1.0"))
	w := h.waitStatus("podinfo", 30*time.Second, allReady)
	rv := w.ResourceVersion
	time.Sleep(500 * time.Millisecond) // ten resyncs, none of which may write
	// Only the probe's period (1s) could change anything, and a passing probe does not.
	if w = h.get("podinfo"); w.ResourceVersion != rv {
		t.Errorf("status rewritten without a change: resourceVersion %s → %s: %s", rv, w.ResourceVersion, describe(w))
	}
}

func TestConcurrentEditsConverge(t *testing.T) {
	h := newHarness(t, nil)
	h.create(appWorkload(t, "podinfo", 1, "1"))
	h.waitStatus("podinfo", 30*time.Second, allReady)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.edit("podinfo", func(w *v1alpha1.Workload) {
				w.Spec.Labels[fmt.Sprintf("edit-%d", i)] = "yes"
			})
		}()
	}
	wg.Wait()
	w := h.waitStatus("podinfo", 60*time.Second, allReady)
	if len(w.Spec.Labels) != 4 {
		t.Errorf("labels %v", w.Spec.Labels)
	}
}
