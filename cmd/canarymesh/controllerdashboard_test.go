package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/dashboard"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/kube"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// In Kubernetes mode the controller serves the dashboard behind --dashboard-listen: it
// shows the cluster's Canaries, refuses what the token does not allow, and its actions
// land on the Canary in the API server.
func TestControllerServesTheDashboard(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const token = "dash-t0ken"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	dash := freeAddr(t)
	root := newRootCommand()
	root.SetArgs([]string{"controller", "--kubeconfig", env.Kubeconfig, "--metrics-bind-address", "0",
		"--health-probe-bind-address", "0", "--stream-listen", "127.0.0.1:0", "--stream-token-file", tokenFile,
		"--webhook-port", "0", "--dashboard-listen", dash, "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("controller did not stop")
		}
	})

	// A Canary stored in the cluster, as kubectl would.
	st, err := kube.New(env.Config, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cd := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "default"}}
	cd.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	cd.Spec.TargetRef = v1alpha1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}
	cd.Spec.Service.Port = 9898
	cd.Spec.Analysis = &v1alpha1.CanaryAnalysis{Interval: "1m", Threshold: 5, StepWeight: 10, MaxWeight: 50}
	if _, err := st.Create(ctx, cd); err != nil {
		t.Fatal(err)
	}

	base := "http://" + dash
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	do := func(method, path, body string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _ := do("GET", "/ui/", "", nil)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard not served at %s/ui/ within a minute (last status %d)", base, code)
		}
		time.Sleep(200 * time.Millisecond)
	}

	if code, body := do("GET", "/apis/canarymesh.dev/v1alpha1/namespaces/default/canaries", "", nil); code != http.StatusUnauthorized {
		t.Errorf("API without the token: %d %s, want 401", code, body)
	}
	code, body := do("GET", "/apis/canarymesh.dev/v1alpha1/namespaces/default/canaries", "", map[string]string{"Authorization": "Bearer " + token})
	if code != http.StatusOK || !strings.Contains(body, `"podinfo"`) {
		t.Errorf("API with the token: %d %s, want the cluster's Canary", code, body)
	}
	csrf := map[string]string{dashboard.HeaderCSRF: "1", "Content-Type": "application/json"}
	if code, body := do("POST", "/ui/actions/default/podinfo/pause", "", csrf); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("pause without a login: %d %s, want refused", code, body)
	}
	if code, body := do("POST", "/ui/login", `{"token":"wrong"}`, csrf); code != http.StatusUnauthorized {
		t.Errorf("login with a wrong token: %d %s", code, body)
	}
	if code, body := do("POST", "/ui/login", fmt.Sprintf(`{"token":%q}`, token), csrf); code != http.StatusOK {
		t.Fatalf("login: %d %s", code, body)
	}
	if code, body := do("POST", "/ui/actions/default/podinfo/pause", "", csrf); code/100 != 2 {
		t.Fatalf("pause after login: %d %s", code, body)
	}
	obj, err := st.Get(ctx, store.Key{Kind: "Canary", Namespace: "default", Name: "podinfo"})
	if err != nil {
		t.Fatal(err)
	}
	if got := obj.GetAnnotations()[canary.AnnotationCommand]; got != string(canary.ManualPause) {
		b, _ := json.Marshal(obj.GetAnnotations())
		t.Errorf("the Canary in the cluster carries command %q (annotations %s), want pause", got, b)
	}
}
