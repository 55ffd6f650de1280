package loadtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestService(t *testing.T, opts ServiceOptions) (*Service, *httptest.Server) {
	t.Helper()
	svc := NewService(opts)
	srv := httptest.NewServer(svc)
	t.Cleanup(func() {
		srv.Close()
		svc.Close()
	})
	return svc, srv
}

// post sends a webhook as Flagger does and returns the status and body.
func post(t *testing.T, url string, p any) (int, string) {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func hook(name, typ, cmd string) Payload {
	md := map[string]string{"cmd": cmd}
	if typ != "" {
		md["type"] = typ
	}
	return Payload{Name: name, Namespace: "demo", Phase: "Progressing", Metadata: md}
}

// eventually polls cond for up to 20s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestServiceRunsHeyCommands(t *testing.T) {
	target := newCounter(t, nil)
	svc, srv := newTestService(t, ServiceOptions{})
	code, body := post(t, srv.URL+"/", hook("podinfo", "", "hey -n 20 -c 2 "+target.URL+"/"))
	if code != http.StatusAccepted {
		t.Fatalf("POST / = %d %q, want 202 as flagger-loadtester", code, body)
	}
	eventually(t, "20 requests at the target", func() bool { return target.n.Load() == 20 })
	eventually(t, "the task to end", func() bool { return svc.Running() == 0 })
	if got := target.n.Load(); got != 20 {
		t.Errorf("target got %d requests, want 20", got)
	}
	if svc.Executions() != 1 {
		t.Errorf("executions = %d", svc.Executions())
	}
}

func TestServiceDeduplicatesRunningCommands(t *testing.T) {
	target := newCounter(t, nil)
	svc, srv := newTestService(t, ServiceOptions{})
	cmd := "hey -z 1m -q 5 -c 1 " + target.URL + "/"
	for range 3 {
		if code, body := post(t, srv.URL+"/", hook("podinfo", "cmd", cmd)); code != http.StatusAccepted {
			t.Fatalf("POST / = %d %q", code, body)
		}
	}
	if n := svc.Executions(); n != 1 {
		t.Errorf("the same command for the same canary started %d times, want 1", n)
	}
	post(t, srv.URL+"/", hook("other", "cmd", cmd))
	if n, r := svc.Executions(), svc.Running(); n != 2 || r != 2 {
		t.Errorf("another canary: executions %d, running %d; want 2 and 2", n, r)
	}
	eventually(t, "load at the target", func() bool { return target.n.Load() > 0 })
	svc.Close() // cancels the minute-long runs
	if r := svc.Running(); r != 0 {
		t.Errorf("%d tasks still running after Close", r)
	}
}

func TestServiceRejectsBadTasks(t *testing.T) {
	_, srv := newTestService(t, ServiceOptions{})
	tests := []struct {
		name string
		body any
		code int
		want string
	}{
		{"bad hey flag", hook("p", "", "hey -z soon http://a/"), 400, "-z"},
		{"unknown type", hook("p", "helm", "upgrade x"), 400, `unknown task type "helm"`},
		{"no metadata", Payload{Name: "p", Namespace: "demo"}, 400, "metadata not found"},
		{"no cmd", Payload{Name: "p", Metadata: map[string]string{"type": "cmd"}}, 400, "cmd not found"},
		{"no canary", map[string]any{"metadata": map[string]string{"cmd": "hey http://a/"}}, 400, "names no canary"},
		{"bad timeout", Payload{Name: "p", Metadata: map[string]string{"cmd": "hey http://a/", "timeout": "x"}}, 400, "metadata.timeout"},
		{"shell cmd without --allow-shell", hook("p", "", "curl http://a/"), 403, "--allow-shell"},
		{"bash without --allow-shell", hook("p", "bash", "exit 0"), 403, "--allow-shell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, srv.URL+"/", tt.body)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("got %d %q, want %d naming %q", code, body, tt.code, tt.want)
			}
		})
	}
	resp, err := http.Post(srv.URL+"/", "application/json", strings.NewReader("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed JSON: %d", resp.StatusCode)
	}
}

func TestServiceBashWithAllowShell(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	_, srv := newTestService(t, ServiceOptions{AllowShell: true})

	if code, body := post(t, srv.URL+"/", hook("p", "bash", "test 1 -eq 1")); code != http.StatusOK {
		t.Errorf("exit 0: %d %q, want 200", code, body)
	}
	code, body := post(t, srv.URL+"/", hook("p", "bash", "echo token-missing; exit 3"))
	if code != http.StatusInternalServerError || !strings.Contains(body, "token-missing") || !strings.Contains(body, "exit status 3") {
		t.Errorf("exit 3: %d %q, want 500 with the output", code, body)
	}
	p := hook("p", "bash", "echo here is the output")
	p.Metadata["returnCmdOutput"] = "true"
	if code, body := post(t, srv.URL+"/", p); code != http.StatusOK || !strings.Contains(body, "here is the output") {
		t.Errorf("returnCmdOutput: %d %q", code, body)
	}
	p = hook("p", "bash", "sleep 30")
	p.Metadata["timeout"] = "200ms"
	if code, body := post(t, srv.URL+"/", p); code != http.StatusInternalServerError || !strings.Contains(body, "deadline exceeded") {
		t.Errorf("timeout: %d %q, want 500 naming the deadline", code, body)
	}
}

func TestServiceShellCmdWithAllowShell(t *testing.T) {
	svc, srv := newTestService(t, ServiceOptions{AllowShell: true})
	file := filepath.Join(t.TempDir(), "ran")
	if code, body := post(t, srv.URL+"/", hook("p", "cmd", "echo ok > "+file)); code != http.StatusAccepted {
		t.Fatalf("%d %q", code, body)
	}
	eventually(t, "the command to run", func() bool {
		b, err := os.ReadFile(file)
		return err == nil && strings.TrimSpace(string(b)) == "ok" && svc.Running() == 0
	})
}

func TestServiceGates(t *testing.T) {
	svc, srv := newTestService(t, ServiceOptions{})
	a, b := Payload{Name: "podinfo", Namespace: "demo"}, Payload{Name: "podinfo", Namespace: "other"}
	expect := func(path string, p any, want int) {
		t.Helper()
		if code, body := post(t, srv.URL+path, p); code != want {
			t.Errorf("%s %+v = %d %q, want %d", path, p, code, body, want)
		}
	}
	expect("/gate/approve", a, 200)
	expect("/gate/halt", a, 403)

	for _, g := range []string{"/gate", "/rollback"} {
		expect(g+"/check", a, 403) // closed until opened
		expect(g+"/open", a, 202)
		expect(g+"/check", a, 200)
		expect(g+"/check", b, 403) // per canary name.namespace
		expect(g+"/close", a, 202)
		expect(g+"/check", a, 403)
		expect(g+"/check", "not a payload", 400)
	}

	expect("/gate/open", a, 202)
	if !svc.GateOpen("podinfo.demo") || svc.RollbackOpen("podinfo.demo") {
		t.Error("opening the gate opened the rollback, or did not open the gate")
	}

	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz = %d", resp.StatusCode)
	}
}

func TestServiceMetrics(t *testing.T) {
	target := newCounter(t, nil)
	svc, srv := newTestService(t, ServiceOptions{})
	post(t, srv.URL+"/", hook("p", "", "hey -n 2 -c 1 "+target.URL))
	eventually(t, "the task to end", func() bool { return svc.Running() == 0 })
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`canarymesh_loadtester_tasks_total{type="hey"} 1`, "canarymesh_loadtester_tasks_running 0"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, b)
		}
	}
}
