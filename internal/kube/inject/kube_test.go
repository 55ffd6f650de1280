package inject

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
)

const (
	testSystemNS = "canarymesh-system"
	testWebhook  = "canarymesh-sidecar-injector"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually polls cond until it holds or a minute passes.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within a minute (last error: %v)", what, lastErr)
}

// TestInjectorOnAPIServer runs the injector as the controller does, behind a real
// kube-apiserver that calls the webhook over TLS with the caBundle the injector wrote.
func TestInjectorOnAPIServer(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tc := newTestCluster(ctx, t, env)
	c, cs, port, startController := tc.c, tc.cs, tc.port, tc.start
	mustCreate := func(obj client.Object) { t.Helper(); tc.mustCreate(t, obj) }
	mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "labelled", Labels: map[string]string{LabelInject: Enabled}}})
	mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "appmesh", Labels: map[string]string{AppMeshLabelInject: Enabled}}})
	mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}})
	for _, ns := range []string{"labelled", "appmesh", "plain"} {
		mustCreate(testVirtualNode(ns, "podinfo", map[string]string{"app": "podinfo"}))
	}
	gw := vgateway("appmesh", "appmesh-gateway", map[string]string{"app": "appmesh-gateway"})
	gw.Spec.Listeners = []v1alpha1.VirtualGatewayListener{{PortMapping: v1alpha1.VirtualGatewayPortMapping{Port: 8080, Protocol: "http"}}}
	mustCreate(gw)
	mustCreate(testVirtualNode("labelled", "twin-a", map[string]string{"twin": "yes"}))
	mustCreate(testVirtualNode("labelled", "twin-b", map[string]string{"twin": "yes"}))

	inj, stopFirst := startController(t)

	// Given the certificate Setup created, stored and patched into the configuration.
	sec, err := cs.CoreV1().Secrets(testSystemNS).Get(ctx, DefaultCertSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("certificate Secret: %v", err)
	}
	mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, testWebhook, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(mwc.Webhooks[0].ClientConfig.CABundle) != string(sec.Data[SecretKeyCA]) || len(inj.Certs.CABundle()) == 0 {
		t.Fatal("the webhook configuration's caBundle is not the Secret's CA")
	}
	waitServing(t, port, sec.Data[SecretKeyCA])

	create := func(ns, name string, labels, ann map[string]string) (*corev1.Pod, error) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Annotations: ann},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "podinfo",
				Ports: []corev1.ContainerPort{{ContainerPort: 9898}}}}},
		}
		return cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	}
	app := map[string]string{"app": "podinfo"}

	t.Run("labelled namespace gets the proxy and the init container", func(t *testing.T) {
		pod, err := create("labelled", "injected", app, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkInjected(t, pod, "labelled/podinfo", false)
		if env := envOf(pod.Spec.InitContainers[0]); env[EnvAppPorts] != "9898" {
			t.Errorf("APPMESH_APP_PORTS = %q, want the listener's 9898", env[EnvAppPorts])
		}
	})
	t.Run("the proxies' token Secret is written where pods were injected", func(t *testing.T) {
		eventually(t, "Secret labelled/canarymesh-proxy", func() (bool, error) {
			sec, err := cs.CoreV1().Secrets("labelled").Get(ctx, testConfig.ProxyTokenSecret, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return string(sec.Data["token"]) == "s3cret", fmt.Errorf("token %q", sec.Data["token"])
		})
		// A Deployment canary leaves it alone (no -primary copy, no release when it changes).
		sec, err := cs.CoreV1().Secrets("labelled").Get(ctx, testConfig.ProxyTokenSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := sec.Annotations["canarymesh.dev/config-tracking"]; got != "disabled" {
			t.Errorf("token Secret annotation canarymesh.dev/config-tracking = %q, want disabled", got)
		}
		if _, err := cs.CoreV1().Secrets("plain").Get(ctx, testConfig.ProxyTokenSecret, metav1.GetOptions{}); err == nil {
			t.Fatal("token Secret written into a namespace without injected pods")
		}
	})
	t.Run("App Mesh label injects too", func(t *testing.T) {
		pod, err := create("appmesh", "injected", app, map[string]string{AnnotationProxyMode: ModeExplicit})
		if err != nil {
			t.Fatal(err)
		}
		checkInjected(t, pod, "appmesh/podinfo", true)
	})
	t.Run("gateway pod gets the gateway's proxy", func(t *testing.T) {
		pod, err := create("appmesh", "gateway", map[string]string{"app": "appmesh-gateway"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := pod.Annotations[AnnotationInjected]; got != "VirtualGateway/appmesh/appmesh-gateway" || len(pod.Spec.InitContainers) != 1 {
			t.Fatalf("gateway pod: injected %q, init containers %v", got, names(pod.Spec.InitContainers))
		}
	})
	t.Run("explicit mode runs where Pod Security is restricted; iptables mode does not", func(t *testing.T) {
		mustCreate(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "restricted", Labels: map[string]string{
			LabelInject: Enabled, "pod-security.kubernetes.io/enforce": "restricted"}}})
		mustCreate(testVirtualNode("restricted", "podinfo", app))
		restrictedPod := func(name string, ann map[string]string) *corev1.Pod {
			pod := testPod(app, ann)
			pod.Name, pod.GenerateName = name, ""
			pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(1000)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
			pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
			return pod
		}
		pod, err := cs.CoreV1().Pods("restricted").Create(ctx, restrictedPod("explicit", map[string]string{AnnotationProxyMode: ModeExplicit}), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("explicit-mode pod refused: %v", err)
		}
		checkInjected(t, pod, "restricted/podinfo", true)
		_, err = cs.CoreV1().Pods("restricted").Create(ctx, restrictedPod("iptables", nil), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "NET_ADMIN") {
			t.Fatalf("iptables-mode pod in a restricted namespace: %v, want a refusal naming NET_ADMIN", err)
		}
	})
	t.Run("unlabelled namespace is left alone", func(t *testing.T) {
		pod, err := create("plain", "untouched", app, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(pod.Spec.Containers) != 1 || len(pod.Spec.InitContainers) != 0 || pod.Annotations[AnnotationInjected] != "" {
			t.Fatalf("pod in an unlabelled namespace was changed: containers %v, init %v", names(pod.Spec.Containers), names(pod.Spec.InitContainers))
		}
	})
	t.Run("pod annotation opts in from an unlabelled namespace", func(t *testing.T) {
		pod, err := create("plain", "opted-in", app, map[string]string{LabelInject: Enabled})
		if err != nil {
			t.Fatal(err)
		}
		checkInjected(t, pod, "plain/podinfo", false)
	})
	t.Run("pod annotation opts out of a labelled namespace", func(t *testing.T) {
		pod, err := create("labelled", "opted-out", app, map[string]string{AppMeshLabelInject: Disabled})
		if err != nil {
			t.Fatal(err)
		}
		if IsInjected(&pod.Spec) || len(pod.Spec.InitContainers) != 0 {
			t.Fatalf("opted-out pod got containers %v, init %v", names(pod.Spec.Containers), names(pod.Spec.InitContainers))
		}
	})
	t.Run("already injected pod is not injected twice", func(t *testing.T) {
		pre := testPod(app, nil)
		pre.Name, pre.Namespace, pre.GenerateName = "pre-injected", "labelled", ""
		testConfig.mustDecide(t, Input{Pod: pre, Namespace: "labelled", Force: true, VirtualNode: "podinfo"}).Patch.Apply(pre)
		pod, err := cs.CoreV1().Pods("labelled").Create(ctx, pre, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkInjected(t, pod, "labelled/podinfo", false)
	})
	t.Run("pod matching two VirtualNodes is refused naming both", func(t *testing.T) {
		_, err := create("labelled", "twin", map[string]string{"twin": "yes"}, nil)
		want := "found multiple matching VirtualNodes for pod labelled/twin: labelled/twin-a,labelled/twin-b"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("create = %v, want a refusal containing %q", err, want)
		}
	})
	t.Run("canarymesh inject output is accepted by the API server", func(t *testing.T) {
		srcs := []Source{
			readSource(t, "testdata/seeds/flagger-appmesh-demo/namespace.yaml"),
			readSource(t, "testdata/seeds/flagger-appmesh-demo/tester/deployment.yaml"),
			readSource(t, "testdata/seeds/flagger-appmesh-demo/podinfo/deployment.yaml"),
		}
		out, _, err := InjectManifests(srcs, ManifestOptions{Config: manifestConfig})
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(out), "\n---\n") {
			u := &unstructured.Unstructured{}
			if err := sigsyaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("document %d: %v", i+1, err)
			}
			// Strict field validation: a misspelt or misplaced field is refused.
			if err := c.Create(ctx, u, client.FieldValidation("Strict")); err != nil {
				t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
		dep, err := cs.AppsV1().Deployments("demo").Get(ctx, "podinfo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{ObjectMeta: dep.Spec.Template.ObjectMeta, Spec: dep.Spec.Template.Spec}
		checkInjectedAs(t, pod, "demo/podinfo", false, manifestConfig)
	})
	t.Run("webhook down: pod created without the proxy and a Warning event says so", func(t *testing.T) {
		// When the controller is down, failurePolicy Ignore lets pods through.
		stopFirst()
		pod, err := create("labelled", "missed", app, nil)
		if err != nil {
			t.Fatal(err)
		}
		if IsInjected(&pod.Spec) {
			t.Fatal("pod injected while the webhook was down")
		}
		// The controller comes back, sees the pod among those it lists at start, and
		// says what happened.
		inj, _ = startController(t)
		waitServing(t, port, inj.Certs.CABundle())
		eventually(t, "a ProxyNotInjected Warning event on the pod", func() (bool, error) {
			evs, err := cs.EventsV1().Events("labelled").List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, ev := range evs.Items {
				if ev.Regarding.Name == pod.Name && ev.Reason == ReasonProxyNotInjected && ev.Type == corev1.EventTypeWarning {
					if !strings.Contains(ev.Note, "VirtualNode labelled/podinfo") || !strings.Contains(ev.Note, "failurePolicy") {
						return false, fmt.Errorf("event note %q", ev.Note)
					}
					return true, nil
				}
			}
			return false, nil
		})
		// Pods that are as they should be get no such event.
		for _, name := range []string{"injected", "opted-out"} {
			if n := countEvents(t, cs, "labelled", name, ReasonProxyNotInjected); n != 0 {
				t.Errorf("pod labelled/%s got %d %s events", name, n, ReasonProxyNotInjected)
			}
		}
		quiet, err := cs.CoreV1().Pods("plain").Get(ctx, "untouched", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if msg, err := inj.Missed.Check(ctx, quiet); err != nil || msg != "" {
			t.Fatalf("Check(pod in an unlabelled namespace) = %q, %v; want nothing to report", msg, err)
		}
		// And the webhook injects again.
		again, err := create("labelled", "after-restart", app, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkInjected(t, again, "labelled/podinfo", false)
	})
	t.Run("caBundle wiped by a re-apply is patched back", func(t *testing.T) {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := c.Get(ctx, types.NamespacedName{Name: testWebhook}, cfg); err != nil {
			t.Fatal(err)
		}
		cfg.Webhooks[0].ClientConfig.CABundle = nil
		if err := c.Update(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if err := inj.Certs.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(ctx, types.NamespacedName{Name: testWebhook}, cfg); err != nil {
			t.Fatal(err)
		}
		if string(cfg.Webhooks[0].ClientConfig.CABundle) != string(inj.Certs.CABundle()) {
			t.Fatal("caBundle not restored")
		}
	})
}

func testVirtualNode(ns, name string, sel map[string]string) *v1alpha1.VirtualNode {
	vn := vnode(ns, name, sel, 9898)
	vn.Spec.ServiceDiscovery = &v1alpha1.ServiceDiscovery{DNS: &v1alpha1.DNSServiceDiscovery{Hostname: name + "." + ns + ".svc.cluster.local"}}
	return vn
}

// waitServing waits until the webhook answers TLS with a certificate the bundle trusts.
func waitServing(t *testing.T, port int, bundle []byte) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	eventually(t, "the webhook serving TLS", func() (bool, error) {
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			return false, err
		}
		conn.Close()
		return true, nil
	})
}

func countEvents(t *testing.T, cs kubernetes.Interface, ns, name, reason string) int {
	t.Helper()
	evs, err := cs.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs.Items {
		if ev.Regarding.Name == name && ev.Reason == reason {
			n++
		}
	}
	return n
}

// testCluster is a kube-apiserver with the injector's webhook configured and a way to
// run the injector as the controller does.
type testCluster struct {
	ctx    context.Context
	env    *kubetest.Env
	scheme *runtime.Scheme
	c      client.Client
	cs     kubernetes.Interface
	port   int
	log    *slog.Logger
}

func newTestCluster(ctx context.Context, t *testing.T, env *kubetest.Env) *testCluster {
	t.Helper()
	tc := &testCluster{ctx: ctx, env: env, scheme: runtime.NewScheme(), port: freePort(t),
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if err := clientgoscheme.AddToScheme(tc.scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(tc.scheme); err != nil {
		t.Fatal(err)
	}
	var err error
	if tc.c, err = client.New(env.Config, client.Options{Scheme: tc.scheme}); err != nil {
		t.Fatal(err)
	}
	tc.cs = kubernetes.NewForConfigOrDie(env.Config)
	tc.mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testSystemNS}})
	url := "https://127.0.0.1:" + strconv.Itoa(tc.port) + WebhookPath
	tc.mustCreate(t, WebhookConfiguration(testWebhook, admissionregistrationv1.WebhookClientConfig{URL: &url}, "kube-system", testSystemNS))
	return tc
}

func (tc *testCluster) mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := tc.c.Create(tc.ctx, obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// start runs the injector as the controller does; the returned function stops it (the
// webhook goes down with it).
func (tc *testCluster) start(t *testing.T) (*Injector, func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(tc.env.Config, ctrl.Options{Scheme: tc.scheme, Logger: logr.FromSlogHandler(tc.log.Handler()),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	inj, err := Setup(tc.ctx, mgr, Options{
		Config: testConfig, Namespace: testSystemNS, ServiceName: "canarymesh-controller",
		Host: "127.0.0.1", Port: tc.port, ExtraIPs: []net.IP{net.ParseIP("127.0.0.1")},
		WebhookConfigurations: []string{testWebhook}, Logger: tc.log, ProxyToken: "s3cret",
	})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(tc.ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	var once sync.Once
	stopAndWait := func() {
		once.Do(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	t.Cleanup(stopAndWait)
	waitServing(t, tc.port, inj.Certs.CABundle())
	return inj, stopAndWait
}

// TestInjectorWithDeployments lets the controller manager create the pods, as in a
// cluster: a Deployment's pod is injected, and an App Mesh v1beta1-style VirtualNode
// (no podSelector) is found by the Deployment's name, as App Mesh's first injector did.
func TestInjectorWithDeployments(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true, Controllers: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tc := newTestCluster(ctx, t, env)
	tc.mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "case-study", Labels: map[string]string{AppMeshLabelInject: Enabled}}})
	vn := testVirtualNode("case-study", "hello-v2", nil)
	vn.Spec.Listeners[0].PortMapping.Port = 8000
	tc.mustCreate(t, vn)
	tc.start(t)

	one := int32(1)
	labels := map[string]string{"app": "hello", "version": "v2"}
	tc.mustCreate(t, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "case-study", Name: "hello-v2"},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "hello", Image: "hello", Ports: []corev1.ContainerPort{{ContainerPort: 8000}}}}}}},
	})
	var pod corev1.Pod
	eventually(t, "the Deployment's pod", func() (bool, error) {
		pods, err := tc.cs.CoreV1().Pods("case-study").List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		pod = pods.Items[0]
		return true, nil
	})
	if got := OwnerName(&pod); got != "hello-v2" {
		t.Fatalf("OwnerName = %q, want the Deployment hello-v2", got)
	}
	checkInjected(t, &pod, "case-study/hello-v2", false)
	if env := envOf(pod.Spec.InitContainers[0]); env[EnvAppPorts] != "8000" {
		t.Errorf("APPMESH_APP_PORTS = %q, want the listener's 8000", env[EnvAppPorts])
	}
}
