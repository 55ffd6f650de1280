package dashboard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/controlplane"
)

// chromiumPath is Debian's Chromium, which the browser tests drive.
const chromiumPath = "/usr/bin/chromium"

// needChromium skips the test without Chromium, or fails it under CI=true.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (apt-get install chromium): the browser tests need it", chromiumPath)
		}
		t.Skipf("skipped: %s is missing (apt-get install chromium)", chromiumPath)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// binary builds canarymesh once for the package's tests.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "canarymesh-dashboard-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "canarymesh")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/canarymesh").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
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

// upProcess is a running `canarymesh up`.
type upProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	log    *syncBuffer
	client *controlplane.Client
	token  string
}

// syncBuffer is a log buffer the process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startUp runs `canarymesh up` on dataDir with args and waits for its API.
func startUp(t *testing.T, dataDir, listen string, args ...string) *upProcess {
	t.Helper()
	_ = os.Remove(filepath.Join(dataDir, "server"))
	p := &upProcess{t: t, log: &syncBuffer{}}
	p.cmd = exec.Command(binary(t), append([]string{"up", "--data-dir", dataDir, "--listen", listen, "--log-level", "warn"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("up log:\n%s", p.log)
		}
	})
	waitFor(t, 30*time.Second, "canarymesh up to answer", func() error {
		tok, err := os.ReadFile(filepath.Join(dataDir, "token"))
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(dataDir, "server")); err != nil {
			return err
		}
		p.token = strings.TrimSpace(string(tok))
		p.client = controlplane.NewClient("http://"+listen, p.token)
		_, err = p.client.Version(context.Background())
		return err
	})
	return p
}

// stop ends up as Ctrl-C does and waits for it.
func (p *upProcess) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// canary reads the Canary through the API.
func (p *upProcess) canary(ns, name string) (*v1alpha1.Canary, error) {
	k, _ := v1alpha1.LookupKind("Canary")
	obj, err := p.client.Get(context.Background(), k, ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*v1alpha1.Canary), nil
}

// waitFor polls ok until it returns nil, failing the test with the last error after d.
func waitFor(t *testing.T, d time.Duration, what string, ok func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if last = ok(); last == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %v", what, last)
}

// newBrowser starts a headless Chromium with a fresh profile, closed with the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	needChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// js evaluates expression in the page.
func js[T any](ctx context.Context, expression string) (T, error) {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(c, chromedp.Evaluate[T](expression))
}

// waitPage polls a JavaScript expression until it is true.
func waitPage(t *testing.T, ctx context.Context, d time.Duration, what, expression string) {
	t.Helper()
	waitFor(t, d, what, func() error {
		ok, err := js[bool](ctx, expression)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New(expression + " is false; page: " + pageText(ctx))
		}
		return nil
	})
}

// pageText is the page's visible text, for failure messages.
func pageText(ctx context.Context) string {
	s, err := js[string](ctx, `document.body ? document.body.innerText.slice(0, 600) : ''`)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

// text reads an element's text ("" when it is missing).
func text(t *testing.T, ctx context.Context, selector string) string {
	t.Helper()
	s, err := js[string](ctx, `(() => { const e = document.querySelector(`+quote(selector)+`); return e ? e.textContent : '' })()`)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// do runs browser actions with a bound.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("browser: %v; page: %s", err, pageText(ctx))
	}
}
