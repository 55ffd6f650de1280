package deploytarget

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

// podSpecUsingConfigs uses ConfigMaps and Secrets in every way a pod can.
func podSpecUsingConfigs() corev1.PodSpec {
	return corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", EnvFrom: []corev1.EnvFromSource{
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "init-secret"}}}}}},
		Containers: []corev1.Container{{
			Name: "app",
			Env: []corev1.EnvVar{
				{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "env-cm"}, Key: "a"}}},
				{Name: "B", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "env-secret"}, Key: "b", Optional: ptr(true)}}},
				{Name: "C", Value: "plain"},
			},
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "envfrom-cm"}, Optional: ptr(true)}}},
		}},
		Volumes: []corev1.Volume{
			{Name: "v1", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "vol-cm"}}}},
			{Name: "v2", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret"}}},
			{Name: "v3", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj-cm"}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj-secret"}}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "env-cm"}}},
			}}}},
			{Name: "v4", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
}

func TestConfigRefsFindsEveryUse(t *testing.T) {
	spec := podSpecUsingConfigs()
	got := configRefs(&spec)
	want := []configRef{
		{kindConfigMap, "env-cm", false},
		{kindConfigMap, "envfrom-cm", true},
		{kindConfigMap, "proj-cm", false},
		{kindConfigMap, "vol-cm", false},
		{kindSecret, "env-secret", true},
		{kindSecret, "init-secret", false},
		{kindSecret, "proj-secret", false},
		{kindSecret, "vol-secret", false},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("configRefs:\n got %v\nwant %v", got, want)
	}
}

func TestConfigRefsRequiredWinsOverOptional(t *testing.T) {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", EnvFrom: []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "x"}, Optional: ptr(true)}},
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "x"}}},
	}}}}
	if got := configRefs(&spec); len(got) != 1 || got[0].Optional {
		t.Fatalf("configRefs = %v, want x required", got)
	}
}

func TestRewriteConfigRefsOnlyTracked(t *testing.T) {
	spec := podSpecUsingConfigs()
	tracked := configSet{}
	for _, r := range configRefs(&spec) {
		if r.Name != "vol-secret" && r.Name != "envfrom-cm" { // as if untracked
			tracked[configRef{Kind: r.Kind, Name: r.Name}] = &trackedConfig{}
		}
	}
	rewriteConfigRefs(&spec, tracked)
	got := map[string]bool{}
	for _, r := range configRefs(&spec) {
		got[r.Name] = true
	}
	for _, name := range []string{"env-cm-primary", "proj-cm-primary", "vol-cm-primary", "env-secret-primary",
		"init-secret-primary", "proj-secret-primary", "vol-secret", "envfrom-cm"} {
		if !got[name] {
			t.Errorf("after rewriting, %s is not used; uses %v", name, got)
		}
	}
	if len(got) != 8 {
		t.Errorf("after rewriting, uses %v, want 8 names", got)
	}
	if v := spec.Volumes[2].Projected.Sources[2].ConfigMap.Name; v != "env-cm-primary" {
		t.Errorf("second use of env-cm in a projected volume = %q", v)
	}
}

func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "podinfo"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
}

func cmSet(data map[string]string) configSet {
	return configSet{{Kind: kindConfigMap, Name: "cfg"}: {ConfigMap: &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg", ResourceVersion: "7"}, Data: data}}}
}

func TestRevision(t *testing.T) {
	base, err := revision(ptr(template("podinfo:6.0.0")), cmSet(map[string]string{"a": "1", "b": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	same := cmSet(map[string]string{"b": "2", "a": "1"})
	same[configRef{Kind: kindConfigMap, Name: "cfg"}].ConfigMap.ResourceVersion = "99" // metadata is not content
	cases := []struct {
		name    string
		tmpl    corev1.PodTemplateSpec
		configs configSet
		changed bool
	}{
		{"same template and data", template("podinfo:6.0.0"), same, false},
		{"new image", template("podinfo:6.0.1"), cmSet(map[string]string{"a": "1", "b": "2"}), true},
		{"config value changed", template("podinfo:6.0.0"), cmSet(map[string]string{"a": "1", "b": "3"}), true},
		{"config key added", template("podinfo:6.0.0"), cmSet(map[string]string{"a": "1", "b": "2", "c": ""}), true},
		{"config untracked", template("podinfo:6.0.0"), configSet{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := revision(&c.tmpl, c.configs)
			if err != nil {
				t.Fatal(err)
			}
			if (got != base) != c.changed {
				t.Errorf("revision %s vs base %s: changed = %v, want %v", got, base, got != base, c.changed)
			}
		})
	}
	secret := configSet{{Kind: kindSecret, Name: "cfg"}: {Secret: &corev1.Secret{Data: map[string][]byte{"a": []byte("1"), "b": []byte("2")}}}}
	if got, _ := revision(ptr(template("podinfo:6.0.0")), secret); got == base {
		t.Errorf("a Secret with the same name and data as a ConfigMap gives the same revision")
	}
}

func deployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test",
			Labels: map[string]string{"app": "podinfo", "team": "a"},
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "3", "note": "kept",
				corev1.LastAppliedConfigAnnotation: "{}", AnnotationCanaryReplicas: "2"}},
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr(int32(2)),
			Selector:                &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
			Template:                template("podinfo:6.0.0"),
			ProgressDeadlineSeconds: ptr(int32(60)),
			MinReadySeconds:         3,
		},
	}
}

func TestSelectorLabel(t *testing.T) {
	d := deployment()
	d.Spec.Selector.MatchLabels = map[string]string{"name": "n", "app.kubernetes.io/name": "k"}
	k, v, err := selectorLabel(d, DefaultSelectorLabels)
	if err != nil || k != "name" || v != "n" {
		t.Fatalf("selectorLabel = %q %q %v, want name n", k, v, err)
	}
	d.Spec.Selector.MatchLabels = map[string]string{"tier": "web"}
	_, _, err = selectorLabel(d, DefaultSelectorLabels)
	if err == nil || !strings.Contains(err.Error(), "spec.selector.matchLabels must contain one of app, name, app.kubernetes.io/name") {
		t.Fatalf("selectorLabel without a known label: err = %v", err)
	}
}

func TestPrimaryDeployment(t *testing.T) {
	cd := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", UID: "u1"}}
	target := deployment()
	target.Spec.Template.Spec = podSpecUsingConfigs()
	target.Spec.Template.Labels = map[string]string{"app": "podinfo", "version": "v1"}
	tracked := configSet{{Kind: kindConfigMap, Name: "vol-cm"}: {}}
	p := primaryDeployment(cd, target, "app", "podinfo-primary", "rev1", tracked)
	if p.Name != "podinfo-primary" || p.Namespace != "test" || *p.Spec.Replicas != 2 {
		t.Errorf("primary %s/%s replicas %d", p.Namespace, p.Name, *p.Spec.Replicas)
	}
	if got := p.Spec.Selector.MatchLabels; len(got) != 1 || got["app"] != "podinfo-primary" {
		t.Errorf("selector = %v", got)
	}
	if got := p.Spec.Template.Labels; got["app"] != "podinfo-primary" || got["version"] != "v1" {
		t.Errorf("template labels = %v", got)
	}
	if got := p.Labels; got["app"] != "podinfo-primary" || got["team"] != "a" {
		t.Errorf("labels = %v", got)
	}
	if got := p.Annotations; got["note"] != "kept" || got[AnnotationPromotedRevision] != "rev1" || got[AnnotationOwner] != "Canary/test/podinfo" ||
		len(got) != 3 {
		t.Errorf("annotations = %v", got)
	}
	if got := p.Spec.Template.Annotations[AnnotationRevision]; got != "rev1" {
		t.Errorf("template revision annotation = %q", got)
	}
	if *p.Spec.ProgressDeadlineSeconds != 60 || p.Spec.MinReadySeconds != 3 {
		t.Errorf("rollout settings not copied: %+v", p.Spec)
	}
	if got := p.Spec.Template.Spec.Volumes[0].ConfigMap.Name; got != "vol-cm-primary" {
		t.Errorf("tracked volume ConfigMap = %q", got)
	}
	if got := p.Spec.Template.Spec.Containers[0].Env[0].ValueFrom.ConfigMapKeyRef.Name; got != "env-cm" {
		t.Errorf("untracked env ConfigMap = %q", got)
	}
	if target.Spec.Template.Spec.Volumes[0].ConfigMap.Name != "vol-cm" || target.Spec.Template.Labels["app"] != "podinfo" {
		t.Errorf("making the primary changed the target")
	}
	target.Spec.Replicas = ptr(int32(0))
	if p := primaryDeployment(cd, target, "app", "podinfo-primary", "rev1", nil); *p.Spec.Replicas != 1 {
		t.Errorf("primary of a target at zero has %d replicas, want 1", *p.Spec.Replicas)
	}
}

func TestSetOwner(t *testing.T) {
	cd := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", UID: "u1"}}
	refs := setOwner(nil, cd)
	if len(refs) != 1 || refs[0].UID != "u1" || refs[0].Kind != "Canary" || refs[0].APIVersion != "canarymesh.dev/v1alpha1" {
		t.Fatalf("setOwner = %+v", refs)
	}
	if again := setOwner(refs, cd); len(again) != 1 {
		t.Errorf("setOwner twice = %+v", again)
	}
	flagger := []metav1.OwnerReference{{APIVersion: "flagger.app/v1beta1", Kind: "Canary", Name: "podinfo", UID: "f", Controller: ptr(true)}}
	if got := setOwner(flagger, cd); len(got) != 1 || got[0].UID != "f" {
		t.Errorf("an object with a controller got a second one: %+v", got)
	}
}

func TestDeploymentReady(t *testing.T) {
	mk := func(gen, observed int64, replicas, updated, total, available int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Generation: gen},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr(replicas)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: observed, UpdatedReplicas: updated,
				Replicas: total, AvailableReplicas: available, Conditions: conds},
		}
	}
	deadline := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
		Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "podinfo-abc" has timed out progressing.`}
	cases := []struct {
		name      string
		d         *appsv1.Deployment
		threshold int
		ready     bool
		msg       string
	}{
		{"rolled out", mk(2, 2, 3, 3, 3, 3), 100, true, ""},
		{"not observed", mk(3, 2, 3, 3, 3, 3), 100, false, "to be observed (generation 3, observed 2)"},
		{"scaled to zero", mk(2, 2, 0, 0, 0, 0), 100, false, "scaled to zero"},
		{"scaled to zero, not observed yet", mk(3, 2, 0, 2, 2, 2), 100, false, "scaled to zero"},
		{"updating", mk(2, 2, 3, 1, 4, 3), 100, false, "1 of 3 replicas updated"},
		{"old pending", mk(2, 2, 3, 3, 4, 3), 100, false, "1 old replicas pending termination"},
		{"not available", mk(2, 2, 4, 4, 4, 2), 100, false, "2 of 4 updated replicas available, 100% needed"},
		{"enough for the threshold", mk(2, 2, 4, 4, 4, 2), 50, true, ""},
		{"stuck", mk(2, 2, 2, 2, 2, 0, deadline), 100, false, "ProgressDeadlineExceeded: ReplicaSet \"podinfo-abc\" has timed out progressing."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ready, msg := deploymentReady(c.d, c.threshold)
			if ready != c.ready || !strings.Contains(msg, c.msg) || c.ready && msg != "" {
				t.Errorf("deploymentReady = %v %q, want %v containing %q", ready, msg, c.ready, c.msg)
			}
		})
	}
}

func TestServicePorts(t *testing.T) {
	cd := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}}
	cd.Spec.Service = v1alpha1.CanaryService{Port: 80, TargetPort: ptr(intstr.FromString("http")), PortDiscovery: true, AppProtocol: "http"}
	dep := deployment()
	dep.Spec.Template.Spec.Containers[0].Ports = []corev1.ContainerPort{
		{Name: "http", ContainerPort: 9898}, {Name: "grpc", ContainerPort: 9999}, {ContainerPort: 8125, Protocol: corev1.ProtocolUDP}, {ContainerPort: 9797}}
	ports, err := servicePorts(cd, &observed{dep: dep})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ports {
		got = append(got, p.Name+":"+p.TargetPort.String())
	}
	want := []string{"http:http", "grpc:9999", "tcp-app-9797:9797"}
	if !slices.Equal(got, want) || ports[0].Port != 80 || *ports[0].AppProtocol != "http" {
		t.Errorf("ports = %v (%+v), want %v", got, ports, want)
	}
	cd.Spec.Service.Port = 0
	if _, err := servicePorts(cd, nil); err == nil || !strings.Contains(err.Error(), "spec.service.port: 0 is not a port") {
		t.Errorf("port 0: err = %v", err)
	}
}

func TestPromotedMeta(t *testing.T) {
	p := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Labels: map[string]string{"app": "podinfo-primary", "old": "x"},
		Annotations: map[string]string{"deployment.kubernetes.io/revision": "4", AnnotationOwner: "Canary/test/podinfo",
			AnnotationPromotedRevision: "r1", "stale": "y"}}}
	target := deployment()
	target.Labels["version"] = "2"
	promotedMeta(p, target, "app", "podinfo-primary")
	if got := p.Labels; got["app"] != "podinfo-primary" || got["version"] != "2" || got["team"] != "a" || got["old"] != "" {
		t.Errorf("labels = %v", got)
	}
	want := map[string]string{"deployment.kubernetes.io/revision": "4", AnnotationOwner: "Canary/test/podinfo",
		AnnotationPromotedRevision: "r1", "note": "kept"}
	if len(p.Annotations) != len(want) {
		t.Errorf("annotations = %v, want %v", p.Annotations, want)
	}
	for k, v := range want {
		if p.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, p.Annotations[k], v)
		}
	}
}

func TestDesiredServices(t *testing.T) {
	cd := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", UID: "u1"}}
	cd.Spec.TargetRef = v1alpha1.LocalObjectReference{Kind: "Deployment", Name: "podinfo"}
	cd.Spec.Service = v1alpha1.CanaryService{Name: "web", Port: 9898, Headless: true, TrafficDistribution: "PreferClose",
		Apex: &v1alpha1.CustomMetadata{Labels: map[string]string{"tier": "edge"}, Annotations: map[string]string{"a": "b"}}}
	o := &observed{dep: deployment(), key: "app", value: "podinfo"}
	tg := &Target{OwnerReferences: true}
	svcs, err := tg.desiredServices(cd, o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"web": "podinfo-primary", "web-primary": "podinfo-primary", "web-canary": "podinfo"}
	if len(svcs) != 3 {
		t.Fatalf("%d services", len(svcs))
	}
	for _, s := range svcs {
		if sel, ok := want[s.Name]; !ok || s.Spec.Selector["app"] != sel || len(s.Spec.Selector) != 1 {
			t.Errorf("service %s selects %v", s.Name, s.Spec.Selector)
		}
		if s.Spec.ClusterIP != corev1.ClusterIPNone || *s.Spec.TrafficDistribution != "PreferClose" {
			t.Errorf("service %s: clusterIP %q", s.Name, s.Spec.ClusterIP)
		}
		if s.Annotations[AnnotationOwner] != "Canary/test/podinfo" || len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != "u1" {
			t.Errorf("service %s is not owned: %v %v", s.Name, s.Annotations, s.OwnerReferences)
		}
		if s.Spec.Ports[0].Name != "http" || s.Spec.Ports[0].TargetPort != intstr.FromInt32(9898) {
			t.Errorf("service %s ports %+v", s.Name, s.Spec.Ports)
		}
	}
	if apex := svcs[0]; apex.Labels["tier"] != "edge" || apex.Annotations["a"] != "b" || svcs[1].Labels["tier"] != "" {
		t.Errorf("apex metadata: %v %v; primary labels %v", apex.Labels, apex.Annotations, svcs[1].Labels)
	}
}
