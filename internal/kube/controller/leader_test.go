package controller_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
	"github.com/canarymesh/canarymesh/internal/store"
)

// child is a `canarymesh controller` process.
type child struct {
	name    string
	cmd     *exec.Cmd
	metrics string // host:port of /metrics
	probes  string // host:port of /healthz and /readyz
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// buildBinary builds canarymesh into the test's temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "canarymesh")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/canarymesh")
	cmd.Dir = filepath.Join("..", "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startChild(t *testing.T, bin string, env *kubetest.Env, name string) *child {
	t.Helper()
	c := &child{name: name, metrics: freePort(t), probes: freePort(t)}
	c.cmd = exec.Command(bin, "controller",
		"--kubeconfig", env.Kubeconfig,
		"--leader-elect", "--leader-election-namespace", "default",
		"--leader-election-lease-duration", "4s", "--leader-election-renew-deadline", "3s", "--leader-election-retry-period", "500ms",
		"--metrics-bind-address", c.metrics, "--health-probe-bind-address", c.probes,
		"--stream-listen", "127.0.0.1:0")
	c.cmd.Env = append(os.Environ(), "CANARYMESH_TOKEN="+token)
	logf, err := os.Create(filepath.Join(env.Dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			lines := strings.Split(string(b), "\n")
			t.Logf("--- %s log (last 40 lines)\n%s", name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return c
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url) // a local probe: no context needed
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// leader reads controller-runtime's leader_election_master_status gauge from /metrics.
func (c *child) leader() (bool, error) {
	code, body, err := get("http://" + c.metrics + "/metrics")
	if err != nil {
		return false, err
	}
	if code != http.StatusOK {
		return false, fmt.Errorf("/metrics: %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "leader_election_master_status{") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			return v == 1, err
		}
	}
	return false, nil
}

// Two controllers elect one leader through a Lease; when the leader is killed, the other
// takes over and reconciles what changed since.
func TestLeaderElectionTakeover(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true})
	s := newStore(t, env)
	bin := buildBinary(t)
	a, b := startChild(t, bin, env, "controller-a"), startChild(t, bin, env, "controller-b")

	for _, c := range []*child{a, b} {
		eventually(t, c.name+" healthy and ready", func() (string, bool) {
			for _, p := range []string{"/healthz", "/readyz"} {
				code, body, err := get("http://" + c.probes + p)
				if err != nil || code != http.StatusOK {
					return fmt.Sprintf("%s: %d %s %v", p, code, body, err), false
				}
			}
			return "", true
		})
	}
	var lead, other *child
	eventually(t, "one leader", func() (string, bool) {
		la, errA := a.leader()
		lb, errB := b.leader()
		switch {
		case errA != nil || errB != nil:
			return fmt.Sprintf("metrics: %v %v", errA, errB), false
		case la && lb:
			t.Fatal("both controllers lead")
		case la:
			lead, other = a, b
		case lb:
			lead, other = b, a
		default:
			return "no leader yet", false
		}
		return "", true
	})
	// The leader runs the canary controller: a Canary shows in its /metrics, beside
	// controller-runtime's own series.
	res, err := manifest.ReadPaths([]string{filepath.Join("..", "..", "..", "examples", "flagger-appmesh-demo", "podinfo", "canary.yaml")}, nil, false, manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, []v1alpha1.Object{res.Items[0].Object})
	eventually(t, "the leader's /metrics", func() (string, bool) {
		code, body, err := get("http://" + lead.metrics + "/metrics")
		if err != nil || code != http.StatusOK {
			return fmt.Sprintf("%d %v", code, err), false
		}
		for _, want := range []string{`canarymesh_canary_total{namespace="demo"} 1`, "controller_runtime_reconcile_total"} {
			if !strings.Contains(body, want) {
				return "no " + want, false
			}
		}
		return "", true
	})

	meshReady := func(name string) func() (string, bool) {
		return func() (string, bool) {
			o, err := s.Get(t.Context(), store.Key{Kind: "Mesh", Name: name})
			if err != nil {
				return err.Error(), false
			}
			m := o.(*v1alpha1.Mesh)
			c := apimeta.FindStatusCondition(m.Status.Conditions, v1alpha1.ConditionReady)
			if c == nil || m.Status.ObservedGeneration != m.Generation {
				return fmt.Sprintf("Mesh %s status %+v", name, m.Status), false
			}
			return "", true
		}
	}
	if _, err := s.Create(t.Context(), &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "before"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the leader reconciles", meshReady("before"))

	if err := lead.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = lead.cmd.Wait()
	t.Logf("killed the leader %s", lead.name)
	if _, err := s.Create(t.Context(), &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "after"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, other.name+" takes over", func() (string, bool) {
		l, err := other.leader()
		if err != nil || !l {
			return fmt.Sprintf("%s leads: %v %v", other.name, l, err), false
		}
		return "", true
	})
	eventually(t, "the new leader reconciles", meshReady("after"))
}
