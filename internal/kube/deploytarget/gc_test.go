package deploytarget_test

import (
	"context"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/kube/deploytarget"
)

// testGarbageCollected stores the Canary in the API server (the CRD) and lets the
// Target own what it makes: deleting the Canary has Kubernetes' garbage collector remove
// the primary objects, as with Flagger.
func testGarbageCollected(t *testing.T, c *cluster) {
	const ns = "owned"
	ctx := context.Background()
	c.namespace(t, ns)
	c.app(t, ns, 1)
	dyn, err := dynamic.NewForConfig(c.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	canaries := dyn.Resource(v1alpha1.GroupVersion.WithResource("canaries")).Namespace(ns)
	cd := newCanary(ns)
	cd.UID = ""
	cd.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cd)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	unstructured.RemoveNestedField(u.Object, "status")
	created, err := canaries.Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Canary in the API server: %v", err)
	}
	cd.UID = created.GetUID()

	tg := &deploytarget.Target{Client: c.cs, OwnerReferences: true}
	if err := tg.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	p := c.deployment(t, ns, "podinfo-primary")
	if refs := p.OwnerReferences; len(refs) != 1 || refs[0].UID != cd.UID || refs[0].Kind != "Canary" || refs[0].Controller == nil || !*refs[0].Controller {
		t.Fatalf("primary owner references = %+v", refs)
	}
	// The garbage collector leaves owned objects alone while their owner exists.
	c.deployment(t, ns, "podinfo-primary")

	if err := canaries.Delete(ctx, "podinfo", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	checks := map[string]func() error{
		"deployment podinfo-primary": func() error {
			_, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "podinfo-primary", metav1.GetOptions{})
			return err
		},
		"hpa podinfo-primary": func() error {
			_, err := c.cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "podinfo-primary", metav1.GetOptions{})
			return err
		},
		"configmap podinfo-config-primary": func() error {
			_, err := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "podinfo-config-primary", metav1.GetOptions{})
			return err
		},
		"service podinfo-canary": func() error {
			_, err := c.cs.CoreV1().Services(ns).Get(ctx, "podinfo-canary", metav1.GetOptions{})
			return err
		},
	}
	for what, get := range checks {
		eventually(t, what+" collected", func() (bool, string) {
			err := get()
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
	}
	if _, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "podinfo", metav1.GetOptions{}); err != nil {
		t.Errorf("the target went with the Canary: %v", err)
	}
}
