package deploytarget

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// kindHPA is the autoscalerRef kind this target copies.
const kindHPA = "HorizontalPodAutoscaler"

// primaryHPASpec is the target's HPA spec aimed at the primary, with the Canary's
// primaryScalerReplicas bounds when set.
func primaryHPASpec(cd *v1alpha1.Canary, src *autoscalingv2.HorizontalPodAutoscaler) autoscalingv2.HorizontalPodAutoscalerSpec {
	spec := *src.Spec.DeepCopy()
	spec.ScaleTargetRef.Name = PrimaryName(cd.Spec.TargetRef.Name)
	if r := cd.Spec.AutoscalerRef.PrimaryScalerReplicas; r != nil {
		if r.MinReplicas != nil {
			m := *r.MinReplicas
			spec.MinReplicas = &m
		}
		if r.MaxReplicas != nil {
			spec.MaxReplicas = *r.MaxReplicas
		}
	}
	return spec
}

// autoscaler reads the HPA spec.autoscalerRef names; nil without one.
func (t *Target) autoscaler(ctx context.Context, cd *v1alpha1.Canary) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	ref := cd.Spec.AutoscalerRef
	if ref == nil {
		return nil, nil
	}
	if ref.Kind != "" && ref.Kind != kindHPA {
		return nil, fmt.Errorf("canary %s/%s: spec.autoscalerRef.kind %q is not supported: only %s is",
			cd.Namespace, cd.Name, ref.Kind, kindHPA)
	}
	src, err := t.Client.AutoscalingV2().HorizontalPodAutoscalers(cd.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("canary %s/%s: spec.autoscalerRef: HorizontalPodAutoscaler %s: %w", cd.Namespace, cd.Name, ref.Name, err)
	}
	return src, nil
}

// ensureHPA creates <autoscaler>-primary as a copy of src (autoscaling/v2) aimed at the
// primary, and with update also brings an existing one in line, as a promotion does.
func (t *Target) ensureHPA(ctx context.Context, cd *v1alpha1.Canary, src *autoscalingv2.HorizontalPodAutoscaler, update bool) error {
	if src == nil {
		return nil
	}
	hpas := t.Client.AutoscalingV2().HorizontalPodAutoscalers(cd.Namespace)
	spec := primaryHPASpec(cd, src)
	name := PrimaryName(src.Name)
	err := retry.RetryOnConflict(writeBackoff, func() error {
		cur, err := hpas.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			h := &autoscalingv2.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cd.Namespace, Labels: src.Labels},
				Spec:       spec,
			}
			t.own(cd, h)
			_, err = hpas.Create(ctx, h, metav1.CreateOptions{})
			if err == nil {
				t.log().InfoContext(ctx, "primary autoscaler created", "canary", cd.Namespace+"/"+cd.Name, "hpa", name)
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := checkOwner(cd, "HorizontalPodAutoscaler", cur); err != nil {
			return err
		}
		if !update || equality.Semantic.DeepEqual(cur.Spec, spec) {
			return nil
		}
		cur.Spec = spec
		_, err = hpas.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("HorizontalPodAutoscaler %s/%s: %w", cd.Namespace, name, err)
	}
	return nil
}
