package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/canarymesh/canarymesh/internal/kube/inject"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
)

// `canarymesh controller --proxy-image ... --proxy-token-secret S` injects sidecars that
// read the push stream's token from Secret S of their own namespace, so the controller
// must write that Secret wherever an injected pod appears: without it the sidecar cannot
// start. The pod here arrives already injected (as `canarymesh inject` output does).
func TestControllerWritesTheProxyTokenSecret(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const token, secret = "str3am-t0ken", "canarymesh-proxy-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(env.Config)
	for _, ns := range []string{"canarymesh-system", "shop"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	root := newRootCommand()
	root.SetArgs([]string{"controller", "--kubeconfig", env.Kubeconfig, "--namespace", "canarymesh-system",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--stream-listen", "127.0.0.1:0",
		"--stream-token-file", tokenFile, "--webhook-port", freePortNumber(t), "--webhook-service", "canarymesh-controller",
		"--proxy-image", "example/canarymesh:1", "--control-plane-address", "canarymesh-controller.canarymesh-system.svc:7481",
		"--proxy-token-secret", secret, "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("controller did not stop")
		}
	})

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart", Annotations: map[string]string{inject.AnnotationInjected: "shop/cart"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "cart", Image: "cart"}}},
	}
	if _, err := cs.CoreV1().Pods("shop").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		sec, err := cs.CoreV1().Secrets("shop").Get(ctx, secret, metav1.GetOptions{})
		if err == nil {
			if got := string(sec.Data["token"]); got != token {
				t.Fatalf("Secret shop/%s holds %q, want the stream token", secret, got)
			}
			return
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("controller ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Secret shop/%s for the injected pod within a minute: %v", secret, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePortNumber(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	return addr[len("127.0.0.1:"):]
}
