package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DefaultStreamTokenSecret is the Secret the controller keeps the push stream's token in
// when it is given none.
const DefaultStreamTokenSecret = "canarymesh-stream-token"

// StreamTokenKey is the key of the token in that Secret.
const StreamTokenKey = "token"

// EnsureStreamToken returns the token in Secret namespace/name, creating the Secret with
// a random token when it does not exist. Replicas agree through the Secret: the one
// whose create loses reads the winner's.
func EnsureStreamToken(ctx context.Context, cs kubernetes.Interface, namespace, name string) (string, error) {
	if namespace == "" {
		return "", fmt.Errorf("stream token Secret %s: no namespace (give --namespace or set POD_NAMESPACE)", name)
	}
	secrets := cs.CoreV1().Secrets(namespace)
	for range 2 {
		sec, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			tok := string(sec.Data[StreamTokenKey])
			if tok == "" {
				return "", fmt.Errorf("stream token Secret %s/%s has no %q key", namespace, name, StreamTokenKey)
			}
			return tok, nil
		}
		if !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("stream token Secret %s/%s: %w", namespace, name, err)
		}
		buf := make([]byte, 32)
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		tok := hex.EncodeToString(buf)
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "canarymesh"}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{StreamTokenKey: []byte(tok)},
		}, metav1.CreateOptions{})
		if err == nil {
			return tok, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create stream token Secret %s/%s: %w", namespace, name, err)
		}
	}
	return "", fmt.Errorf("stream token Secret %s/%s: created and deleted meanwhile", namespace, name)
}
