package kubetest_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
)

// TestDeploymentBecomesReady starts the whole environment and checks that a Deployment
// gets ready replicas with Pod IPs on the fake Node, that a Service gets their
// endpoints, that the CRDs are served and that
// the kubeconfig file reaches the same API server.
func TestDeploymentBecomesReady(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true, CompatCRDs: true, Controllers: true, Kwok: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cs := kubernetes.NewForConfigOrDie(env.Config)
	replicas := int32(2)
	labels := map[string]string{"app": "podinfo"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "podinfo", Image: "ghcr.io/stefanprodan/podinfo:6.0.0",
					Ports: []corev1.ContainerPort{{ContainerPort: 9898}},
				}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	var got *appsv1.Deployment
	for {
		var err error
		got, err = cs.AppsV1().Deployments("default").Get(ctx, "podinfo", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get deployment: %v", err)
		}
		if got.Status.ReadyReplicas == replicas && got.Status.UpdatedReplicas == replicas {
			break
		}
		select {
		case <-ctx.Done():
			pods, _ := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
			for _, p := range pods.Items {
				t.Logf("pod %s: node %q phase %s conditions %+v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Conditions)
			}
			t.Fatalf("deployment not ready: status %+v", got.Status)
		case <-time.After(200 * time.Millisecond):
		}
	}
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=podinfo"})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	if len(pods.Items) != int(replicas) {
		t.Fatalf("%d pods, want %d", len(pods.Items), replicas)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != kubetest.NodeName || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			t.Errorf("pod %s: node %q phase %s IP %q, want on %s, Running, with an IP",
				p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, kubetest.NodeName)
		}
	}

	// A Service gets an EndpointSlice with the ready Pods' IPs.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 9898}}},
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	for {
		slices, err := cs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=podinfo"})
		if err != nil {
			t.Fatalf("list endpointslices: %v", err)
		}
		ready := 0
		for _, sl := range slices.Items {
			for _, ep := range sl.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready && len(ep.Addresses) > 0 {
					ready++
				}
			}
		}
		if ready == int(replicas) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("service podinfo: %d ready endpoints, want %d", ready, replicas)
		case <-time.After(200 * time.Millisecond):
		}
	}

	// The CRDs of both API groups are served.
	dyn := dynamic.NewForConfigOrDie(env.Config)
	for _, gvr := range []schema.GroupVersionResource{
		{Group: "canarymesh.dev", Version: "v1alpha1", Resource: "canaries"},
		{Group: "flagger.app", Version: "v1beta1", Resource: "canaries"},
		{Group: "appmesh.k8s.aws", Version: "v1beta2", Resource: "virtualnodes"},
	} {
		if _, err := dyn.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list %s: %v", gvr, err)
		}
	}

	// The kubeconfig file is what child processes use.
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Nodes().Get(ctx, kubetest.NodeName, metav1.GetOptions{}); err != nil {
		t.Errorf("get node through the kubeconfig: %v", err)
	}
}

// TestAPIServerOnly starts etcd and the API server alone: Pods can be created in a new
// namespace without the controller manager, and RBAC is enforced for other users.
func TestAPIServerOnly(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "one", Namespace: "apps"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
	if _, err := cs.CoreV1().Pods("apps").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod without the controller manager: %v", err)
	}
	anon := *env.Config
	anon.BearerToken = "not-a-token"
	_, err := kubernetes.NewForConfigOrDie(&anon).CoreV1().Pods("apps").List(ctx, metav1.ListOptions{})
	if err == nil {
		t.Fatal("listing pods with an unknown token succeeded")
	}
}
