package controller_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
	"github.com/canarymesh/canarymesh/internal/loadtest"
	"github.com/canarymesh/canarymesh/internal/store"
)

// A Deployment released through `canarymesh controller` as a Kubernetes user would: the
// Canary is a CRD in the API server, the controller runs on the API-server store, and
// kube-controller-manager with kwok roll the Deployments out. The analysis is judged by
// a real load-tester service (Flagger's flagger-loadtester API, internal/loadtest) over
// HTTP: a rollout webhook to its /gate/approve, and a rollback webhook to its
// /rollback/check, which the test opens to make the second release fail. (No process
// runs in kwok's pods, so there is no traffic for built-in metrics to measure.)
func TestDeploymentCanaryInCluster(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true, Controllers: true, Kwok: true})
	s := newStore(t, env)
	startController(t, env, nil)
	cs := kubernetes.NewForConfigOrDie(env.Config)
	ctx := t.Context()

	lt := loadtest.NewService(loadtest.ServiceOptions{})
	tester := httptest.NewServer(lt)
	t.Cleanup(func() { tester.Close(); lt.Close() })

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
    webhooks:
    - {name: rollback-gate, type: rollback, url: %[1]s/rollback/check}
    - {name: acceptance, type: rollout, url: %[1]s/gate/approve}
`, tester.URL)))

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

	resp, err := http.Post(tester.URL+"/rollback/open", "application/json", strings.NewReader(`{"name":"podinfo","namespace":"demo"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	release("ghcr.io/stefanprodan/podinfo:3.1.2")
	eventually(t, "3.1.2 Failed", phaseIs(v1alpha1.CanaryPhaseFailed))
	if got := image("podinfo-primary"); got != "ghcr.io/stefanprodan/podinfo:3.1.1" {
		t.Errorf("after the rollback the primary runs %s, want 3.1.1 still", got)
	}
	vr, err := s.Get(ctx, store.Key{Kind: "VirtualRouter", Namespace: "demo", Name: "podinfo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range vr.(*v1alpha1.VirtualRouter).Spec.Routes {
		if r.HTTPRoute == nil {
			continue
		}
		for _, wt := range r.HTTPRoute.Action.WeightedTargets {
			if wt.VirtualNodeRef.Name == "podinfo-canary" && wt.Weight != 0 {
				t.Errorf("after the rollback route %s gives the canary %d", r.Name, wt.Weight)
			}
		}
	}
}
