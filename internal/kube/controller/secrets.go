package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/canarymesh/canarymesh/internal/metrics"
)

// secrets gives metric templates the Secrets their secretRef names, from the cluster.
type secrets struct{ cs kubernetes.Interface }

var _ metrics.SecretSource = secrets{}

// Secret returns the data of Secret namespace/name.
func (s secrets) Secret(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	sec, err := s.cs.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, metrics.ErrSecretNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	return sec.Data, nil
}
