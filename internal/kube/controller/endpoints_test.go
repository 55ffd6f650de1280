package controller

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

func pod(name, ip string, ready bool) corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name},
		Status:     corev1.PodStatus{PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
}

func terminatingPod(name, ip string) corev1.Pod {
	p := pod(name, ip, true)
	p.DeletionTimestamp = &metav1.Time{}
	return p
}

// sliceEndpoint is an endpoint of the Pod name at addrs, with the ready and terminating
// conditions given (nil: unset).
func sliceEndpoint(name string, ready, terminating *bool, addrs ...string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  addrs,
		Conditions: discoveryv1.EndpointConditions{Ready: ready, Terminating: terminating},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: name},
	}
}

func slice(typ discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) discoveryv1.EndpointSlice {
	return discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}, AddressType: typ, Ports: ports, Endpoints: eps}
}

func tcp(port int32) []discoveryv1.EndpointPort {
	return []discoveryv1.EndpointPort{{Port: &port}}
}

func TestPodEndpoints(t *testing.T) {
	yes, no := new(true), new(false)
	v4, v6 := discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6
	udp := corev1.ProtocolUDP
	cases := []struct {
		name   string
		pods   []corev1.Pod
		slices []discoveryv1.EndpointSlice
		want   []string // addresses, all at port 8080
	}{{
		name:   "a ready slice endpoint",
		pods:   []corev1.Pod{pod("a", "10.0.0.1", true)},
		slices: []discoveryv1.EndpointSlice{slice(v4, tcp(8080), sliceEndpoint("a", yes, no, "10.0.0.1"))},
		want:   []string{"10.0.0.1"},
	}, {
		name:   "unset ready counts as ready",
		pods:   []corev1.Pod{pod("a", "10.0.0.1", true)},
		slices: []discoveryv1.EndpointSlice{slice(v4, tcp(8080), sliceEndpoint("a", nil, nil, "10.0.0.1"))},
		want:   []string{"10.0.0.1"},
	}, {
		name:   "the slice says not ready though the Pod says ready",
		pods:   []corev1.Pod{pod("a", "10.0.0.1", true)},
		slices: []discoveryv1.EndpointSlice{slice(v4, tcp(8080), sliceEndpoint("a", no, no, "10.0.0.1"))},
		want:   []string{},
	}, {
		name:   "the slice says ready though the Pod says not yet",
		pods:   []corev1.Pod{pod("a", "10.0.0.1", false)},
		slices: []discoveryv1.EndpointSlice{slice(v4, tcp(8080), sliceEndpoint("a", yes, no, "10.0.0.1"))},
		want:   []string{"10.0.0.1"},
	}, {
		name:   "terminating and still ready (publishNotReadyAddresses)",
		pods:   []corev1.Pod{pod("a", "10.0.0.1", true)},
		slices: []discoveryv1.EndpointSlice{slice(v4, tcp(8080), sliceEndpoint("a", yes, yes, "10.0.0.1"))},
		want:   []string{},
	}, {
		name:   "the first of an endpoint's addresses",
		pods:   []corev1.Pod{pod("a", "10.0.0.1", true)},
		slices: []discoveryv1.EndpointSlice{slice(v4, tcp(8080), sliceEndpoint("a", yes, nil, "10.0.0.1", "10.0.0.9"))},
		want:   []string{"10.0.0.1"},
	}, {
		name: "Pods in no slice: ready ones with an IP",
		pods: []corev1.Pod{pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", false), pod("c", "", true), terminatingPod("d", "10.0.0.4")},
		want: []string{"10.0.0.1"},
	}, {
		name: "some Pods in a slice, others not",
		pods: []corev1.Pod{pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", true)},
		slices: []discoveryv1.EndpointSlice{slice(v4, tcp(8080),
			sliceEndpoint("a", yes, nil, "10.0.0.1"))},
		want: []string{"10.0.0.1", "10.0.0.2"},
	}, {
		name: "a slice at the Service's port, not the Pod's, says nothing about the listener",
		pods: []corev1.Pod{pod("a", "10.0.0.1", true)},
		slices: []discoveryv1.EndpointSlice{slice(v4, tcp(80), sliceEndpoint("a", no, nil, "10.0.0.1")),
			slice(v4, []discoveryv1.EndpointPort{{Port: new(int32(8080)), Protocol: &udp}}, sliceEndpoint("a", no, nil, "10.0.0.1"))},
		want: []string{"10.0.0.1"},
	}, {
		name: "a slice with several ports, the listener's among them",
		pods: []corev1.Pod{pod("a", "10.0.0.1", true)},
		slices: []discoveryv1.EndpointSlice{slice(v4, append(tcp(9090), tcp(8080)...),
			sliceEndpoint("a", yes, nil, "10.0.0.1"))},
		want: []string{"10.0.0.1"},
	}, {
		name: "two Services over the same Pods",
		pods: []corev1.Pod{pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", true)},
		slices: []discoveryv1.EndpointSlice{
			slice(v4, tcp(8080), sliceEndpoint("b", yes, nil, "10.0.0.2"), sliceEndpoint("a", yes, nil, "10.0.0.1")),
			slice(v4, tcp(8080), sliceEndpoint("a", yes, nil, "10.0.0.1"), sliceEndpoint("b", yes, nil, "10.0.0.2")),
		},
		want: []string{"10.0.0.1", "10.0.0.2"},
	}, {
		name: "endpoints of Pods the selector did not match, or of no Pod",
		pods: []corev1.Pod{pod("a", "10.0.0.1", true)},
		slices: []discoveryv1.EndpointSlice{slice(v4, tcp(8080),
			sliceEndpoint("other", yes, nil, "10.0.0.7"),
			discoveryv1.Endpoint{Addresses: []string{"10.0.0.8"}},
			discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, TargetRef: &corev1.ObjectReference{Kind: "Node", Name: "a"}},
		)},
		want: []string{"10.0.0.1"},
	}, {
		name: "dual stack: the family of the Pod's IP",
		pods: []corev1.Pod{pod("a", "10.0.0.1", true), pod("b", "fd00::2", true)},
		slices: []discoveryv1.EndpointSlice{
			slice(v4, tcp(8080), sliceEndpoint("a", yes, nil, "10.0.0.1"), sliceEndpoint("b", yes, nil, "10.0.0.2")),
			slice(v6, tcp(8080), sliceEndpoint("a", yes, nil, "fd00::1"), sliceEndpoint("b", yes, nil, "fd00::2")),
		},
		want: []string{"10.0.0.1", "fd00::2"},
	}, {
		name:   "a single-stack slice of the other family",
		pods:   []corev1.Pod{pod("a", "10.0.0.1", true)},
		slices: []discoveryv1.EndpointSlice{slice(v6, tcp(8080), sliceEndpoint("a", yes, nil, "fd00::1"))},
		want:   []string{"fd00::1"},
	}, {
		name:   "FQDN slices are not Pod addresses",
		pods:   []corev1.Pod{pod("a", "10.0.0.1", true)},
		slices: []discoveryv1.EndpointSlice{slice(discoveryv1.AddressTypeFQDN, tcp(8080), sliceEndpoint("a", no, nil, "a.example"))},
		want:   []string{"10.0.0.1"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := podEndpoints(c.pods, c.slices, 8080)
			want := make([]v1alpha1.StaticEndpoint, 0, len(c.want))
			for _, a := range c.want {
				want = append(want, v1alpha1.StaticEndpoint{Address: a, Port: 8080})
			}
			if got == nil || !reflect.DeepEqual(got, want) {
				t.Errorf("podEndpoints = %#v, want %v", got, want)
			}
		})
	}
}
