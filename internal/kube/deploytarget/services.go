package deploytarget

import (
	"context"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// servicePorts are the ports of the generated Services: spec.service's port, and with
// portDiscovery every other TCP port the target's containers declare.
func servicePorts(cd *v1alpha1.Canary, o *observed) ([]corev1.ServicePort, error) {
	s := &cd.Spec.Service
	if s.Port <= 0 || s.Port > 65535 {
		return nil, fmt.Errorf("canary %s/%s: spec.service.port: %d is not a port", cd.Namespace, cd.Name, s.Port)
	}
	name := s.PortName
	if name == "" {
		name = v1alpha1.DefaultPortName
	}
	target := intstr.FromInt32(s.Port)
	if s.TargetPort != nil {
		target = *s.TargetPort
	}
	main := corev1.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, Port: s.Port, TargetPort: target}
	if s.AppProtocol != "" {
		ap := s.AppProtocol
		main.AppProtocol = &ap
	}
	ports := []corev1.ServicePort{main}
	if !s.PortDiscovery || o == nil {
		return ports, nil
	}
	for _, c := range o.dep.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
				continue
			}
			if p.ContainerPort == s.Port || target.Type == intstr.Int && p.ContainerPort == target.IntVal ||
				target.Type == intstr.String && p.Name == target.StrVal {
				continue
			}
			pn := p.Name
			if pn == "" {
				pn = fmt.Sprintf("tcp-%s-%d", c.Name, p.ContainerPort)
			}
			ports = append(ports, corev1.ServicePort{Name: pn, Protocol: corev1.ProtocolTCP,
				Port: p.ContainerPort, TargetPort: intstr.FromInt32(p.ContainerPort)})
		}
	}
	return ports, nil
}

// desiredServices are the apex, primary and canary Services: the apex and primary
// select the primary's pods, the canary the target's.
func (t *Target) desiredServices(cd *v1alpha1.Canary, o *observed) ([]*corev1.Service, error) {
	ports, err := servicePorts(cd, o)
	if err != nil {
		return nil, err
	}
	apex, primary, canaryName := cd.GetServiceNames()
	pv := PrimaryName(o.value)
	s := &cd.Spec.Service
	mk := func(name, value string, meta *v1alpha1.CustomMetadata) *corev1.Service {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cd.Namespace,
				Labels: map[string]string{o.key: name}},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeClusterIP,
				Selector: map[string]string{o.key: value},
				Ports:    ports,
			},
		}
		if meta != nil {
			maps.Copy(svc.Labels, meta.Labels)
			svc.Annotations = maps.Clone(meta.Annotations)
		}
		if s.Headless {
			svc.Spec.ClusterIP = corev1.ClusterIPNone
		}
		if s.TrafficDistribution != "" {
			td := s.TrafficDistribution
			svc.Spec.TrafficDistribution = &td
		}
		t.own(cd, svc)
		return svc
	}
	return []*corev1.Service{
		mk(apex, pv, s.Apex),
		mk(primary, pv, s.Primary),
		mk(canaryName, o.value, s.Canary),
	}, nil
}

// ensureService creates a Service, or brings an existing one in line: an apex Service
// the user made before is taken over, as Flagger does, its cluster IP kept.
func (t *Target) ensureService(ctx context.Context, cd *v1alpha1.Canary, want *corev1.Service) error {
	svcs := t.Client.CoreV1().Services(cd.Namespace)
	err := retry.RetryOnConflict(writeBackoff, func() error {
		cur, err := svcs.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = svcs.Create(ctx, want, metav1.CreateOptions{})
			if err == nil {
				t.log().InfoContext(ctx, "service created", "canary", cd.Namespace+"/"+cd.Name, "service", want.Name)
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := checkOwner(cd, "service", cur); err != nil {
			return err
		}
		next := cur.DeepCopy()
		if next.Labels == nil {
			next.Labels = map[string]string{}
		}
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		maps.Copy(next.Labels, want.Labels)
		maps.Copy(next.Annotations, want.Annotations)
		if t.OwnerReferences {
			next.OwnerReferences = setOwner(cur.OwnerReferences, cd)
		}
		next.Spec.Selector = want.Spec.Selector
		next.Spec.Ports = mergePorts(cur.Spec.Ports, want.Spec.Ports)
		if want.Spec.TrafficDistribution != nil {
			next.Spec.TrafficDistribution = want.Spec.TrafficDistribution
		}
		if equality.Semantic.DeepEqual(cur, next) {
			return nil
		}
		_, err = svcs.Update(ctx, next, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("service %s/%s: %w", cd.Namespace, want.Name, err)
	}
	return nil
}

// mergePorts is want with the node ports the API server gave the same ports before.
func mergePorts(cur, want []corev1.ServicePort) []corev1.ServicePort {
	out := make([]corev1.ServicePort, len(want))
	for i, w := range want {
		for _, c := range cur {
			if c.Port == w.Port && strings.EqualFold(string(c.Protocol), string(w.Protocol)) {
				w.NodePort = c.NodePort
			}
		}
		out[i] = w
	}
	return out
}
