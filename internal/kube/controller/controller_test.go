package controller_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/kube/controller"
	"github.com/canarymesh/canarymesh/internal/kube/deploytarget"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/kube"
)

const (
	token = "test-stream-token"
	// patience bounds every wait for the controller to converge.
	patience = 60 * time.Second
)

// running is an in-process controller.
type running struct {
	stream string
	stop   func()
}

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// startController runs the controller in this process until the test ends.
func startController(t *testing.T, env *kubetest.Env, edit func(*controller.Options)) *running {
	t.Helper()
	ready := make(chan string, 1)
	o := controller.Options{
		Config: env.Config, Log: logger(t),
		MetricsBindAddress: "0", HealthProbeBindAddress: "0",
		StreamListen: "127.0.0.1:0", StreamToken: token,
		Target: func(p controller.Parts) canary.Target {
			return &deploytarget.Target{Client: p.Client, OwnerReferences: true, Log: p.Log}
		},
		OnReady: func(addr string) { ready <- addr },
	}
	if edit != nil {
		edit(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controller.Run(ctx, o) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("controller.Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		return &running{stream: addr, stop: stop}
	case err := <-done:
		t.Fatalf("controller ended before it was ready: %v", err)
	case <-time.After(patience):
		t.Fatal("controller not ready")
	}
	return nil
}

func newStore(t *testing.T, env *kubetest.Env) *kube.Store {
	t.Helper()
	s, err := kube.New(env.Config, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// apply creates every object, namespaces first.
func apply(t *testing.T, s store.Store, objs []v1alpha1.Object) {
	t.Helper()
	ctx := t.Context()
	nss := map[string]bool{}
	for _, o := range objs {
		if _, ok := o.(*corev1.Namespace); ok {
			nss[o.GetName()] = true
		}
	}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && !nss[ns] {
			nss[ns] = true
			objs = append([]v1alpha1.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}}, objs...)
		}
	}
	for _, o := range objs {
		if _, ok := o.(*corev1.Namespace); !ok {
			continue
		}
		if _, err := s.Create(ctx, o); err != nil && !errors.Is(err, store.ErrExists) {
			t.Fatalf("create Namespace %s: %v", o.GetName(), err)
		}
	}
	for _, o := range objs {
		if _, ok := o.(*corev1.Namespace); ok {
			continue
		}
		if _, err := s.Create(ctx, o); err != nil {
			k, _ := store.KeyOf(o)
			t.Fatalf("create %s: %v", k, err)
		}
	}
}

func decode(t *testing.T, yaml string) []v1alpha1.Object {
	t.Helper()
	res, err := manifest.Decode("test.yaml", []byte(yaml), manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []v1alpha1.Object
	for _, it := range res.Items {
		out = append(out, it.Object)
	}
	return out
}

// eventually polls cond until it holds, failing the test with its last complaint.
func eventually(t *testing.T, what string, cond func() (string, bool)) {
	t.Helper()
	deadline := time.Now().Add(patience)
	var why string
	for time.Now().Before(deadline) {
		var ok bool
		if why, ok = cond(); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %s", what, why)
}

// statusOf returns the mesh status conditions of a mesh object, and whether it has them.
func conditionsOf(o v1alpha1.Object) ([]metav1.Condition, int64, bool) {
	switch obj := o.(type) {
	case *v1alpha1.Mesh:
		return obj.Status.Conditions, obj.Status.ObservedGeneration, true
	case *v1alpha1.VirtualNode:
		return obj.Status.Conditions, obj.Status.ObservedGeneration, true
	case *v1alpha1.VirtualService:
		return obj.Status.Conditions, obj.Status.ObservedGeneration, true
	case *v1alpha1.VirtualRouter:
		return obj.Status.Conditions, obj.Status.ObservedGeneration, true
	case *v1alpha1.VirtualGateway:
		return obj.Status.Conditions, obj.Status.ObservedGeneration, true
	case *v1alpha1.GatewayRoute:
		return obj.Status.Conditions, obj.Status.ObservedGeneration, true
	}
	return nil, 0, false
}

// reconciled says why objs are not all reconciled: every mesh object has
// ReferencesResolved and Ready for its current generation.
func reconciled(objs []v1alpha1.Object) (string, bool) {
	var waiting []string
	for _, o := range objs {
		conds, observed, ok := conditionsOf(o)
		if !ok {
			continue
		}
		k, _ := store.KeyOf(o)
		if observed != o.GetGeneration() {
			waiting = append(waiting, fmt.Sprintf("%s observedGeneration %d of %d", k, observed, o.GetGeneration()))
			continue
		}
		for _, typ := range []string{v1alpha1.ConditionReferencesResolved, v1alpha1.ConditionReady} {
			if apimeta.FindStatusCondition(conds, typ) == nil {
				waiting = append(waiting, fmt.Sprintf("%s has no %s condition", k, typ))
			}
		}
	}
	return strings.Join(waiting, "; "), len(waiting) == 0
}

// Every seed manifest — the App Mesh case study (v1beta1, converted by the import) and
// Flagger's App Mesh demo as it is — reconciles: each mesh object gets its conditions
// for its generation, and the Canary, whose Deployment is not there, says so.
func TestSeedManifestsReconcile(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true})
	s := newStore(t, env)
	startController(t, env, nil)

	root := filepath.Join("..", "..", "..", "examples")
	res, err := manifest.ReadPaths([]string{filepath.Join(root, "case-study"), filepath.Join(root, "flagger-appmesh-demo")}, nil, true, manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var objs []v1alpha1.Object
	kinds := map[string]int{}
	for _, it := range res.Items {
		objs = append(objs, it.Object)
		kinds[it.Object.GetObjectKind().GroupVersionKind().Kind]++
	}
	t.Logf("seed objects by kind: %v", kinds)
	if kinds["VirtualNode"] == 0 || kinds["VirtualService"] == 0 || kinds["Canary"] == 0 {
		t.Fatalf("the seeds decode to %v: missing kinds", kinds)
	}
	apply(t, s, objs)

	eventually(t, "seed mesh objects reconciled", func() (string, bool) {
		all, _, err := s.List(t.Context(), store.Filter{})
		if err != nil {
			return err.Error(), false
		}
		return reconciled(all)
	})
	all, _, err := s.List(t.Context(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range all {
		if conds, _, ok := conditionsOf(o); ok {
			k, _ := store.KeyOf(o)
			ready := apimeta.FindStatusCondition(conds, v1alpha1.ConditionReady)
			t.Logf("%s: Ready=%s %s", k, ready.Status, ready.Message)
		}
	}
	// The delivery objects a Canary names get Ready for their generation from the same
	// status reconciler, on the cluster's store.
	apply(t, s, decode(t, `
apiVersion: canarymesh.dev/v1alpha1
kind: MetricTemplate
metadata: {name: not-found-percentage, namespace: demo}
spec:
  provider: {type: prometheus, address: "http://prometheus.demo:9090"}
  query: sum(rate(http_requests_total{namespace="{{ namespace }}",status="404"}[{{ interval }}]))
---
apiVersion: canarymesh.dev/v1alpha1
kind: AlertProvider
metadata: {name: on-call, namespace: demo}
spec: {type: slack, address: "https://hooks.slack.com/services/x"}
`))
	for _, k := range []store.Key{{Kind: "MetricTemplate", Namespace: "demo", Name: "not-found-percentage"}, {Kind: "AlertProvider", Namespace: "demo", Name: "on-call"}} {
		eventually(t, k.String()+" Ready", func() (string, bool) {
			o, err := s.Get(t.Context(), k)
			if err != nil {
				return err.Error(), false
			}
			var st v1alpha1.MeshObjectStatus
			switch obj := o.(type) {
			case *v1alpha1.MetricTemplate:
				st = obj.Status
			case *v1alpha1.AlertProvider:
				st = obj.Status
			}
			c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if st.ObservedGeneration != o.GetGeneration() || c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Sprintf("observedGeneration %d of %d, Ready %+v", st.ObservedGeneration, o.GetGeneration(), c), false
			}
			return "", true
		})
	}
	// The demo's Canary targets a Deployment this test does not create: the canary
	// controller says so in a condition and in an event, which kubectl shows too.
	eventually(t, "the Canary's missing Deployment is a condition", func() (string, bool) {
		o, err := s.Get(t.Context(), store.Key{Kind: "Canary", Namespace: "demo", Name: "podinfo"})
		if err != nil {
			return err.Error(), false
		}
		c := apimeta.FindStatusCondition(o.(*v1alpha1.Canary).Status.Conditions, v1alpha1.ConditionReferencesResolved)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "TargetNotFound" || !strings.Contains(c.Message, "podinfo") {
			return fmt.Sprintf("condition %s: %+v", v1alpha1.ConditionReferencesResolved, c), false
		}
		return "", true
	})
	cs := kubernetes.NewForConfigOrDie(env.Config)
	eventually(t, "the Canary's missing Deployment is reported", func() (string, bool) {
		evs, _, err := s.List(t.Context(), store.Filter{Kind: "Event", Namespace: "demo"})
		if err != nil {
			return err.Error(), false
		}
		var name string
		for _, o := range evs {
			ev := o.(*v1alpha1.Event)
			if ev.InvolvedObject.Kind == "Canary" && ev.InvolvedObject.Name == "podinfo" && ev.Reason == "TargetNotFound" {
				name = ev.Name
			}
		}
		if name == "" {
			return fmt.Sprintf("%d events in demo, none TargetNotFound about Canary podinfo", len(evs)), false
		}
		core, err := cs.CoreV1().Events("demo").Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return "core event: " + err.Error(), false
		}
		if core.InvolvedObject.Kind != "Canary" || core.Type != corev1.EventTypeWarning {
			return fmt.Sprintf("core event %+v", core), false
		}
		return "", true
	})
}

// With no Service over them (and here no kube-controller-manager to fill EndpointSlices),
// a virtual node's endpoints are the ready Pods its podSelector matches, and sidecars get
// them over the push stream.
func TestEndpointsFromPods(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true})
	s := newStore(t, env)
	ctl := startController(t, env, nil)
	apply(t, s, decode(t, `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {mesh: shop}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: Mesh
metadata: {name: shop}
spec:
  namespaceSelector: {matchLabels: {mesh: shop}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: VirtualNode
metadata: {name: backend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: backend}}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: backend.shop.svc.cluster.local}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: VirtualService
metadata: {name: backend.shop.svc.cluster.local, namespace: shop}
spec:
  provider: {virtualNode: {virtualNodeRef: {name: backend}}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: VirtualNode
metadata: {name: frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: frontend.shop.svc.cluster.local}}
  backends: [{virtualService: {virtualServiceRef: {name: backend.shop.svc.cluster.local}}}]
`))
	cs := kubernetes.NewForConfigOrDie(env.Config)
	// No kubelet runs here: the test plays it, giving the pods an IP and readiness.
	for i, ip := range []string{"10.1.0.5", "10.1.0.6"} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: fmt.Sprintf("backend-%d", i), Labels: map[string]string{"app": "backend"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "backend"}}},
		}
		created, err := cs.CoreV1().Pods("shop").Create(t.Context(), pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ready := corev1.ConditionTrue
		if i == 1 {
			ready = corev1.ConditionFalse // not ready: no endpoint
		}
		created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}
		if _, err := cs.CoreV1().Pods("shop").UpdateStatus(t.Context(), created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	frontend := connect(t, ctl, "VirtualNode/shop/frontend")
	eventually(t, "frontend's snapshot has backend's ready pod as its one endpoint", func() (string, bool) {
		eps, dns, ok := frontend.endpoints("shop/backend")
		if !ok {
			return "no cluster shop/backend", false
		}
		if dns != nil {
			return "cluster shop/backend still resolves " + dns.Hostname, false
		}
		got := strings.Join(eps, ",")
		return "endpoints " + got, got == "10.1.0.5:8080"
	})
}

// sidecar is a connection to the controller's push stream as a node's sidecar, keeping
// the newest snapshot it was sent.
type sidecar struct {
	mu   sync.Mutex
	last *snapshot.Snapshot
}

// connect follows the snapshots of node until the test ends.
func connect(t *testing.T, ctl *running, node string) *sidecar {
	t.Helper()
	c, err := stream.Dial(t.Context(), ctl.stream, stream.ClientOptions{Node: node, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	sc := &sidecar{}
	go func() {
		_ = c.Run(t.Context(), func(snap *snapshot.Snapshot) error {
			sc.mu.Lock()
			sc.last = snap
			sc.mu.Unlock()
			return nil
		})
	}()
	return sc
}

// endpoints are the endpoint addresses of a cluster in the newest snapshot, in its order,
// and the DNS name it resolves; ok is false while there is no such cluster.
func (sc *sidecar) endpoints(cluster string) (eps []string, dns *snapshot.DNSDiscovery, ok bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.last == nil {
		return nil, nil, false
	}
	for _, cl := range sc.last.Clusters {
		if cl.Name == cluster {
			for _, e := range cl.Endpoints {
				eps = append(eps, e.Address)
			}
			return eps, cl.DNS, true
		}
	}
	return nil, nil, false
}
