package inject

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Config is what every injected pod gets: the proxy's image and how it reaches the
// control plane.
type Config struct {
	// Image runs `canarymesh proxy` (the sidecar); required.
	Image string
	// InitImage runs `canarymesh inject init` (the iptables set-up); Image when empty.
	// It needs the iptables-restore program.
	InitImage string
	// ImagePullPolicy of both containers; the cluster's default when empty.
	ImagePullPolicy corev1.PullPolicy
	// ControlPlane is the push stream's host:port as seen from pods, e.g.
	// canarymesh-controller.canarymesh-system.svc:15010; required.
	ControlPlane string
	// ProxyToken is the push stream's bearer token, given to proxies as a literal
	// CANARYMESH_TOKEN. Prefer ProxyTokenSecret.
	ProxyToken string
	// ProxyTokenSecret names a Secret in the pod's namespace whose key "token" the proxy
	// reads as CANARYMESH_TOKEN.
	ProxyTokenSecret string
	// EgressIgnoredIPs are never intercepted in any pod (App Mesh's cluster-wide
	// setting, typically the instance metadata address).
	EgressIgnoredIPs []string
}

func (c Config) validate() error {
	var errs []error
	if c.Image == "" {
		errs = append(errs, errors.New("the proxy image is required"))
	}
	if c.ControlPlane == "" {
		errs = append(errs, errors.New("the control plane address is required"))
	} else if _, _, err := net.SplitHostPort(c.ControlPlane); err != nil {
		errs = append(errs, fmt.Errorf("control plane address %q: %w", c.ControlPlane, err))
	}
	for _, ip := range c.EgressIgnoredIPs {
		if _, err := parseIPs(ip); err != nil {
			errs = append(errs, fmt.Errorf("egress-ignored IPs: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Input is everything the decision for one pod depends on.
type Input struct {
	// Pod as submitted; it is not modified.
	Pod *corev1.Pod
	// Namespace of the pod (admission requests carry it apart from the object).
	Namespace string
	// NamespaceLabels of the pod's namespace.
	NamespaceLabels map[string]string
	// VirtualNodes to match the pod against; only those in Namespace count.
	VirtualNodes []*v1alpha1.VirtualNode
	// VirtualGateways to match a pod no VirtualNode selects; only those in Namespace count.
	VirtualGateways []*v1alpha1.VirtualGateway
	// Owner is the name of the workload that creates the pod (OwnerName), for the
	// v1beta1 rule; may be empty.
	Owner string
	// Force injects without the namespace's consent (canarymesh inject); a pod
	// annotated disabled is still left alone.
	Force bool
	// VirtualNode, when set, names the node without looking it up (canarymesh inject
	// --virtual-node, or a node not known offline).
	VirtualNode string
}

// Decision says whether and how a pod is injected.
type Decision struct {
	// Inject is false when the pod is left as it is; Reason says why.
	Inject bool
	Reason string
	// VirtualNode is NS/NAME of the node the proxy serves, or VirtualGateway/NS/NAME for
	// a gateway's pod.
	VirtualNode string
	// Patch is what to add, when Inject.
	Patch *Patch
}

// Patch is an injection, applicable to a typed pod (the webhook) and to a YAML
// document's pod template (canarymesh inject) alike.
type Patch struct {
	Annotations map[string]string
	// InitContainers are appended to the pod's: the redirection set-up, then the proxy
	// as a native sidecar (restartPolicy Always), so it starts before the application,
	// and a Job's pod still completes when its application exits.
	InitContainers []corev1.Container
	// AppEnv is added to every container that was already there and does not set the
	// variable itself (explicit-proxy mode).
	AppEnv []corev1.EnvVar
}

// IsInjected reports whether the pod already runs the proxy (as a native sidecar, or as
// an ordinary container written by hand).
func IsInjected(spec *corev1.PodSpec) bool {
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			if c.Name == ProxyContainerName {
				return true
			}
		}
	}
	return false
}

// wanted reads the namespace's consent and the pod's override. The Canarymesh name wins
// over App Mesh's.
func wanted(in Input) (bool, string, error) {
	ann := in.Pod.Annotations
	for _, key := range []string{LabelInject, AppMeshLabelInject} {
		v, ok := ann[key]
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(v)) {
		case Enabled:
			return true, "annotation " + key + "=enabled", nil
		case Disabled:
			return false, "annotation " + key + "=disabled", nil
		}
		return false, "", annotationError(key, v, `expected "enabled" or "disabled"`)
	}
	if in.Force {
		return true, "injection requested", nil
	}
	for _, key := range []string{LabelInject, AppMeshLabelInject} {
		if v, ok := in.NamespaceLabels[key]; ok {
			if strings.EqualFold(v, Enabled) {
				return true, "namespace " + in.Namespace + " is labelled " + key + "=enabled", nil
			}
			return false, "namespace " + in.Namespace + " is labelled " + key + "=" + v, nil
		}
	}
	return false, "namespace " + in.Namespace + " is not labelled " + LabelInject + "=enabled", nil
}

// Decide works out the injection of one pod. An error means the pod must be refused:
// it matches several VirtualNodes, or an annotation is not understood.
func (c Config) Decide(in Input) (*Decision, error) {
	if IsInjected(&in.Pod.Spec) {
		return &Decision{Reason: "already injected"}, nil
	}
	ok, why, err := wanted(in)
	if err != nil || !ok {
		return &Decision{Reason: why}, err
	}
	if in.Pod.Spec.HostNetwork {
		return &Decision{Reason: "the pod uses the host's network"}, nil
	}
	vn, name, err := c.virtualNode(in)
	if err != nil {
		return nil, err
	}
	if name == "" {
		vg, err := matchVirtualGateway(in.Pod, in.Namespace, in.VirtualGateways)
		if err != nil {
			return nil, err
		}
		if vg == nil {
			return &Decision{Reason: "no VirtualNode in " + in.Namespace + " selects the pod's labels"}, nil
		}
		gw := "VirtualGateway/" + vg.Namespace + "/" + vg.Name
		p, err := c.gatewayPatch(in, gw)
		if err != nil {
			return nil, err
		}
		return &Decision{Inject: true, Reason: why, VirtualNode: gw, Patch: p}, nil
	}
	p, err := c.patch(in, vn, name)
	if err != nil {
		return nil, err
	}
	return &Decision{Inject: true, Reason: why, VirtualNode: name, Patch: p}, nil
}

// virtualNode resolves the pod's node: the flag, the annotation, the podSelector match,
// then the v1beta1 rule. It returns the node when known and its NS/NAME.
func (c Config) virtualNode(in Input) (*v1alpha1.VirtualNode, string, error) {
	ns := in.Namespace
	if in.VirtualNode != "" {
		return findVirtualNode(in.VirtualNode, ns, in.VirtualNodes), ns + "/" + in.VirtualNode, nil
	}
	for _, key := range []string{AnnotationVirtualNode, AppMeshAnnotationVirtualNode} {
		v, ok := in.Pod.Annotations[key]
		if !ok {
			continue
		}
		// App Mesh's first injector wrote mesh/MESH/virtualNode/NAME-NAMESPACE style
		// names into this annotation's neighbour variable, never into the annotation:
		// here it is a plain name.
		if v == "" || strings.Contains(v, "/") {
			return nil, "", annotationError(key, v, "expected the name of a VirtualNode in namespace "+ns)
		}
		// A node not created yet is fine: the proxy waits for it, as it would for a
		// node deleted and re-created.
		return findVirtualNode(v, ns, in.VirtualNodes), ns + "/" + v, nil
	}
	vn, err := matchVirtualNode(in.Pod, ns, in.VirtualNodes)
	if err != nil {
		return nil, "", err
	}
	if vn == nil {
		vn = legacyVirtualNode(in.Owner, ns, in.VirtualNodes)
	}
	if vn == nil {
		return nil, "", nil
	}
	return vn, vn.Namespace + "/" + vn.Name, nil
}

// appPorts are the ports whose inbound traffic the proxy takes: the node's listener
// ports, else every container port (App Mesh's first injector's rule).
func appPorts(pod *corev1.Pod, vn *v1alpha1.VirtualNode) []int32 {
	var ports []int32
	if vn != nil {
		for _, l := range vn.Spec.Listeners {
			ports = append(ports, int32(l.PortMapping.Port))
		}
	}
	if len(ports) == 0 {
		for _, ct := range pod.Spec.Containers {
			for _, p := range ct.Ports {
				if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
					ports = append(ports, p.ContainerPort)
				}
			}
		}
	}
	return dedupePorts(ports)
}

// requests are the proxy's resource requests, App Mesh's defaults or the annotations'.
func requests(ann map[string]string) (corev1.ResourceList, error) {
	cpu, mem := DefaultCPURequest, DefaultMemoryRequest
	if v, ok := ann[AnnotationCPURequest]; ok {
		cpu = v
	}
	if v, ok := ann[AnnotationMemoryRequest]; ok {
		mem = v
	}
	out := corev1.ResourceList{}
	for _, q := range []struct {
		key, v string
		name   corev1.ResourceName
	}{{AnnotationCPURequest, cpu, corev1.ResourceCPU}, {AnnotationMemoryRequest, mem, corev1.ResourceMemory}} {
		qty, err := resource.ParseQuantity(q.v)
		if err != nil {
			return nil, annotationError(q.key, q.v, "not a resource quantity")
		}
		out[q.name] = qty
	}
	return out, nil
}

// gatewayPatch injects the proxy of a VirtualGateway: it binds the gateway's listener
// ports on the pod's address itself, so nothing is redirected and no init container runs.
func (c Config) gatewayPatch(in Input, gw string) (*Patch, error) {
	req, err := requests(in.Pod.Annotations)
	if err != nil {
		return nil, err
	}
	r := Redirect{IgnoredUID: DefaultIgnoredUID, ProxyIngressPort: DefaultProxyIngressPort, ProxyEgressPort: DefaultProxyEgressPort}
	ct := c.proxyContainer(gw, ModeExplicit, r, req)
	ct.Args = append(ct.Args, "--gateway-host", "0.0.0.0")
	// A gateway listens on its declared ports, often below 1024.
	ct.SecurityContext.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"}
	return &Patch{Annotations: map[string]string{AnnotationInjected: gw}, InitContainers: []corev1.Container{ct}}, nil
}

func (c Config) patch(in Input, vn *v1alpha1.VirtualNode, node string) (*Patch, error) {
	ann := in.Pod.Annotations
	mode := ModeIPTables
	if v, ok := ann[AnnotationProxyMode]; ok {
		switch m := strings.ToLower(strings.TrimSpace(v)); m {
		case ModeIPTables, ModeExplicit:
			mode = m
		default:
			return nil, annotationError(AnnotationProxyMode, v, `expected "iptables" or "explicit"`)
		}
	}
	r, err := redirectFor(ann, appPorts(in.Pod, vn), c.EgressIgnoredIPs)
	if err != nil {
		return nil, err
	}
	req, err := requests(ann)
	if err != nil {
		return nil, err
	}
	p := &Patch{Annotations: map[string]string{AnnotationInjected: node}}
	if mode == ModeIPTables {
		p.InitContainers = append(p.InitContainers, c.initContainer(r, req))
	} else {
		p.AppEnv = explicitEnv(r)
	}
	p.InitContainers = append(p.InitContainers, c.proxyContainer(node, mode, r, req))
	return p, nil
}

func (c Config) proxyContainer(node, mode string, r Redirect, requests corev1.ResourceList) corev1.Container {
	ingress := "0.0.0.0"
	if mode == ModeExplicit {
		ingress = "127.0.0.1" // nothing is redirected to it; keep it off the pod's address
	}
	uid := r.IgnoredUID
	nonRoot := uid != 0
	ct := corev1.Container{
		Name:            ProxyContainerName,
		Image:           c.Image,
		ImagePullPolicy: c.ImagePullPolicy,
		RestartPolicy:   ptr(corev1.ContainerRestartPolicyAlways),
		Args: []string{"proxy",
			"--node", node,
			"--control-plane", c.ControlPlane,
			"--ingress-listen", net.JoinHostPort(ingress, strconv.Itoa(int(r.ProxyIngressPort))),
			"--egress-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(r.ProxyEgressPort))),
			"--admin-listen", net.JoinHostPort("0.0.0.0", strconv.Itoa(DefaultProxyAdminPort)),
		},
		Ports:     []corev1.ContainerPort{{Name: "proxy-admin", ContainerPort: DefaultProxyAdminPort, Protocol: corev1.ProtocolTCP}},
		Resources: corev1.ResourceRequirements{Requests: requests},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(DefaultProxyAdminPort)}},
			PeriodSeconds:    5,
			FailureThreshold: 3,
		},
		// What the "restricted" Pod Security Standard asks, so an explicit-mode pod can
		// run in a namespace that enforces it.
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                &uid,
			RunAsNonRoot:             &nonRoot,
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	switch {
	case c.ProxyTokenSecret != "":
		ct.Env = append(ct.Env, corev1.EnvVar{Name: "CANARYMESH_TOKEN", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: c.ProxyTokenSecret}, Key: "token"}}})
	case c.ProxyToken != "":
		ct.Env = append(ct.Env, corev1.EnvVar{Name: "CANARYMESH_TOKEN", Value: c.ProxyToken})
	}
	return ct
}

func (c Config) initContainer(r Redirect, requests corev1.ResourceList) corev1.Container {
	img := c.InitImage
	if img == "" {
		img = c.Image
	}
	return corev1.Container{
		Name:            InitContainerName,
		Image:           img,
		ImagePullPolicy: c.ImagePullPolicy,
		Args:            []string{"inject", "init"},
		Env:             r.Env(),
		Resources:       corev1.ResourceRequirements{Requests: requests},
		// NET_ADMIN needs a namespace whose Pod Security level is "privileged".
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:      ptr(int64(0)),
			RunAsNonRoot:   ptr(false),
			Capabilities:   &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}, Drop: []corev1.Capability{"ALL"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

// explicitEnv points HTTP clients at the egress listener; the ignored addresses and the
// pod itself bypass it.
func explicitEnv(r Redirect) []corev1.EnvVar {
	proxy := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(int(r.ProxyEgressPort)))
	noProxy := strings.Join(append([]string{"localhost", "127.0.0.1", "::1"}, r.EgressIgnoredIPs...), ",")
	return []corev1.EnvVar{
		{Name: "HTTP_PROXY", Value: proxy}, {Name: "http_proxy", Value: proxy},
		{Name: "NO_PROXY", Value: noProxy}, {Name: "no_proxy", Value: noProxy},
	}
}

func ptr[T any](v T) *T { return &v }

// Apply adds the patch to a pod.
func (p *Patch) Apply(pod *corev1.Pod) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	for k, v := range p.Annotations {
		pod.Annotations[k] = v
	}
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].Env = addEnv(pod.Spec.Containers[i].Env, p.AppEnv)
	}
	pod.Spec.InitContainers = append(pod.Spec.InitContainers, p.InitContainers...)
}

// addEnv appends the variables the container does not set itself.
func addEnv(have, add []corev1.EnvVar) []corev1.EnvVar {
	for _, e := range add {
		if !hasEnv(have, e.Name) {
			have = append(have, e)
		}
	}
	return have
}

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}
