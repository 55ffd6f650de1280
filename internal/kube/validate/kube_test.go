package validate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/kube/inject"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
)

const testSystemNS = "canarymesh-system"

// TestValidatorOnAPIServer runs the validator as the controller does, on the injector's
// webhook server, behind a real kube-apiserver that calls it over TLS with the caBundle
// the controller wrote into the ValidatingWebhookConfiguration.
func TestValidatorOnAPIServer(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true, CompatCRDs: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{testSystemNS, "demo"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	obj := func(doc string, edit func(map[string]any)) *unstructured.Unstructured {
		m := fromYAML(t, doc)
		if edit != nil {
			edit(m)
		}
		return &unstructured.Unstructured{Object: m}
	}
	noMetricName := func(m map[string]any) {
		set(m, "legacy", "metadata", "name")
		set(m, "", "spec", "analysis", "metrics", 0, "name")
	}
	// Given a Canary stored before the webhook existed, which it would refuse.
	legacy := obj(canaryYAML, noMetricName)
	if err := c.Create(ctx, legacy); err != nil {
		t.Fatalf("create the legacy Canary without the webhook: %v", err)
	}

	port := freePort(t)
	url := "https://127.0.0.1:" + strconv.Itoa(port) + WebhookPath
	if err := c.Create(ctx, WebhookConfiguration(DefaultWebhookConfiguration,
		admissionregistrationv1.WebhookClientConfig{URL: &url}, "kube-system", testSystemNS)); err != nil {
		t.Fatal(err)
	}
	bundle := startController(ctx, t, env, scheme, port)

	// The controller patched the caBundle it serves with.
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: DefaultWebhookConfiguration}, vwc); err != nil {
		t.Fatal(err)
	}
	if string(vwc.Webhooks[0].ClientConfig.CABundle) != string(bundle) {
		t.Fatal("the ValidatingWebhookConfiguration's caBundle is not the controller's CA")
	}

	refused := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("accepted, want refused with %q", want)
		}
		if !apierrors.IsInvalid(err) {
			t.Errorf("error is not Invalid (422): %v", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, `admission webhook "validate.canarymesh.dev" denied the request`) {
			t.Errorf("not refused by the webhook: %v", err)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q lacks %q", msg, w)
			}
		}
	}

	t.Run("a Canary without a metric name is refused", func(t *testing.T) {
		err := c.Create(ctx, obj(canaryYAML, noMetricName))
		refused(t, err, "Canary demo/legacy is invalid: spec.analysis.metrics[0].name: is required")
	})
	t.Run("a Canary without an analysis strategy is refused", func(t *testing.T) {
		bad := obj(canaryYAML, func(m map[string]any) {
			set(m, "no-strategy", "metadata", "name")
			an := m["spec"].(map[string]any)["analysis"].(map[string]any)
			delete(an, "stepWeight")
			delete(an, "maxWeight")
		})
		err := c.Create(ctx, bad)
		refused(t, err, "Canary demo/no-strategy is invalid: spec.analysis")
	})
	t.Run("valid Canaries are accepted", func(t *testing.T) {
		if err := c.Create(ctx, obj(canaryYAML, nil)); err != nil {
			t.Fatalf("canarymesh.dev Canary refused: %v", err)
		}
		seed, err := os.ReadFile("../../../examples/podinfo/canary.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Create(ctx, obj(string(seed), nil)); err != nil {
			t.Fatalf("examples/podinfo Flagger Canary refused: %v", err)
		}
	})
	t.Run("changing a VirtualNode's awsName or mesh is refused", func(t *testing.T) {
		vn := obj(nodeYAML, nil)
		if err := c.Create(ctx, vn); err != nil {
			t.Fatal(err)
		}
		renamed := vn.DeepCopy()
		set(renamed.Object, "front_elsewhere", "spec", "awsName")
		refused(t, c.Update(ctx, renamed), "VirtualNode demo/front is invalid: spec.awsName: is immutable")
		moved := vn.DeepCopy()
		set(moved.Object, map[string]any{"name": "other", "uid": "3c4d"}, "spec", "meshRef")
		refused(t, c.Update(ctx, moved), "spec.meshRef.name: is immutable")
		// A change that keeps them is fine.
		tweaked := vn.DeepCopy()
		set(tweaked.Object, "front.demo", "spec", "serviceDiscovery", "dns", "hostname")
		if err := c.Update(ctx, tweaked); err != nil {
			t.Fatalf("update keeping the immutable fields refused: %v", err)
		}
	})
	t.Run("the stored invalid Canary still gets status, metadata and deletion", func(t *testing.T) {
		cur := &unstructured.Unstructured{}
		cur.SetGroupVersionKind(legacy.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(legacy), cur); err != nil {
			t.Fatal(err)
		}
		set(cur.Object, "Initializing", "status", "phase")
		if err := c.Status().Update(ctx, cur); err != nil {
			t.Fatalf("status update refused: %v", err)
		}
		cur.SetLabels(map[string]string{"team": "a"})
		if err := c.Update(ctx, cur); err != nil {
			t.Fatalf("metadata update refused: %v", err)
		}
		set(cur.Object, int64(20), "spec", "analysis", "stepWeight")
		refused(t, c.Update(ctx, cur), "spec.analysis.metrics[0].name: is required")
		if err := c.Delete(ctx, legacy); err != nil {
			t.Fatalf("delete: %v", err)
		}
	})
	t.Run("an invalid App Mesh VirtualNode is refused", func(t *testing.T) {
		bad := obj(appMeshNodeYAML, func(m map[string]any) {
			set(m, []any{map[string]any{"virtualService": map[string]any{"virtualServiceRef": map[string]any{"name": ""}}}}, "spec", "backends")
		})
		refused(t, c.Create(ctx, bad), "VirtualNode.appmesh.k8s.aws demo/front is invalid: spec.backends[0]")
		if err := c.Create(ctx, obj(appMeshNodeYAML, nil)); err != nil {
			t.Fatalf("valid App Mesh VirtualNode refused: %v", err)
		}
	})
}

// startController runs the injector's webhook server with the validator on it, as
// `canarymesh controller` does, and returns the CA bundle once it serves.
func startController(ctx context.Context, t *testing.T, env *kubetest.Env, scheme *runtime.Scheme, port int) []byte {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: scheme, Logger: logr.FromSlogHandler(log.Handler()),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	inj, err := inject.Setup(ctx, mgr, inject.Options{
		Config:    inject.Config{Image: "canarymesh:test", ControlPlane: "cp.canarymesh-system.svc:15010"},
		Namespace: testSystemNS, Host: "127.0.0.1", Port: port, ExtraIPs: []net.IP{net.ParseIP("127.0.0.1")},
		WebhookConfigurations: []string{}, Logger: log,
		Webhooks: map[string]http.Handler{WebhookPath: &admission.Webhook{Handler: &Handler{Log: log}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	bundle := inj.Certs.CABundle()
	waitServing(t, port, bundle)
	return bundle
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitServing waits, up to a minute, until the webhook accepts TLS connections trusting
// bundle.
func waitServing(t *testing.T, port int, bundle []byte) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook does not serve TLS: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
