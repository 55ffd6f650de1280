package controller_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/demoapp"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
	"github.com/canarymesh/canarymesh/internal/loadtest"
	"github.com/canarymesh/canarymesh/internal/metrics/prometheus/promtest"
	"github.com/canarymesh/canarymesh/internal/store"
)

// A Deployment released through `canarymesh controller` as a Kubernetes user would: the
// Canary and its MetricTemplate are CRDs in the API server, the controller runs on the
// API-server store, and kube-controller-manager with kwok roll the Deployments out.
//
// The metrics come from a real source: Debian's Prometheus scrapes a real demo app that
// carries real load, and the Canary's MetricTemplate (provider prometheus) asks it for
// the success rate. kwok's pods run no process, so the app stands beside the cluster for
// the canary's pods; the test makes it fail for the second release. The acceptance
// webhook goes to a real load tester (Flagger's flagger-loadtester API, internal/loadtest).
func TestDeploymentCanaryInCluster(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true, Controllers: true, Kwok: true})
	s := newStore(t, env)
	startController(t, env, nil)
	cs := kubernetes.NewForConfigOrDie(env.Config)
	ctx := t.Context()

	lt := loadtest.NewService(loadtest.ServiceOptions{})
	tester := httptest.NewServer(lt)
	t.Cleanup(func() { tester.Close(); lt.Close() })

	// The canary's app under steady load, healthy until the test swaps in a failing one.
	var app atomic.Pointer[http.Handler]
	setApp := func(version string, errorRate float64) {
		h := demoapp.New(demoapp.Options{Version: version, ErrorRate: errorRate})
		app.Store(&h)
	}
	setApp("3.1.1", 0)
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*app.Load()).ServeHTTP(w, r) }))
	t.Cleanup(appSrv.Close)
	go func() {
		for ctx.Err() == nil {
			if resp, err := http.Get(appSrv.URL + "/"); err == nil {
				resp.Body.Close()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	prom := promtest.Start(t, promtest.Options{Targets: []promtest.Target{{
		Job: "podinfo-canary", Addresses: []string{strings.TrimPrefix(appSrv.URL, "http://")},
		Labels: map[string]string{"kubernetes_namespace": "demo"},
	}}})
	const successRate = `sum(rate(http_requests_total{kubernetes_namespace="{{ namespace }}",job="{{ target }}-canary",status!~"5.."}[{{ interval }}])) / sum(rate(http_requests_total{kubernetes_namespace="{{ namespace }}",job="{{ target }}-canary"}[{{ interval }}])) * 100`
	prom.WaitForData(t, `http_requests_total{job="podinfo-canary"}`, patience)

	apply(t, s, decode(t, `
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {mesh: flaggerdemo}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: Mesh
metadata: {name: flaggerdemo}
spec:
  namespaceSelector: {matchLabels: {mesh: flaggerdemo}}
`))
	two := int32(2)
	labels := map[string]string{"app": "podinfo"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "demo", Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "podinfod", Image: "ghcr.io/stefanprodan/podinfo:3.1.0",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}}}}}}},
	}
	if _, err := cs.AppsV1().Deployments("demo").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	apply(t, s, decode(t, fmt.Sprintf(`
apiVersion: canarymesh.dev/v1alpha1
kind: MetricTemplate
metadata: {name: success-rate, namespace: demo}
spec:
  provider: {type: prometheus, address: %[2]s}
  query: '%[3]s'
---
apiVersion: canarymesh.dev/v1alpha1
kind: Canary
metadata: {name: podinfo, namespace: demo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1s
    threshold: 2
    maxWeight: 50
    stepWeight: 25
    noData: wait
    metrics:
    - name: success-rate
      templateRef: {name: success-rate}
      interval: 10s
      thresholdRange: {min: 99}
    webhooks:
    - {name: acceptance, type: rollout, url: %[1]s/gate/approve}
`, tester.URL, prom.URL, successRate)))

	// Every phase and weight the Canary is stored with, in order.
	var mu sync.Mutex
	var phases []string
	go func() {
		for ctx.Err() == nil {
			if o, err := s.Get(ctx, store.Key{Kind: "Canary", Namespace: "demo", Name: "podinfo"}); err == nil {
				st := o.(*v1alpha1.Canary).Status
				p := fmt.Sprintf("%s/%d", st.Phase, st.CanaryWeight)
				mu.Lock()
				if st.Phase != "" && (len(phases) == 0 || phases[len(phases)-1] != p) {
					phases = append(phases, p)
				}
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	seen := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(phases) }
	phaseIs := func(want v1alpha1.CanaryPhase) func() (string, bool) {
		return func() (string, bool) {
			o, err := s.Get(ctx, store.Key{Kind: "Canary", Namespace: "demo", Name: "podinfo"})
			if err != nil {
				return err.Error(), false
			}
			cd := o.(*v1alpha1.Canary)
			return fmt.Sprintf("phase %s (%s), seen %v", cd.Status.Phase, cd.Status.Message, seen()), cd.Status.Phase == want
		}
	}
	image := func(name string) string {
		d, err := cs.AppsV1().Deployments("demo").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}
	release := func(img string) {
		t.Helper()
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			d, err := cs.AppsV1().Deployments("demo").Get(ctx, "podinfo", metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Spec.Template.Spec.Containers[0].Image = img
			_, err = cs.AppsV1().Deployments("demo").Update(ctx, d, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, "Initialized", phaseIs(v1alpha1.CanaryPhaseInitialized))
	if got := image("podinfo-primary"); got != "ghcr.io/stefanprodan/podinfo:3.1.0" {
		t.Errorf("primary runs %s", got)
	}
	eventually(t, "the target parked", func() (string, bool) {
		d, err := cs.AppsV1().Deployments("demo").Get(ctx, "podinfo", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		return fmt.Sprintf("replicas %d", *d.Spec.Replicas), *d.Spec.Replicas == 0
	})
	vn, err := s.Get(ctx, store.Key{Kind: "VirtualNode", Namespace: "demo", Name: "podinfo-primary"})
	if err != nil {
		t.Fatalf("the primary's virtual node in the cluster: %v", err)
	}
	if sel := vn.(*v1alpha1.VirtualNode).Spec.PodSelector.MatchLabels; sel["app"] != "podinfo-primary" {
		t.Errorf("primary virtual node selects %v", sel)
	}

	release("ghcr.io/stefanprodan/podinfo:3.1.1")
	eventually(t, "3.1.1 Succeeded", phaseIs(v1alpha1.CanaryPhaseSucceeded))
	if got := image("podinfo-primary"); got != "ghcr.io/stefanprodan/podinfo:3.1.1" {
		t.Errorf("after promotion the primary runs %s", got)
	}
	if p := strings.Join(seen(), " "); !strings.Contains(p, "Progressing/25") || !strings.Contains(p, "Progressing/50") {
		t.Errorf("phases %s, want Progressing at 25 and 50", p)
	}

	o, err := s.Get(ctx, store.Key{Kind: "Canary", Namespace: "demo", Name: "podinfo"})
	if err != nil {
		t.Fatal(err)
	}
	if lm := o.(*v1alpha1.Canary).Status.LastMetrics; len(lm) == 0 || !strings.Contains(lm[0].Query, `job="podinfo-canary"`) {
		t.Errorf("last metrics %+v, want the rendered success-rate query", lm)
	}

	// 3.1.2 answers half of its requests with 500: Prometheus sees it and the release fails.
	setApp("3.1.2", 0.5)
	release("ghcr.io/stefanprodan/podinfo:3.1.2")
	eventually(t, "3.1.2 Failed", phaseIs(v1alpha1.CanaryPhaseFailed))
	if got := image("podinfo-primary"); got != "ghcr.io/stefanprodan/podinfo:3.1.1" {
		t.Errorf("after the rollback the primary runs %s, want 3.1.1 still", got)
	}
	// The status is stored before its actions run: the route follows it.
	eventually(t, "all traffic back on the primary", func() (string, bool) {
		vr, err := s.Get(ctx, store.Key{Kind: "VirtualRouter", Namespace: "demo", Name: "podinfo"})
		if err != nil {
			return err.Error(), false
		}
		for _, r := range vr.(*v1alpha1.VirtualRouter).Spec.Routes {
			if r.HTTPRoute == nil {
				continue
			}
			for _, wt := range r.HTTPRoute.Action.WeightedTargets {
				if wt.VirtualNodeRef.Name == "podinfo-canary" && wt.Weight != 0 {
					return fmt.Sprintf("route %s gives the canary %d", r.Name, wt.Weight), false
				}
			}
		}
		return "", true
	})
}
