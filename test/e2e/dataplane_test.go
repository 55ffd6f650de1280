package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/loadtest"
)

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// backend is a real HTTP server that answers with its name and counts requests.
type backend struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newBackend(t *testing.T, name string) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b.hits.Add(1)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) port() string {
	_, p, _ := net.SplitHostPort(b.srv.Listener.Addr().String())
	return p
}

const meshYAML = `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {mesh: m}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: Mesh
metadata: {name: m}
spec: {namespaceSelector: {matchLabels: {mesh: m}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: web-v1, namespace: shop}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {static: [{address: 127.0.0.1, port: %s}]}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: web-v2, namespace: shop}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {static: [{address: 127.0.0.1, port: %s}]}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: web, namespace: shop}
spec:
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  routes:
    - name: main
      httpRoute:
        match: {prefix: /}
        action:
          weightedTargets:
            - {virtualNodeRef: {name: web-v1}, weight: %d}
            - {virtualNodeRef: {name: web-v2}, weight: %d}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  provider: {virtualRouter: {virtualRouterRef: {name: web}}}
`

// startUp runs `canarymesh up` with fixed addresses, so a restart listens where the
// proxies expect it.
func startUp(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	_ = os.Remove(filepath.Join(dir, "server"))
	s := &server{t: t, dataDir: dir, log: &strings.Builder{}}
	s.cmd = exec.Command(binary, append([]string{"up", "--data-dir", dir, "--listen", "127.0.0.1:0"}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("up log:\n%s", s.log)
		}
	})
	waitFor(t, 30*time.Second, "canarymesh up to answer", func() bool {
		_, _, err := s.cli("version")
		_, statErr := os.Stat(filepath.Join(dir, "server"))
		return statErr == nil && err == nil
	})
	return s
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Given a sidecar proxy fed by the control plane and traffic flowing through it, when
// the control plane is killed with SIGKILL, then the traffic keeps flowing on the last
// snapshot without a single failed request; when the control plane returns, the proxy
// reconnects and picks up the next weight change.
func TestProxyKeepsServingWhenTheControlPlaneDies(t *testing.T) {
	v1, v2 := newBackend(t, "v1"), newBackend(t, "v2")
	dir := t.TempDir()
	streamAddr, egress, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	s := startUp(t, dir, "--no-proxies", "--stream-listen", streamAddr)
	manifest := filepath.Join(t.TempDir(), "mesh.yaml")
	write := func(w1, w2 int) {
		if err := os.WriteFile(manifest, []byte(fmt.Sprintf(meshYAML, v1.port(), v2.port(), w1, w2)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(90, 10)
	s.mustCLI("apply", "-f", manifest)

	sidecar := exec.Command(binary, "--data-dir", dir, "proxy", "--node", "egress", "--egress-listen", egress, "--admin-listen", admin)
	var sidecarLog strings.Builder
	sidecar.Stdout, sidecar.Stderr = &sidecarLog, &sidecarLog
	if err := sidecar.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sidecar.Process.Kill()
		_ = sidecar.Wait()
		if t.Failed() {
			t.Logf("sidecar log:\n%s", sidecarLog.String())
		}
	})
	get := func() (string, int) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+egress+"/", nil)
		req.Host = "web.shop"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", 0
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.StatusCode
	}
	waitFor(t, 30*time.Second, "the sidecar to route web.shop", func() bool { _, code := get(); return code == http.StatusOK })
	if out := s.mustCLI("get", "proxies"); !strings.Contains(out, "egress") || !strings.Contains(out, "true") {
		t.Errorf("get proxies does not show the connected sidecar:\n%s", out)
	}

	v1.hits.Store(0)
	v2.hits.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan *loadtest.Result, 1)
	go func() {
		res, err := loadtest.Run(ctx, loadtest.Config{URL: "http://" + egress + "/", Host: "web.shop", Requests: 1000, Rate: 250, Concurrency: 8})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	time.Sleep(time.Second)
	s.kill() // SIGKILL mid-load
	res := <-done
	if res == nil {
		t.Fatal("no load result")
	}
	if res.Errors != 0 || res.StatusCodes[http.StatusOK] != res.Requests || res.Requests != 1000 {
		t.Fatalf("traffic was hurt by the control plane's death: %d requests, %d errors, codes %v", res.Requests, res.Errors, res.StatusCodes)
	}
	if h1 := v1.hits.Load(); h1 < 850 || h1 > 950 {
		t.Errorf("90/10 route sent %d of 1000 to v1, want 850–950", h1)
	}

	// The control plane returns on the same stream address; a weight change reaches the
	// sidecar through the reconnected stream.
	s = startUp(t, dir, "--no-proxies", "--stream-listen", streamAddr)
	write(0, 100)
	s.mustCLI("apply", "-f", manifest)
	// Under 90/10 one request in ten already lands on v2, so wait for a run of them.
	waitFor(t, 60*time.Second, "the 0/100 weights to reach the sidecar", func() bool {
		for i := 0; i < 30; i++ {
			if body, _ := get(); body != "v2" {
				return false
			}
		}
		return true
	})
}
