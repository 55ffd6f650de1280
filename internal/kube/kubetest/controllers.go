package kubetest

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/canarymesh/canarymesh/deploy"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
)

// managerControllers are the controllers of kube-controller-manager that tests rely on:
// Deployments → ReplicaSets → Pods, Services → EndpointSlices (and legacy Endpoints),
// namespaces get their default ServiceAccount and root CA ConfigMap, owners' deletion
// cascades, and namespaces can be deleted.
var managerControllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"endpointslice-controller",
	"endpoints-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
	"garbage-collector-controller",
	"namespace-controller",
}

func (e *Env) startControllerManager(ctx context.Context, bin string) error {
	p, err := e.run("kube-controller-manager", bin,
		"--kubeconfig="+e.Kubeconfig,
		"--controllers="+strings.Join(managerControllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file="+e.path("sa.key"),
		"--root-ca-file="+e.path("apiserver-certs", "apiserver.crt"),
		"--concurrent-deployment-syncs=5",
		"--concurrent-replicaset-syncs=5",
	)
	if err != nil {
		return err
	}
	// Ready once the serviceaccount controller has given "default" its ServiceAccount:
	// from then on Pods can be created in namespaces (ServiceAccount admission is on).
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return fmt.Errorf("client for the API server: %w", err)
	}
	return waitFor(ctx, p, "the default ServiceAccount", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(corev1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

func (e *Env) installCRDs(ctx context.Context, o Options) error {
	c, err := apiextensionsclient.NewForConfig(e.Config)
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	if o.CRDs {
		crds, err := deploy.CRDs()
		if err != nil {
			return err
		}
		if err := deploy.Install(ctx, c, crds); err != nil {
			return err
		}
	}
	if o.CompatCRDs {
		crds, err := deploy.CompatCRDs()
		if err != nil {
			return err
		}
		if err := deploy.Install(ctx, c, crds); err != nil {
			return err
		}
	}
	return nil
}
