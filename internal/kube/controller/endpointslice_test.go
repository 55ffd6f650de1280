package controller_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
)

// Virtual node endpoints in a cluster where kube-controller-manager fills EndpointSlices
// for Services and kwok makes pods ready.
//
// Given backend's pods behind two Services whose port (80, 8080) is not always the pods'
// (8080), and solo's pod behind none; when the sidecar of a node calling both asks for
// its snapshot; then backend's endpoints are its pods at 8080, each once, and solo's pod
// is there through the Pod fallback. When a backend pod stops being ready it drops out;
// when a slice says solo's pod is not ready, the slice wins over the Pod.
func TestEndpointsFromEndpointSlices(t *testing.T) {
	env := kubetest.Start(t, kubetest.Options{CRDs: true, Controllers: true, Kwok: true})
	s := newStore(t, env)
	ctl := startController(t, env, nil)
	cs := kubernetes.NewForConfigOrDie(env.Config)
	ctx := t.Context()

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
metadata: {name: solo, namespace: shop}
spec:
  podSelector: {matchLabels: {app: solo}}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: solo.shop.svc.cluster.local}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: VirtualService
metadata: {name: solo.shop.svc.cluster.local, namespace: shop}
spec:
  provider: {virtualNode: {virtualNodeRef: {name: solo}}}
---
apiVersion: canarymesh.dev/v1alpha1
kind: VirtualNode
metadata: {name: frontend, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  serviceDiscovery: {dns: {hostname: frontend.shop.svc.cluster.local}}
  backends:
  - virtualService: {virtualServiceRef: {name: backend.shop.svc.cluster.local}}
  - virtualService: {virtualServiceRef: {name: solo.shop.svc.cluster.local}}
`))
	deploy := func(app string, replicas int32) {
		t.Helper()
		labels := map[string]string{"app": app}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: "shop", Labels: labels},
			Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: app, Image: app,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}},
		}
		if _, err := cs.AppsV1().Deployments("shop").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deploy("backend", 2)
	deploy("solo", 1)
	// Two Services over backend's pods: one maps port 80 to the pods' 8080, the other
	// serves 8080 as it is.
	for name, port := range map[string]int32{"backend": 80, "backend-direct": 8080} {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "backend"}, Ports: []corev1.ServicePort{
				{Name: "http", Port: port, TargetPort: intstr.FromInt32(8080)}}},
		}
		if _, err := cs.CoreV1().Services("shop").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// readyPods are the names and IP:8080 of the app's pods that are Running with an IP.
	readyPods := func(app string) ([]string, []string, error) {
		pods, err := cs.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return nil, nil, err
		}
		var names, addrs []string
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.DeletionTimestamp == nil {
				names = append(names, p.Name)
				addrs = append(addrs, p.Status.PodIP+":8080")
			}
		}
		slices.Sort(addrs)
		return names, addrs, nil
	}
	// endpointsAre waits until the frontend's snapshot has exactly want as cluster's
	// endpoints, and resolves no DNS name for it.
	frontend := connect(t, ctl, "VirtualNode/shop/frontend")
	endpointsAre := func(what, cluster string, want []string) {
		t.Helper()
		eventually(t, what, func() (string, bool) {
			eps, dns, ok := frontend.endpoints(cluster)
			if !ok {
				return "no cluster " + cluster, false
			}
			if dns != nil {
				return cluster + " still resolves " + dns.Hostname, false
			}
			return fmt.Sprintf("%s has %v, want %v", cluster, eps, want), slices.Equal(eps, want)
		})
	}

	var backendPods, backendAddrs, soloPods, soloAddrs []string
	eventually(t, "backend's and solo's pods running", func() (string, bool) {
		var err error
		if backendPods, backendAddrs, err = readyPods("backend"); err != nil {
			return err.Error(), false
		}
		if soloPods, soloAddrs, err = readyPods("solo"); err != nil {
			return err.Error(), false
		}
		return fmt.Sprintf("backend %v, solo %v", backendAddrs, soloAddrs), len(backendAddrs) == 2 && len(soloAddrs) == 1
	})
	// Both Services' slices list backend's pods at 8080 (the targetPort).
	eventually(t, "both Services' EndpointSlices list backend's pods", func() (string, bool) {
		list, err := cs.DiscoveryV1().EndpointSlices("shop").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err.Error(), false
		}
		var got []string
		for _, es := range list.Items {
			for _, e := range es.Endpoints {
				if e.TargetRef != nil && slices.Contains(backendPods, e.TargetRef.Name) && len(es.Ports) == 1 &&
					es.Ports[0].Port != nil && *es.Ports[0].Port == 8080 {
					got = append(got, es.Labels[discoveryv1.LabelServiceName]+"/"+e.TargetRef.Name)
				}
			}
		}
		return fmt.Sprintf("slice endpoints %v", got), len(got) == 4
	})
	endpointsAre("backend's pods at their port, each once", "shop/backend", backendAddrs)
	endpointsAre("solo's pod through the Pod fallback", "shop/solo", soloAddrs)

	// backend's first pod stops being ready: its slices say so, and it drops out.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := cs.CoreV1().Pods("shop").Get(ctx, backendPods[0], metav1.GetOptions{})
		if err != nil {
			return err
		}
		for i, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
				p.Status.Conditions[i].Status = corev1.ConditionFalse
			}
		}
		_, err = cs.CoreV1().Pods("shop").UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p0, err := cs.CoreV1().Pods("shop").Get(ctx, backendPods[0], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	endpointsAre("the not-ready backend pod gone", "shop/backend",
		slices.DeleteFunc(slices.Clone(backendAddrs), func(a string) bool { return a == p0.Status.PodIP+":8080" }))

	// A slice of solo's own (as a controller other than kube's would write one) says its
	// Ready pod is not ready: the slice is believed. Then it says ready, leaving the
	// condition unset as the API allows.
	manual := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "solo-manual", Namespace: "shop",
			Labels: map[string]string{discoveryv1.LabelManagedBy: "canarymesh-test"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Port: new(int32(8080))}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{strings.TrimSuffix(soloAddrs[0], ":8080")},
			Conditions: discoveryv1.EndpointConditions{Ready: new(false)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: soloPods[0]},
		}},
	}
	if manual, err = cs.DiscoveryV1().EndpointSlices("shop").Create(ctx, manual, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	endpointsAre("solo's pod gone, as its slice says", "shop/solo", nil)
	manual.Endpoints[0].Conditions.Ready = nil
	if _, err := cs.DiscoveryV1().EndpointSlices("shop").Update(ctx, manual, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	endpointsAre("solo's pod back, ready by default", "shop/solo", soloAddrs)
}
