package inject

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

var testConfig = Config{Image: "canarymesh:test", ControlPlane: "cp.canarymesh-system.svc:15010", ProxyTokenSecret: "canarymesh-proxy"}

func vnode(ns, name string, sel map[string]string, ports ...int64) *v1alpha1.VirtualNode {
	vn := &v1alpha1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if sel != nil {
		vn.Spec.PodSelector = &metav1.LabelSelector{MatchLabels: sel}
	}
	for _, p := range ports {
		vn.Spec.Listeners = append(vn.Spec.Listeners, v1alpha1.Listener{PortMapping: v1alpha1.PortMapping{Port: v1alpha1.PortNumber(p), Protocol: "http"}})
	}
	return vn
}

func testPod(labels, ann map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "podinfo-7d9f-", Labels: labels, Annotations: ann},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "podinfo",
			Ports: []corev1.ContainerPort{{ContainerPort: 9898}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}}},
	}
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func TestDecide(t *testing.T) {
	enabled := map[string]string{LabelInject: Enabled}
	appmesh := map[string]string{AppMeshLabelInject: Enabled}
	app := map[string]string{"app": "podinfo"}
	nodes := []*v1alpha1.VirtualNode{
		vnode("demo", "podinfo", app, 9898),
		vnode("demo", "other", map[string]string{"app": "other"}, 8080),
		vnode("elsewhere", "podinfo-too", app, 1234), // another namespace never matches
	}
	injected := testPod(app, nil)
	testConfig.mustDecide(t, Input{Pod: injected, Namespace: "demo", NamespaceLabels: enabled, VirtualNodes: nodes}).Patch.Apply(injected)

	tests := []struct {
		name      string
		pod       *corev1.Pod
		nsLabels  map[string]string
		nodes     []*v1alpha1.VirtualNode
		owner     string
		inject    bool
		node      string
		reason    string // in Reason when not injected
		appPorts  string
		ignPorts  string
		err       string
		explicit  bool
		ignoreUID string
	}{
		{name: "labelled namespace", pod: testPod(app, nil), nsLabels: enabled, nodes: nodes, inject: true, node: "demo/podinfo", appPorts: "9898", ignPorts: "22", ignoreUID: "1337"},
		{name: "App Mesh label", pod: testPod(app, nil), nsLabels: appmesh, nodes: nodes, inject: true, node: "demo/podinfo", appPorts: "9898"},
		{name: "unlabelled namespace", pod: testPod(app, nil), nodes: nodes, reason: "not labelled"},
		{name: "namespace disabled", pod: testPod(app, nil), nsLabels: map[string]string{LabelInject: Disabled}, nodes: nodes, reason: "canarymesh.dev/inject=disabled"},
		{name: "pod disables", pod: testPod(app, map[string]string{LabelInject: Disabled}), nsLabels: enabled, nodes: nodes, reason: "annotation canarymesh.dev/inject=disabled"},
		{name: "pod disables the App Mesh way", pod: testPod(app, map[string]string{AppMeshLabelInject: Disabled}), nsLabels: appmesh, nodes: nodes, reason: "disabled"},
		{name: "pod enables in unlabelled namespace", pod: testPod(app, map[string]string{AppMeshLabelInject: Enabled}), nodes: nodes, inject: true, node: "demo/podinfo"},
		{name: "Canarymesh annotation wins", pod: testPod(app, map[string]string{LabelInject: Disabled, AppMeshLabelInject: Enabled}), nsLabels: enabled, nodes: nodes, reason: "disabled"},
		{name: "bad inject annotation", pod: testPod(app, map[string]string{LabelInject: "yes"}), nsLabels: enabled, nodes: nodes, err: `metadata.annotations[canarymesh.dev/inject]: "yes": expected "enabled" or "disabled"`},
		{name: "already injected", pod: injected, nsLabels: enabled, nodes: nodes, reason: "already injected"},
		{name: "no matching node", pod: testPod(map[string]string{"app": "nobody"}, nil), nsLabels: enabled, nodes: nodes, reason: "no VirtualNode in demo selects"},
		{name: "two matching nodes", pod: testPod(app, nil), nsLabels: enabled,
			nodes: append([]*v1alpha1.VirtualNode{vnode("demo", "podinfo-canary", app, 9898)}, nodes...),
			err:   "found multiple matching VirtualNodes for pod demo/podinfo-7d9f-*: demo/podinfo,demo/podinfo-canary"},
		{name: "annotation names the node", pod: testPod(app, map[string]string{AppMeshAnnotationVirtualNode: "other"}), nsLabels: enabled,
			nodes: append([]*v1alpha1.VirtualNode{vnode("demo", "podinfo-canary", app)}, nodes...), inject: true, node: "demo/other", appPorts: "8080"},
		{name: "annotation names a node not created yet", pod: testPod(nil, map[string]string{AnnotationVirtualNode: "later"}), nsLabels: enabled, nodes: nodes, inject: true, node: "demo/later", appPorts: "9898"},
		{name: "annotation with a path", pod: testPod(nil, map[string]string{AnnotationVirtualNode: "mesh/x"}), nsLabels: enabled, nodes: nodes, err: "expected the name of a VirtualNode"},
		{name: "v1beta1 node named as the workload", pod: testPod(nil, nil), nsLabels: enabled, owner: "hello-v2",
			nodes: []*v1alpha1.VirtualNode{vnode("demo", "hello-v2", nil, 8000)}, inject: true, node: "demo/hello-v2", appPorts: "8000"},
		{name: "ports annotation", pod: testPod(app, map[string]string{AnnotationPorts: "444, 8080"}), nsLabels: enabled, nodes: nodes, inject: true, node: "demo/podinfo", appPorts: "444,8080"},
		{name: "no listener: container TCP ports", pod: testPod(app, nil), nsLabels: enabled, nodes: []*v1alpha1.VirtualNode{vnode("demo", "podinfo", app)}, inject: true, node: "demo/podinfo", appPorts: "9898"},
		{name: "egress tuning", pod: testPod(app, map[string]string{AnnotationEgressIgnoredPorts: "22,3306", AnnotationEgressIgnoredIPs: "169.254.169.254,10.0.0.0/8", AnnotationIgnoredUID: "2000"}),
			nsLabels: enabled, nodes: nodes, inject: true, node: "demo/podinfo", appPorts: "9898", ignPorts: "22,3306", ignoreUID: "2000"},
		{name: "bad ports annotation", pod: testPod(app, map[string]string{AnnotationPorts: "http"}), nsLabels: enabled, nodes: nodes,
			err: `metadata.annotations[appmesh.k8s.aws/ports]: "http": port "http" is not a number from 1 to 65535`},
		{name: "bad ignored IP", pod: testPod(app, map[string]string{AnnotationEgressIgnoredIPs: "10.0.0.300"}), nsLabels: enabled, nodes: nodes,
			err: `appmesh.k8s.aws/egressIgnoredIPs]: "10.0.0.300": "10.0.0.300" is neither`},
		{name: "explicit mode", pod: testPod(app, map[string]string{AnnotationProxyMode: ModeExplicit}), nsLabels: enabled, nodes: nodes, inject: true, node: "demo/podinfo", explicit: true},
		{name: "bad mode", pod: testPod(app, map[string]string{AnnotationProxyMode: "ebpf"}), nsLabels: enabled, nodes: nodes, err: `expected "iptables" or "explicit"`},
		{name: "host network", pod: func() *corev1.Pod { p := testPod(app, nil); p.Spec.HostNetwork = true; return p }(), nsLabels: enabled, nodes: nodes, reason: "host's network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.pod.DeepCopy()
			d, err := testConfig.Decide(Input{Pod: tt.pod, Namespace: "demo", NamespaceLabels: tt.nsLabels, VirtualNodes: tt.nodes, Owner: tt.owner})
			if !reflect.DeepEqual(before, tt.pod) {
				t.Fatal("Decide modified its input")
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Inject != tt.inject {
				t.Fatalf("Inject = %v (%s), want %v", d.Inject, d.Reason, tt.inject)
			}
			if !tt.inject {
				if !strings.Contains(d.Reason, tt.reason) {
					t.Fatalf("Reason = %q, want it to contain %q", d.Reason, tt.reason)
				}
				return
			}
			if d.VirtualNode != tt.node {
				t.Fatalf("VirtualNode = %q, want %q", d.VirtualNode, tt.node)
			}
			pod := tt.pod.DeepCopy()
			d.Patch.Apply(pod)
			checkInjected(t, pod, tt.node, tt.explicit)
			if tt.explicit {
				return
			}
			env := envOf(pod.Spec.InitContainers[0])
			for k, want := range map[string]string{EnvAppPorts: tt.appPorts, EnvEgressIgnoredPorts: tt.ignPorts, EnvIgnoreUID: tt.ignoreUID} {
				if want != "" && env[k] != want {
					t.Errorf("%s = %q, want %q", k, env[k], want)
				}
			}
			if uid := *pod.Spec.InitContainers[1].SecurityContext.RunAsUser; tt.ignoreUID != "" && uid != mustInt(t, tt.ignoreUID) {
				t.Errorf("proxy runs as %d, want the ignored UID %s", uid, tt.ignoreUID)
			}
			again, err := testConfig.Decide(Input{Pod: pod, Namespace: "demo", NamespaceLabels: tt.nsLabels, VirtualNodes: tt.nodes})
			if err != nil || again.Inject {
				t.Fatalf("second Decide on the injected pod: %+v, %v; want it left alone", again, err)
			}
		})
	}
}

func (c Config) mustDecide(t *testing.T, in Input) *Decision {
	t.Helper()
	d, err := c.Decide(in)
	if err != nil || !d.Inject {
		t.Fatalf("Decide: %+v, %v", d, err)
	}
	return d
}

func mustInt(t *testing.T, s string) int64 {
	n, err := parseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkInjected checks the shape of an injected pod: the application alone in
// containers; the init container (iptables mode) then the proxy as a native sidecar.
func checkInjected(t *testing.T, pod *corev1.Pod, node string, explicit bool) {
	t.Helper()
	checkInjectedAs(t, pod, node, explicit, testConfig)
}

// checkInjectedAs is checkInjected for pods injected with another Config.
func checkInjectedAs(t *testing.T, pod *corev1.Pod, node string, explicit bool, cfg Config) {
	t.Helper()
	want := []string{InitContainerName, ProxyContainerName}
	if explicit {
		want = want[1:]
	}
	if len(pod.Spec.Containers) != 1 || strings.Join(names(pod.Spec.InitContainers), ",") != strings.Join(want, ",") {
		t.Fatalf("containers %v, init containers %v; want the app, and %v", names(pod.Spec.Containers), names(pod.Spec.InitContainers), want)
	}
	proxy := pod.Spec.InitContainers[len(want)-1]
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("the proxy is not a native sidecar (restartPolicy Always)")
	}
	args := strings.Join(proxy.Args, " ")
	if !strings.HasPrefix(args, "proxy --node "+node+" --control-plane "+cfg.ControlPlane) {
		t.Errorf("proxy args = %q", args)
	}
	if proxy.Env[0].Name != "CANARYMESH_TOKEN" || proxy.Env[0].ValueFrom.SecretKeyRef.Name != cfg.ProxyTokenSecret {
		t.Errorf("proxy env = %+v, want the token from the Secret", proxy.Env)
	}
	if pod.Annotations[AnnotationInjected] != node {
		t.Errorf("annotation %s = %q, want %q", AnnotationInjected, pod.Annotations[AnnotationInjected], node)
	}
	app := envOf(pod.Spec.Containers[0])
	if explicit {
		if app["HTTP_PROXY"] != "http://127.0.0.1:15001" || !strings.HasPrefix(app["NO_PROXY"], "localhost,127.0.0.1") {
			t.Errorf("app env = %v, want HTTP_PROXY and NO_PROXY", app)
		}
		if !strings.Contains(args, "--ingress-listen 127.0.0.1:15000") {
			t.Errorf("explicit proxy args = %q", args)
		}
		return
	}
	if _, ok := app["HTTP_PROXY"]; ok {
		t.Error("iptables mode set HTTP_PROXY")
	}
	caps := pod.Spec.InitContainers[0].SecurityContext.Capabilities.Add
	if len(caps) == 0 || caps[0] != "NET_ADMIN" {
		t.Errorf("init capabilities = %v, want NET_ADMIN", caps)
	}
	if !strings.Contains(args, "--ingress-listen 0.0.0.0:15000 --egress-listen 127.0.0.1:15001") {
		t.Errorf("proxy args = %q", args)
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestExplicitEnvKeepsTheApplicationsOwn(t *testing.T) {
	pod := testPod(map[string]string{"app": "podinfo"}, map[string]string{AnnotationProxyMode: ModeExplicit})
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "HTTP_PROXY", Value: "http://corporate:3128"}}
	d := testConfig.mustDecide(t, Input{Pod: pod, Namespace: "demo", Force: true, VirtualNode: "podinfo"})
	d.Patch.Apply(pod)
	if got := envOf(pod.Spec.Containers[0])["HTTP_PROXY"]; got != "http://corporate:3128" {
		t.Fatalf("HTTP_PROXY = %q, want the application's own", got)
	}
	if got := envOf(pod.Spec.Containers[0])["http_proxy"]; got != "http://127.0.0.1:15001" {
		t.Fatalf("http_proxy = %q", got)
	}
}

func TestOwnerName(t *testing.T) {
	yes := true
	tests := []struct {
		kind, name, hash, want string
	}{
		{"ReplicaSet", "hello-v2-5d8c9f7b6", "5d8c9f7b6", "hello-v2"},
		{"ReplicaSet", "rs-made-by-hand", "", "rs-made-by-hand"},
		{"StatefulSet", "db", "", "db"},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		pod := &corev1.Pod{}
		if tt.kind != "" {
			pod.OwnerReferences = []metav1.OwnerReference{{Kind: tt.kind, Name: tt.name, Controller: &yes}}
		}
		if tt.hash != "" {
			pod.Labels = map[string]string{"pod-template-hash": tt.hash}
		}
		if got := OwnerName(pod); got != tt.want {
			t.Errorf("OwnerName(%s %s) = %q, want %q", tt.kind, tt.name, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).validate(); err == nil || !strings.Contains(err.Error(), "image is required") || !strings.Contains(err.Error(), "control plane address is required") {
		t.Fatalf("validate() = %v", err)
	}
	if err := (Config{Image: "x", ControlPlane: "nohostport"}).validate(); err == nil || !strings.Contains(err.Error(), `"nohostport"`) {
		t.Fatalf("validate() = %v", err)
	}
	if err := testConfig.validate(); err != nil {
		t.Fatal(err)
	}
}

func vgateway(ns, name string, sel map[string]string) *v1alpha1.VirtualGateway {
	vg := &v1alpha1.VirtualGateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if sel != nil {
		vg.Spec.PodSelector = &metav1.LabelSelector{MatchLabels: sel}
	}
	return vg
}

func TestDecideGateway(t *testing.T) {
	gwLabels := map[string]string{"app": "appmesh-gateway"}
	in := Input{Pod: testPod(gwLabels, nil), Namespace: "demo", NamespaceLabels: map[string]string{AppMeshLabelInject: Enabled},
		VirtualNodes:    []*v1alpha1.VirtualNode{vnode("demo", "podinfo", map[string]string{"app": "podinfo"}, 9898)},
		VirtualGateways: []*v1alpha1.VirtualGateway{vgateway("demo", "appmesh-gateway", gwLabels), vgateway("other", "gw", gwLabels)}}
	d := testConfig.mustDecide(t, in)
	if d.VirtualNode != "VirtualGateway/demo/appmesh-gateway" {
		t.Fatalf("node = %q", d.VirtualNode)
	}
	pod := in.Pod.DeepCopy()
	d.Patch.Apply(pod)
	if got := names(pod.Spec.InitContainers); len(got) != 1 || got[0] != ProxyContainerName {
		t.Fatalf("init containers = %v, want only the proxy (a gateway redirects nothing)", got)
	}
	if args := strings.Join(pod.Spec.InitContainers[0].Args, " "); !strings.HasPrefix(args, "proxy --node VirtualGateway/demo/appmesh-gateway ") || !strings.HasSuffix(args, "--gateway-host 0.0.0.0") {
		t.Fatalf("args = %q", args)
	}
	if _, ok := envOf(pod.Spec.Containers[0])["HTTP_PROXY"]; ok {
		t.Fatal("a gateway's container got HTTP_PROXY")
	}

	in.VirtualGateways = append(in.VirtualGateways, vgateway("demo", "second", gwLabels))
	_, err := testConfig.Decide(in)
	if err == nil || err.Error() != "found multiple matching VirtualGateways for pod demo/podinfo-7d9f-*: demo/appmesh-gateway,demo/second" {
		t.Fatalf("error = %v", err)
	}
	// A VirtualNode match wins over a gateway.
	in.Pod = testPod(map[string]string{"app": "podinfo"}, nil)
	in.VirtualGateways = []*v1alpha1.VirtualGateway{vgateway("demo", "everything", map[string]string{})}
	if d := testConfig.mustDecide(t, in); d.VirtualNode != "demo/podinfo" {
		t.Fatalf("node = %q, want the VirtualNode", d.VirtualNode)
	}
}
