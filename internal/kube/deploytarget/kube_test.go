package deploytarget_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/kube/deploytarget"
	"github.com/canarymesh/canarymesh/internal/kube/kubetest"
)

func ptr[T any](v T) *T { return &v }

// waitTimeout bounds every wait for the cluster's controllers; the machine may be busy.
const waitTimeout = 90 * time.Second

// eventually polls cond until it holds, failing the test with its last message when
// waitTimeout passes first.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: still not so after %s: %s", what, waitTimeout, last)
}

// cluster is one real control plane shared by the subtests, each in its own namespace.
type cluster struct {
	env *kubetest.Env
	cs  kubernetes.Interface
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	env := kubetest.Start(t, kubetest.Options{CRDs: true, Controllers: true, Kwok: true})
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{env: env, cs: cs}
}

func (c *cluster) namespace(t *testing.T, name string) {
	t.Helper()
	_, err := c.cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "default ServiceAccount of "+name, func() (bool, string) {
		_, err := c.cs.CoreV1().ServiceAccounts(name).Get(context.Background(), "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
}

// app creates what a user of the Flagger tutorials has: the podinfo Deployment reading a
// ConfigMap (env) and a Secret (volume), and its HPA.
func (c *cluster) app(t *testing.T, ns string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	_, err := c.cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo-config"},
		Data:       map[string]string{"PODINFO_UI_COLOR": "#34577c"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo-token"},
		StringData: map[string]string{"token": "s3cret"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Labels: map[string]string{"app": "podinfo"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "podinfo"}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{
						Name: "podinfod", Image: "ghcr.io/stefanprodan/podinfo:6.0.0",
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
						EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config"}}}},
						VolumeMounts: []corev1.VolumeMount{{Name: "token", MountPath: "/etc/token"}},
					}},
					Volumes: []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{
						Secret: &corev1.SecretVolumeSource{SecretName: "podinfo-token"}}}},
				},
			},
		},
	}
	if _, err := c.cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			MinReplicas:    ptr(replicas), MaxReplicas: 4,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(int32(99))}}}},
		},
	}
	if _, err := c.cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// newCanary is the Flagger tutorial's Canary for podinfo.
func newCanary(ns string) *v1alpha1.Canary {
	cd := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns, UID: "canary-" + "uid-" + "1"}}
	cd.Spec.TargetRef = v1alpha1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}
	cd.Spec.AutoscalerRef = &v1alpha1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "podinfo"}
	cd.Spec.Service = v1alpha1.CanaryService{Port: 9898, TargetPort: ptr(intstr.FromString("http"))}
	cd.Spec.Analysis = &v1alpha1.CanaryAnalysis{Interval: "1s", Threshold: 2, MaxWeight: 50, StepWeight: 25}
	cd.Default()
	return cd
}

func (c *cluster) deployment(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := c.cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// userRetry is how long a test's write waits out the controllers' writes of the same
// object (they are busy on a loaded machine).
var userRetry = wait.Backoff{Steps: 30, Duration: 10 * time.Millisecond, Factor: 1.5, Cap: time.Second}

// updateDeployment changes a Deployment as a user would, reading it again when its
// controller wrote it meanwhile.
func (c *cluster) updateDeployment(t *testing.T, ns, name string, f func(d *appsv1.Deployment)) {
	t.Helper()
	err := retry.RetryOnConflict(userRetry, func() error {
		d, err := c.cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		f(d)
		_, err = c.cs.AppsV1().Deployments(ns).Update(context.Background(), d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) updateConfigMap(t *testing.T, ns, name string, f func(cm *corev1.ConfigMap)) {
	t.Helper()
	err := retry.RetryOnConflict(userRetry, func() error {
		cm, err := c.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		f(cm)
		_, err = c.cs.CoreV1().ConfigMaps(ns).Update(context.Background(), cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pods describes the namespace's pods, for a wait that timed out.
func (c *cluster) pods(ns string) string {
	list, err := c.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range list.Items {
		ready := false
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady {
				ready = cond.Status == corev1.ConditionTrue
			}
		}
		fmt.Fprintf(&b, "; pod %s node %q phase %s ready %v", p.Name, p.Spec.NodeName, p.Status.Phase, ready)
	}
	return b.String()
}

func waitReady(t *testing.T, c *cluster, tg *deploytarget.Target, cd *v1alpha1.Canary, role canary.Role) {
	t.Helper()
	eventually(t, string(role)+" ready", func() (bool, string) {
		ok, msg, err := tg.Ready(context.Background(), cd, role)
		if err != nil {
			return false, err.Error()
		}
		return ok, msg + c.pods(cd.Namespace)
	})
}

func revision(t *testing.T, tg *deploytarget.Target, cd *v1alpha1.Canary) string {
	t.Helper()
	rev, err := tg.Revision(context.Background(), cd)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// initialize runs what the controller does on a first deploy: create, wait for the
// primary, park the target.
func initialize(t *testing.T, c *cluster, tg *deploytarget.Target, cd *v1alpha1.Canary) {
	t.Helper()
	ctx := context.Background()
	if err := tg.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	waitReady(t, c, tg, cd, canary.RolePrimary)
	if err := tg.ScaleCanary(ctx, cd, 0); err != nil {
		t.Fatal(err)
	}
}

func TestDeploymentTarget(t *testing.T) {
	c := startCluster(t)
	t.Run("Initialize", func(t *testing.T) { testInitialize(t, c) })
	t.Run("Revisions", func(t *testing.T) { testRevisions(t, c) })
	t.Run("PromoteAndRollback", func(t *testing.T) { testPromoteAndRollback(t, c) })
	t.Run("RevertOnDeletion", func(t *testing.T) { testRevertOnDeletion(t, c) })
	t.Run("GarbageCollectedWithCanary", func(t *testing.T) { testGarbageCollected(t, c) })
	t.Run("MissingDeployment", func(t *testing.T) { testMissing(t, c) })
	t.Run("BadCanary", func(t *testing.T) { testBadCanary(t, c) })
	t.Run("ProgressDeadline", func(t *testing.T) { testProgressDeadline(t, c) })
	t.Run("CanaryController", func(t *testing.T) { testControllerRelease(t, c) })
}

func testInitialize(t *testing.T, c *cluster) {
	const ns = "init"
	ctx := context.Background()
	c.namespace(t, ns)
	c.app(t, ns, 2)
	tg := &deploytarget.Target{Client: c.cs}
	cd := newCanary(ns)
	initialize(t, c, tg, cd)

	p := c.deployment(t, ns, "podinfo-primary")
	if got := p.Spec.Selector.MatchLabels; len(got) != 1 || got["app"] != "podinfo-primary" {
		t.Errorf("primary selector = %v, want app: podinfo-primary", got)
	}
	if got := p.Spec.Template.Labels["app"]; got != "podinfo-primary" {
		t.Errorf("primary pod label app = %q", got)
	}
	if replicas(p) != 2 {
		t.Errorf("primary replicas = %d, want the target's 2", replicas(p))
	}
	spec := p.Spec.Template.Spec
	if got := spec.Containers[0].EnvFrom[0].ConfigMapRef.Name; got != "podinfo-config-primary" {
		t.Errorf("primary reads ConfigMap %q, want podinfo-config-primary", got)
	}
	if got := spec.Volumes[0].Secret.SecretName; got != "podinfo-token-primary" {
		t.Errorf("primary mounts Secret %q, want podinfo-token-primary", got)
	}
	cm, err := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "podinfo-config-primary", metav1.GetOptions{})
	if err != nil || cm.Data["PODINFO_UI_COLOR"] != "#34577c" {
		t.Errorf("ConfigMap podinfo-config-primary = %v, %v", cm.Data, err)
	}
	sec, err := c.cs.CoreV1().Secrets(ns).Get(ctx, "podinfo-token-primary", metav1.GetOptions{})
	if err != nil || string(sec.Data["token"]) != "s3cret" {
		t.Errorf("Secret podinfo-token-primary = %v, %v", sec.Data, err)
	}

	hpa, err := c.cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "podinfo-primary", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("primary HPA: %v", err)
	}
	if hpa.Spec.ScaleTargetRef.Name != "podinfo-primary" || hpa.Spec.ScaleTargetRef.Kind != "Deployment" ||
		*hpa.Spec.MinReplicas != 2 || hpa.Spec.MaxReplicas != 4 || len(hpa.Spec.Metrics) != 1 {
		t.Errorf("primary HPA spec = %+v", hpa.Spec)
	}

	for name, selects := range map[string]string{"podinfo": "podinfo-primary", "podinfo-primary": "podinfo-primary", "podinfo-canary": "podinfo"} {
		svc, err := c.cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("service %s: %v", name, err)
			continue
		}
		if svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			t.Errorf("service %s is %s with cluster IP %q", name, svc.Spec.Type, svc.Spec.ClusterIP)
		}
		if got := svc.Spec.Selector; len(got) != 1 || got["app"] != selects {
			t.Errorf("service %s selects %v, want app: %s", name, got, selects)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http" || svc.Spec.Ports[0].Port != 9898 ||
			svc.Spec.Ports[0].TargetPort != intstr.FromString("http") {
			t.Errorf("service %s ports = %+v", name, svc.Spec.Ports)
		}
	}
	// The primary's pods are really running (kwok) and carry the primary's label.
	pods, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=podinfo-primary"})
	if err != nil || len(pods.Items) < 2 {
		t.Errorf("primary pods = %d, %v", len(pods.Items), err)
	}

	target := c.deployment(t, ns, "podinfo")
	if replicas(target) != 0 || target.Annotations[deploytarget.AnnotationCanaryReplicas] != "2" {
		t.Errorf("target after initialisation: replicas %d, annotations %v", replicas(target), target.Annotations)
	}
	eventually(t, "target pods gone", func() (bool, string) {
		d := c.deployment(t, ns, "podinfo")
		return d.Status.Replicas == 0, fmt.Sprintf("%d replicas", d.Status.Replicas)
	})
	rev, prim := revision(t, tg, cd), ""
	if prim, err = tg.PrimaryRevision(ctx, cd); err != nil || prim != rev {
		t.Errorf("PrimaryRevision = %q, %v; want the target's %q", prim, err, rev)
	}
	// Initialising again changes nothing.
	before := c.deployment(t, ns, "podinfo-primary").ResourceVersion
	if err := tg.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if after := c.deployment(t, ns, "podinfo-primary").ResourceVersion; after != before {
		t.Errorf("second Initialize rewrote the primary (%s → %s)", before, after)
	}
	// Another Canary cannot take the objects over.
	other := newCanary(ns)
	other.Name = "intruder"
	if err := tg.Initialize(ctx, other); err == nil || !strings.Contains(err.Error(), "belongs to Canary/init/podinfo") {
		t.Errorf("Initialize of another Canary of the same target: err = %v", err)
	}
}

func testRevisions(t *testing.T, c *cluster) {
	const ns = "revisions"
	c.namespace(t, ns)
	c.app(t, ns, 1)
	tg := &deploytarget.Target{Client: c.cs}
	cd := newCanary(ns)
	r0 := revision(t, tg, cd)

	c.updateDeployment(t, ns, "podinfo", func(d *appsv1.Deployment) {
		d.Spec.Replicas = ptr(int32(3))
		d.Annotations["team"] = "a"
	})
	if got := revision(t, tg, cd); got != r0 {
		t.Errorf("replicas and metadata changed the revision: %s → %s", r0, got)
	}
	c.updateDeployment(t, ns, "podinfo", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.0.1"
	})
	r1 := revision(t, tg, cd)
	if r1 == r0 {
		t.Errorf("a new image is not a new revision")
	}
	c.updateDeployment(t, ns, "podinfo", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.0.0"
	})
	if got := revision(t, tg, cd); got != r0 {
		t.Errorf("the template set back is revision %s, not %s", got, r0)
	}
	c.updateConfigMap(t, ns, "podinfo-config", func(cm *corev1.ConfigMap) { cm.Data["PODINFO_UI_COLOR"] = "#ff0000" })
	r2 := revision(t, tg, cd)
	if r2 == r0 || r2 == r1 {
		t.Errorf("a ConfigMap change is not a new revision (%s)", r2)
	}
	c.updateConfigMap(t, ns, "podinfo-config", func(cm *corev1.ConfigMap) { cm.Labels = map[string]string{"x": "y"} })
	if got := revision(t, tg, cd); got != r2 {
		t.Errorf("a ConfigMap's labels changed the revision")
	}
	c.updateConfigMap(t, ns, "podinfo-config", func(cm *corev1.ConfigMap) {
		cm.Annotations = map[string]string{deploytarget.AnnotationFlaggerConfigTracking: "disabled"}
	})
	r3 := revision(t, tg, cd)
	c.updateConfigMap(t, ns, "podinfo-config", func(cm *corev1.ConfigMap) { cm.Data["PODINFO_UI_COLOR"] = "#00ff00" })
	if got := revision(t, tg, cd); got != r3 {
		t.Errorf("a change of an untracked ConfigMap (flagger.app/config-tracking: disabled) is a new revision")
	}
	// A required ConfigMap that is missing is a clear error.
	c.updateDeployment(t, ns, "podinfo", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name = "nope"
	})
	_, err := tg.Revision(context.Background(), cd)
	if err == nil || !strings.Contains(err.Error(), "ConfigMap revisions/nope used by the pod template") {
		t.Errorf("missing ConfigMap: err = %v", err)
	}
}

func testPromoteAndRollback(t *testing.T, c *cluster) {
	const ns = "promote"
	ctx := context.Background()
	c.namespace(t, ns)
	c.app(t, ns, 2)
	tg := &deploytarget.Target{Client: c.cs}
	cd := newCanary(ns)
	initialize(t, c, tg, cd)
	r0 := revision(t, tg, cd)

	// A new version: new image, new ConfigMap value.
	c.updateDeployment(t, ns, "podinfo", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.0.1"
		d.Spec.Template.Labels["version"] = "6.0.1"
		d.Labels["version"] = "6.0.1"
	})
	c.updateConfigMap(t, ns, "podinfo-config", func(cm *corev1.ConfigMap) { cm.Data["PODINFO_UI_COLOR"] = "#ff0000" })
	r1 := revision(t, tg, cd)
	if r1 == r0 {
		t.Fatal("no new revision")
	}
	if err := tg.ScaleCanary(ctx, cd, canary.RestoreReplicas); err != nil {
		t.Fatal(err)
	}
	if d := c.deployment(t, ns, "podinfo"); replicas(d) != 2 {
		t.Errorf("target scaled up to %d, want its 2 from before", replicas(d))
	}
	waitReady(t, c, tg, cd, canary.RoleCanary)
	if cm, _ := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "podinfo-config-primary", metav1.GetOptions{}); cm.Data["PODINFO_UI_COLOR"] != "#34577c" {
		t.Errorf("the primary's ConfigMap changed before the promotion: %v", cm.Data)
	}

	if err := tg.Promote(ctx, cd); err != nil {
		t.Fatal(err)
	}
	p := c.deployment(t, ns, "podinfo-primary")
	if got := p.Spec.Template.Spec.Containers[0].Image; got != "ghcr.io/stefanprodan/podinfo:6.0.1" {
		t.Errorf("primary image after promotion = %q", got)
	}
	if p.Spec.Template.Labels["version"] != "6.0.1" || p.Spec.Template.Labels["app"] != "podinfo-primary" ||
		p.Labels["version"] != "6.0.1" || p.Labels["app"] != "podinfo-primary" {
		t.Errorf("primary labels after promotion: template %v, deployment %v", p.Spec.Template.Labels, p.Labels)
	}
	if got := p.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name; got != "podinfo-config-primary" {
		t.Errorf("primary reads ConfigMap %q after promotion", got)
	}
	if replicas(p) != 2 {
		t.Errorf("promotion changed the primary's replicas to %d", replicas(p))
	}
	cm, err := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "podinfo-config-primary", metav1.GetOptions{})
	if err != nil || cm.Data["PODINFO_UI_COLOR"] != "#ff0000" {
		t.Errorf("ConfigMap podinfo-config-primary after promotion = %v, %v", cm.Data, err)
	}
	if got, err := tg.PrimaryRevision(ctx, cd); err != nil || got != r1 {
		t.Errorf("PrimaryRevision after promotion = %q, %v; want %q", got, err, r1)
	}
	// The controller waits for the primary's rollout through Ready.
	waitReady(t, c, tg, cd, canary.RolePrimary)
	pods, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=podinfo-primary"})
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, pod := range pods.Items {
		if pod.DeletionTimestamp == nil {
			running++
			if img := pod.Spec.Containers[0].Image; img != "ghcr.io/stefanprodan/podinfo:6.0.1" {
				t.Errorf("primary pod %s runs %s after the rollout", pod.Name, img)
			}
		}
	}
	if running != 2 {
		t.Errorf("%d primary pods after the rollout, want 2", running)
	}

	// A ConfigMap change alone rolls the primary too: its template carries the revision.
	c.updateConfigMap(t, ns, "podinfo-config", func(cm *corev1.ConfigMap) { cm.Data["PODINFO_UI_COLOR"] = "#00ff00" })
	gen := c.deployment(t, ns, "podinfo-primary").Generation
	if err := tg.Promote(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if p := c.deployment(t, ns, "podinfo-primary"); p.Generation == gen {
		t.Errorf("promoting a ConfigMap change did not change the primary's template")
	}

	// Rollback parks the target again.
	if err := tg.Rollback(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if d := c.deployment(t, ns, "podinfo"); replicas(d) != 0 || d.Annotations[deploytarget.AnnotationCanaryReplicas] != "2" {
		t.Errorf("target after rollback: replicas %d, annotations %v", replicas(d), d.Annotations)
	}
	ok, msg, err := tg.Ready(ctx, cd, canary.RoleCanary)
	if err != nil || ok || !strings.Contains(msg, "scaled to zero") {
		t.Errorf("Ready(canary) after rollback = %v %q %v", ok, msg, err)
	}
}

func testRevertOnDeletion(t *testing.T, c *cluster) {
	const ns = "revert"
	ctx := context.Background()
	c.namespace(t, ns)
	c.app(t, ns, 3)
	tg := &deploytarget.Target{Client: c.cs}
	cd := newCanary(ns)
	cd.Spec.RevertOnDeletion = true
	initialize(t, c, tg, cd)

	// What the controller does for a Canary deleted with revertOnDeletion: the target
	// gets its replicas back, traffic goes to it, and then Finalize.
	cd.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	if err := tg.ScaleCanary(ctx, cd, canary.RestoreReplicas); err != nil {
		t.Fatal(err)
	}
	if d := c.deployment(t, ns, "podinfo"); replicas(d) != 3 || d.Annotations[deploytarget.AnnotationCanaryReplicas] != "" {
		t.Errorf("reverted target: replicas %d, annotations %v", replicas(d), d.Annotations)
	}
	waitReady(t, c, tg, cd, canary.RoleCanary)
	if err := tg.Finalize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	apex, err := c.cs.CoreV1().Services(ns).Get(ctx, "podinfo", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the apex service is gone: %v", err)
	}
	if got := apex.Spec.Selector; got["app"] != "podinfo" || apex.Annotations[deploytarget.AnnotationOwner] != "" {
		t.Errorf("apex after Finalize selects %v, annotations %v", got, apex.Annotations)
	}
	gone := map[string]func() error{
		"deployment podinfo-primary": func() error {
			_, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "podinfo-primary", metav1.GetOptions{})
			return err
		},
		"hpa podinfo-primary": func() error {
			_, err := c.cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "podinfo-primary", metav1.GetOptions{})
			return err
		},
		"configmap podinfo-config-primary": func() error {
			_, err := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "podinfo-config-primary", metav1.GetOptions{})
			return err
		},
		"secret podinfo-token-primary": func() error {
			_, err := c.cs.CoreV1().Secrets(ns).Get(ctx, "podinfo-token-primary", metav1.GetOptions{})
			return err
		},
		"service podinfo-primary": func() error {
			_, err := c.cs.CoreV1().Services(ns).Get(ctx, "podinfo-primary", metav1.GetOptions{})
			return err
		},
		"service podinfo-canary": func() error {
			_, err := c.cs.CoreV1().Services(ns).Get(ctx, "podinfo-canary", metav1.GetOptions{})
			return err
		},
	}
	for what, get := range gone {
		if err := get(); !apierrors.IsNotFound(err) {
			t.Errorf("%s after Finalize: err = %v, want NotFound", what, err)
		}
	}
	// The user's own objects are untouched.
	for _, get := range []func() error{
		func() error {
			_, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "podinfo", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := c.cs.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "podinfo", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "podinfo-config", metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); err != nil {
			t.Errorf("a user's object is gone after Finalize: %v", err)
		}
	}
}

func testMissing(t *testing.T, c *cluster) {
	const ns = "missing"
	ctx := context.Background()
	c.namespace(t, ns)
	tg := &deploytarget.Target{Client: c.cs}
	cd := newCanary(ns)
	_, err := tg.Revision(ctx, cd)
	if !errors.Is(err, canary.ErrTargetNotFound) || !strings.Contains(err.Error(), "deployment missing/podinfo does not exist") {
		t.Errorf("Revision of a missing Deployment: err = %v", err)
	}
	if err := tg.Initialize(ctx, cd); !errors.Is(err, canary.ErrTargetNotFound) {
		t.Errorf("Initialize of a missing Deployment: err = %v", err)
	}
	if _, _, err := tg.Ready(ctx, cd, canary.RoleCanary); !errors.Is(err, canary.ErrTargetNotFound) {
		t.Errorf("Ready(canary) of a missing Deployment: err = %v", err)
	}
	ok, msg, err := tg.Ready(ctx, cd, canary.RolePrimary)
	if ok || err != nil || !strings.Contains(msg, "deployment missing/podinfo-primary does not exist") {
		t.Errorf("Ready(primary) without a primary = %v %q %v", ok, msg, err)
	}
	if rev, err := tg.PrimaryRevision(ctx, cd); rev != "" || err != nil {
		t.Errorf("PrimaryRevision without a primary = %q %v", rev, err)
	}
	cd.Spec.TargetRef.Kind = "DaemonSet"
	if _, err := tg.Revision(ctx, cd); !errors.Is(err, canary.ErrTargetNotFound) || !strings.Contains(err.Error(), `spec.targetRef.kind "DaemonSet"`) {
		t.Errorf("Revision of a DaemonSet target: err = %v", err)
	}
	// A Deployment whose selector has none of the selector labels.
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"tier": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "podinfo"}}},
			},
		},
	}
	if _, err := c.cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cd = newCanary(ns)
	if err := tg.Initialize(ctx, cd); err == nil || !strings.Contains(err.Error(), "spec.selector.matchLabels must contain one of app, name, app.kubernetes.io/name") {
		t.Errorf("Initialize of a Deployment without a selector label: err = %v", err)
	}
}

func testProgressDeadline(t *testing.T, c *cluster) {
	const ns = "deadline"
	ctx := context.Background()
	c.namespace(t, ns)
	c.app(t, ns, 1)
	tg := &deploytarget.Target{Client: c.cs}
	cd := newCanary(ns)
	cd.Spec.AutoscalerRef = nil
	// Pods that no node accepts never become ready; the Deployment gives up after a second.
	c.updateDeployment(t, ns, "podinfo", func(d *appsv1.Deployment) {
		d.Spec.ProgressDeadlineSeconds = ptr(int32(1))
		d.Spec.Template.Spec.NodeSelector = map[string]string{"no-such": "node"}
	})
	eventually(t, "target reported stuck", func() (bool, string) {
		ok, msg, err := tg.Ready(ctx, cd, canary.RoleCanary)
		if err != nil {
			return !ok && errors.Is(err, canary.ErrStuck) && strings.Contains(err.Error(), "ProgressDeadlineExceeded"), err.Error()
		}
		return false, msg
	})
}

// testBadCanary: a Canary that cannot be carried out is refused with the field at fault
// before anything is made.
func testBadCanary(t *testing.T, c *cluster) {
	const ns = "bad"
	ctx := context.Background()
	c.namespace(t, ns)
	c.app(t, ns, 1)
	tg := &deploytarget.Target{Client: c.cs}
	cases := []struct {
		name   string
		change func(cd *v1alpha1.Canary)
		want   string
	}{
		{"no port", func(cd *v1alpha1.Canary) { cd.Spec.Service.Port = 0 }, "spec.service.port: 0 is not a port"},
		{"missing HPA", func(cd *v1alpha1.Canary) { cd.Spec.AutoscalerRef.Name = "nope" }, "spec.autoscalerRef: HorizontalPodAutoscaler nope"},
		{"KEDA", func(cd *v1alpha1.Canary) { cd.Spec.AutoscalerRef.Kind = "ScaledObject" }, `spec.autoscalerRef.kind "ScaledObject" is not supported`},
	}
	for _, tc := range cases {
		cd := newCanary(ns)
		tc.change(cd)
		err := tg.Initialize(ctx, cd)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if _, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "podinfo-primary", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("%s: a primary was made (err %v)", tc.name, err)
		}
		if _, err := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "podinfo-config-primary", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("%s: a ConfigMap copy was made (err %v)", tc.name, err)
		}
	}
}
