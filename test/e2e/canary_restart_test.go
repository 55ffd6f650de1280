package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/loadtest"
)

// restartYAML is examples/podinfo reduced to what the test needs — the namespace, the
// mesh, podinfo as a Workload at a version (%s) and the seed's Canary — with times
// scaled down: a step every 2s, up to 50% in steps of 10. A restart stops traffic for a
// moment and the restarted instances answer 503s until they are ready, which fail a
// check or two; threshold 10 leaves room for that.
const restartYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata:
  name: flaggerdemo
spec:
  namespaceSelector: {}
---
apiVersion: canarymesh.dev/v1alpha1
kind: Workload
metadata:
  name: podinfo
  namespace: demo
spec:
  replicas: 2
  command: [canarymesh, demo-app]
  args: [--version, "%s"]
  labels:
    app: podinfo
  readinessProbe:
    httpGet:
      path: /readyz
    periodSeconds: 1
---
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: demo
spec:
  progressDeadlineSeconds: 120
  targetRef:
    apiVersion: canarymesh.dev/v1alpha1
    kind: Workload
    name: podinfo
  service:
    port: 9898
    meshName: flaggerdemo
  analysis:
    interval: 2s
    threshold: 10
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 4s
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 4s
`

// canaryStatus is the part of a Canary's status the test reads.
type canaryStatus struct {
	Phase        string `json:"phase"`
	CanaryWeight int    `json:"canaryWeight"`
	FailedChecks int    `json:"failedChecks"`
	Message      string `json:"message"`
}

func (s *server) canary() (canaryStatus, error) {
	out, errOut, err := s.cli("get", "canary", "podinfo", "-n", "demo", "-o", "json")
	if err != nil {
		return canaryStatus{}, fmt.Errorf("%v: %s", err, errOut)
	}
	var cd struct{ Status canaryStatus }
	err = json.Unmarshal([]byte(out), &cd)
	return cd.Status, err
}

// watchCanary polls the Canary until done holds, keeping the weights seen in order.
func (s *server) watchCanary(what string, limit time.Duration, done func(canaryStatus) bool) (last canaryStatus, weights []int) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		st, err := s.canary()
		if err == nil {
			if len(weights) == 0 || weights[len(weights)-1] != st.CanaryWeight {
				weights = append(weights, st.CanaryWeight)
			}
			if done(st) {
				return st, weights
			}
		}
		last = st
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("no %s within %v: last status %+v, weights %v", what, limit, last, weights)
	return last, nil
}

// eventCount sums the count of the Canary's events whose message starts with prefix.
func (s *server) eventCount(prefix string) int {
	s.t.Helper()
	type event struct {
		Message        string
		Count          int
		InvolvedObject struct{ Kind, Name string }
	}
	var l struct {
		Kind  string
		Items []event
		event // a single object prints bare
	}
	if err := json.Unmarshal([]byte(s.mustCLI("get", "events", "-n", "demo", "-o", "json")), &l); err != nil {
		s.t.Fatal(err)
	}
	if l.Kind == "Event" {
		l.Items = append(l.Items, l.event)
	}
	n := 0
	for _, ev := range l.Items {
		if ev.InvolvedObject.Kind == "Canary" && ev.InvolvedObject.Name == "podinfo" && strings.HasPrefix(ev.Message, prefix) {
			n += ev.Count
		}
	}
	return n
}

func askVersion(egress string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://"+egress+"/version", nil)
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

// Given `canarymesh up -f DIR` running podinfo 3.1.0 under a Canary, with traffic, when
// the version in the manifest is bumped and up is killed with SIGKILL while the analysis
// holds 20% or more, and started again on the same data directory, then the analysis
// resumes at that weight, never going back to 0, and 3.1.1 is promoted exactly once.
func TestUpRestartMidAnalysisResumesAndPromotesOnce(t *testing.T) {
	dir, manifests := t.TempDir(), t.TempDir()
	write := func(version string) {
		if err := os.WriteFile(filepath.Join(manifests, "podinfo.yaml"), []byte(fmt.Sprintf(restartYAML, version)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("3.1.0")
	egress := freeAddr(t)
	args := []string{"-f", manifests, "--stream-listen", freeAddr(t), "--egress-listen", egress, "--admin-listen", freeAddr(t)}
	s := startUp(t, dir, args...)
	s.watchCanary("Initialized", 90*time.Second, func(st canaryStatus) bool { return st.Phase == "Initialized" })
	waitFor(t, 30*time.Second, "3.1.0 answering", func() bool { return askVersion(egress) == "3.1.0" })

	// Users keep sending requests, through the restart too.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = loadtest.Run(ctx, loadtest.Config{URL: "http://" + egress + "/", Host: "podinfo.demo",
			Rate: 40, Concurrency: 8, Duration: 5 * time.Minute, Timeout: 5 * time.Second})
	}()

	write("3.1.1")
	// Past the first step, so that an analysis started over would show in the weights.
	before, _ := s.watchCanary("weight 20 on the canary", 90*time.Second, func(st canaryStatus) bool {
		return st.Phase == "Progressing" && st.CanaryWeight >= 20
	})
	if before.CanaryWeight >= 50 {
		t.Fatalf("the analysis reached %d before the kill; the test wants it midway", before.CanaryWeight)
	}
	s.kill()

	s = startUp(t, dir, args...)
	resumed, err := s.canary()
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Phase != "Progressing" || resumed.CanaryWeight < before.CanaryWeight {
		t.Errorf("after the restart: %+v; before the kill: %+v", resumed, before)
	}
	last, weights := s.watchCanary("Succeeded", 3*time.Minute, func(st canaryStatus) bool { return st.Phase == "Succeeded" })
	t.Logf("weight %d when killed, %d after the restart, then %v", before.CanaryWeight, resumed.CanaryWeight, weights)
	for i, w := range weights {
		if w < before.CanaryWeight && i < len(weights)-1 { // the last is 0: back on the promoted primary
			t.Errorf("weights after the restart %v go below %d: the analysis started over", weights, before.CanaryWeight)
			break
		}
	}
	if n := s.eventCount("Copying podinfo.demo template spec"); n != 1 {
		t.Errorf("%d promotions of podinfo recorded, want exactly 1 (status %+v)", n, last)
	}
	if n := s.eventCount("New revision detected"); n != 1 {
		t.Errorf("the new revision was detected %d times, want once", n)
	}
	waitFor(t, 30*time.Second, "3.1.1 answering", func() bool { return askVersion(egress) == "3.1.1" })
}
