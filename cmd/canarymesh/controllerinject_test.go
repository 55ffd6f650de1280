package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/canarymesh/canarymesh/internal/kube/inject"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
	"github.com/canarymesh/canarymesh/internal/kube/validate"
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
	port := freePortNumber(t)
	root := newRootCommand()
	root.SetArgs([]string{"controller", "--kubeconfig", env.Kubeconfig, "--namespace", "canarymesh-system",
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--stream-listen", "127.0.0.1:0",
		"--stream-token-file", tokenFile, "--webhook-port", port, "--webhook-service", "canarymesh-controller",
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
			break
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
	checkValidatorServed(ctx, t, cs, port)
}

// checkValidatorServed: the injector's webhook server also answers the validator's path,
// with the certificate the controller made, and refuses an invalid Canary.
func checkValidatorServed(ctx context.Context, t *testing.T, cs kubernetes.Interface, port string) {
	t.Helper()
	sec, err := cs.CoreV1().Secrets("canarymesh-system").Get(ctx, inject.DefaultCertSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sec.Data[inject.SecretKeyCA])
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool,
		ServerName: "canarymesh-controller.canarymesh-system.svc"}}}
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1",
		"kind":{"group":"canarymesh.dev","version":"v1alpha1","kind":"Canary"},
		"resource":{"group":"canarymesh.dev","version":"v1alpha1","resource":"canaries"},
		"operation":"CREATE","name":"podinfo","namespace":"shop",
		"object":{"apiVersion":"canarymesh.dev/v1alpha1","kind":"Canary","metadata":{"name":"podinfo","namespace":"shop"},
		"spec":{"targetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":""},"service":{"port":9898},
		"analysis":{"interval":"1m","threshold":5,"maxWeight":50,"stepWeight":10}}}}}`
	resp, err := hc.Post("https://127.0.0.1:"+port+validate.WebhookPath, "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatalf("validator: %v", err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("validator's answer: %v", err)
	}
	if out.Response == nil || out.Response.Allowed || !strings.Contains(out.Response.Result.Message, "spec.targetRef.name: is required") {
		t.Fatalf("validator answered %+v, want a refusal naming spec.targetRef.name", out.Response)
	}
}

func freePortNumber(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	return addr[len("127.0.0.1:"):]
}
