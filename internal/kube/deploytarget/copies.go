package deploytarget

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// primaryConfigMap is the primary copy of a ConfigMap.
func primaryConfigMap(src *corev1.ConfigMap) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: PrimaryName(src.Name), Namespace: src.Namespace,
			Labels: maps.Clone(src.Labels), Annotations: primaryAnnotations(src.Annotations)},
		Data:       maps.Clone(src.Data),
		BinaryData: maps.Clone(src.BinaryData),
	}
}

// primarySecret is the primary copy of a Secret.
func primarySecret(src *corev1.Secret) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: PrimaryName(src.Name), Namespace: src.Namespace,
			Labels: maps.Clone(src.Labels), Annotations: primaryAnnotations(src.Annotations)},
		Type: src.Type,
		Data: maps.Clone(src.Data),
	}
}

// copyConfigs writes the primary copy of every tracked ConfigMap and Secret, creating
// or updating it.
func (t *Target) copyConfigs(ctx context.Context, cd *v1alpha1.Canary, tracked configSet) error {
	for ref, tc := range tracked {
		var err error
		switch {
		case tc.ConfigMap != nil:
			err = t.copyConfigMap(ctx, cd, primaryConfigMap(tc.ConfigMap))
		case tc.Secret != nil:
			err = t.copySecret(ctx, cd, primarySecret(tc.Secret))
		}
		if err != nil {
			return fmt.Errorf("copy %s %s/%s to %s: %w", ref.Kind, cd.Namespace, ref.Name, PrimaryName(ref.Name), err)
		}
	}
	return nil
}

func (t *Target) copyConfigMap(ctx context.Context, cd *v1alpha1.Canary, want *corev1.ConfigMap) error {
	t.own(cd, want)
	cms := t.Client.CoreV1().ConfigMaps(want.Namespace)
	return retry.RetryOnConflict(writeBackoff, func() error {
		cur, err := cms.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = cms.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if err := checkOwner(cd, "ConfigMap", cur); err != nil {
			return err
		}
		next := cur.DeepCopy()
		next.Labels, next.Annotations = want.Labels, want.Annotations
		next.Data, next.BinaryData = want.Data, want.BinaryData
		if t.OwnerReferences {
			next.OwnerReferences = setOwner(cur.OwnerReferences, cd)
		}
		if equality.Semantic.DeepEqual(cur, next) {
			return nil
		}
		_, err = cms.Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
}

func (t *Target) copySecret(ctx context.Context, cd *v1alpha1.Canary, want *corev1.Secret) error {
	t.own(cd, want)
	secrets := t.Client.CoreV1().Secrets(want.Namespace)
	return retry.RetryOnConflict(writeBackoff, func() error {
		cur, err := secrets.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = secrets.Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if err := checkOwner(cd, "Secret", cur); err != nil {
			return err
		}
		if cur.Type != want.Type {
			return fmt.Errorf("secret %s/%s has type %s, not %s as its source", cur.Namespace, cur.Name, cur.Type, want.Type)
		}
		next := cur.DeepCopy()
		next.Labels, next.Annotations, next.Data = want.Labels, want.Annotations, want.Data
		if t.OwnerReferences {
			next.OwnerReferences = setOwner(cur.OwnerReferences, cd)
		}
		if equality.Semantic.DeepEqual(cur, next) {
			return nil
		}
		_, err = secrets.Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
}
