package dashboard_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/loadtest"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write docs/dashboard-*.png from the browser test")

// releaseYAML is podinfo as a Workload at a version (%[1]s) under a Canary, behind a
// gateway on port %[2]d, with an acceptance-test webhook at %[3]s, and times
// scaled down: a step every 2s, up to 95% in steps of 5, so a release is still being
// analysed when the test clicks promote.
const releaseYAML = `apiVersion: v1
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
  args: [--version, "%[1]s"]
  labels:
    app: podinfo
  readinessProbe:
    httpGet:
      path: /readyz
    periodSeconds: 1
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata:
  name: gateway
  namespace: demo
spec:
  namespaceSelector: {}
  listeners:
    - portMapping:
        port: %[2]d
        protocol: http
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata:
  name: podinfo
  namespace: demo
spec:
  httpRoute:
    match:
      prefix: /
    action:
      target:
        virtualService:
          virtualServiceRef:
            name: podinfo
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
    maxWeight: 95
    stepWeight: 5
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 4s
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 4s
    webhooks:
      - name: acceptance-test
        type: pre-rollout
        url: %[3]s
`

// screenshot writes docs/NAME.png when the test runs with -update-screenshots.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*updateScreenshots {
		return
	}
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join("..", "..", "docs", name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", p)
}

// Given `canarymesh up` with podinfo released under a Canary and traffic flowing, the
// dashboard in Chromium: asks for a login and refuses a wrong token; lists the canary
// while it progresses; draws the mesh with traffic on its edges; charts a point for
// every step; promotes the canary on a click. When up restarts, the page says the
// server is gone, then that the session expired, and works again after a new login;
// with --dashboard-anonymous-read it recovers by itself, and an action without a login
// is refused with the reason shown. A canary deleted while its page is open says so.
func TestDashboardScreensAndActions(t *testing.T) {
	needChromium(t)
	dir, manifests := t.TempDir(), t.TempDir()
	gateway := freeAddr(t)
	_, gwPort, _ := net.SplitHostPort(gateway)
	// The acceptance test a user would run before traffic reaches the canary.
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "acceptance tests passed")
	}))
	defer hook.Close()
	write := func(version string) {
		port, _ := strconv.Atoi(gwPort)
		if err := os.WriteFile(filepath.Join(manifests, "podinfo.yaml"), []byte(fmt.Sprintf(releaseYAML, version, port, hook.URL+"/")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("3.1.0")
	listen := freeAddr(t)
	args := []string{"-f", manifests, "--stream-listen", freeAddr(t), "--egress-listen", freeAddr(t), "--admin-listen", freeAddr(t)}
	up := startUp(t, dir, listen, args...)
	base := "http://" + listen
	phase := func(want ...v1alpha1.CanaryPhase) func() error {
		return func() error {
			cd, err := up.canary("demo", "podinfo")
			if err != nil {
				return err
			}
			for _, p := range want {
				if cd.Status.Phase == p {
					return nil
				}
			}
			return fmt.Errorf("phase %s, weight %d: %s", cd.Status.Phase, cd.Status.CanaryWeight, cd.Status.Message)
		}
	}
	waitFor(t, 90*time.Second, "the canary to initialise", phase(v1alpha1.CanaryPhaseInitialized))

	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	go func() {
		_, _ = loadtest.Run(ctx, loadtest.Config{URL: "http://" + gateway + "/",
			Rate: 40, Concurrency: 8, Duration: 10 * time.Minute, Timeout: 5 * time.Second})
	}()
	write("3.1.1")

	b := newBrowser(t)

	// The login: a wrong token is refused with the reason.
	do(t, b, chromedp.Navigate(base+"/"), chromedp.WaitVisible("#login-form"))
	if u, _ := js[string](b, `location.pathname`); u != "/ui/" {
		t.Errorf("/ redirected to %q, want /ui/", u)
	}
	screenshot(t, b, "dashboard-login")
	do(t, b, chromedp.SendKeys("#token", "not-the-token"), chromedp.Click("#login-submit"), chromedp.WaitVisible("#login-error"))
	if got := text(t, b, "#login-error"); !strings.Contains(got, "wrong token") {
		t.Errorf("wrong token: page says %q", got)
	}
	login := func() {
		do(t, b, chromedp.WaitVisible("#login-form"))
		if _, err := js[string](b, `document.getElementById('token').value = ''`); err != nil {
			t.Fatal(err)
		}
		do(t, b, chromedp.SendKeys("#token", up.token), chromedp.Click("#login-submit"))
		waitPage(t, b, 15*time.Second, "the login form to go", `!document.getElementById('login-form')`)
	}
	login()

	// The list shows the canary while it progresses.
	waitFor(t, 90*time.Second, "the analysis to start", phase(v1alpha1.CanaryPhaseProgressing))
	waitPage(t, b, 30*time.Second, "the canary row, progressing",
		`(() => { const r = document.querySelector('tr[data-canary="demo/podinfo"]'); return !!r && r.querySelector('.phase').textContent.includes('Progressing') && parseInt(r.querySelector('.weight').textContent) >= 15 })()`)
	screenshot(t, b, "dashboard-canaries")

	// The mesh: routers with live weights to nodes, traffic on the edges.
	do(t, b, chromedp.Navigate(base+"/ui/#/mesh"))
	waitPage(t, b, 30*time.Second, "the mesh graph with traffic",
		`!!document.querySelector('#mesh-graph g[data-id="VirtualNode/demo/podinfo-canary"]') && [...document.querySelectorAll('#mesh-graph .edge-label')].some(e => e.textContent.includes('rps'))`)
	screenshot(t, b, "dashboard-mesh")

	// The canary: a point for every step so far.
	do(t, b, chromedp.Navigate(base+"/ui/#/canary/demo/podinfo"))
	waitFor(t, 60*time.Second, "weight 25", func() error {
		cd, err := up.canary("demo", "podinfo")
		if err != nil {
			return err
		}
		if cd.Status.CanaryWeight < 25 {
			return fmt.Errorf("weight %d", cd.Status.CanaryWeight)
		}
		return nil
	})
	cd, err := up.canary("demo", "podinfo")
	if err != nil {
		t.Fatal(err)
	}
	if cd.Status.Phase != v1alpha1.CanaryPhaseProgressing {
		t.Fatalf("the release ended before the test could promote it: %s", cd.Status.Phase)
	}
	var want []string
	for w := 5; w <= cd.Status.CanaryWeight; w += 5 {
		want = append(want, fmt.Sprintf("%d", w))
	}
	waitPage(t, b, 30*time.Second, "a chart point for each step "+strings.Join(want, ","),
		`(() => { const ws = new Set([...document.querySelectorAll('#chart circle.step')].map(c => c.dataset.weight)); return `+
			`[`+strings.Join(want, ",")+`].every(w => ws.has(String(w))) })()`)
	waitPage(t, b, 10*time.Second, "the success-rate threshold drawn", `!!document.getElementById('thr-sr') && !!document.getElementById('thr-p99')`)
	waitPage(t, b, 10*time.Second, "the webhook's result", `document.querySelector('#webhooks').textContent.includes('acceptance tests passed')`)

	// Promote by a click: the controller carries it out.
	do(t, b, chromedp.Click("#action-promote"))
	waitPage(t, b, 15*time.Second, "the promote request acknowledged", `document.getElementById('action-result').textContent.includes('promote of demo/podinfo requested')`)
	waitFor(t, 60*time.Second, "the promotion", phase(v1alpha1.CanaryPhaseSucceeded))
	waitPage(t, b, 30*time.Second, "the page to show the promotion",
		`document.querySelector('h1 .badge').textContent === 'Succeeded' && !!document.getElementById('marker-promoted')`)
	screenshot(t, b, "dashboard-canary")

	// A restart: the page says the server is gone, then asks for a new login.
	up.stop()
	waitPage(t, b, 20*time.Second, "the page to notice the server is gone",
		`document.getElementById('banner').textContent.includes('cannot be reached')`)
	up = startUp(t, dir, listen, args...)
	waitPage(t, b, 30*time.Second, "the login form after the restart",
		`!!document.getElementById('login-reason') && document.getElementById('login-reason').textContent.includes('log in again')`)
	login()
	waitPage(t, b, 30*time.Second, "the canary page back, live",
		`!!document.getElementById('stat-weight') && document.getElementById('live').classList.contains('on')`)

	// Views without a login recover by themselves; actions are refused with the reason.
	up.stop()
	up = startUp(t, dir, listen, append(args, "--dashboard-anonymous-read")...)
	waitPage(t, b, 30*time.Second, "the canary page to recover without a login",
		`!!document.getElementById('chart') && document.getElementById('live').classList.contains('on') && !document.getElementById('login-form')`)
	do(t, b, chromedp.Click("#action-pause"))
	waitPage(t, b, 15*time.Second, "the refusal", `document.getElementById('action-result').textContent.includes('log in')`)
	cd, err = up.canary("demo", "podinfo")
	if err != nil {
		t.Fatal(err)
	}
	if c := cd.Annotations[canary.AnnotationCommand]; c != "" {
		t.Errorf("a refused action left the command %q on the canary", c)
	}

	// The canary is deleted while its page is open.
	k, _ := v1alpha1.LookupKind("Canary")
	if err := up.client.Delete(context.Background(), k, "demo", "podinfo"); err != nil {
		t.Fatal(err)
	}
	waitPage(t, b, 60*time.Second, "the page to say the canary is gone",
		`!!document.getElementById('gone') && document.getElementById('banner').textContent.includes('was deleted')`)
}
