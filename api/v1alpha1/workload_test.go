package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validWorkload() *Workload {
	return &Workload{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "demo"},
		Spec: WorkloadSpec{
			Command:    []string{"podinfo"},
			Args:       []string{"--level=info"},
			Env:        []EnvVar{{Name: "PODINFO_UI_COLOR", Value: "#34577c"}},
			WorkingDir: "/srv/podinfo",
			Replicas:   ptrOf(int32(2)),
			Port:       9898,
			ReadinessProbe: &Probe{
				HTTPGet:       &HTTPGetAction{Path: "/readyz"},
				PeriodSeconds: 5,
			},
			Labels: map[string]string{"app": "podinfo"},
		},
	}
}

func TestWorkloadValidate(t *testing.T) {
	type w = *Workload
	probe := func(w w) *Probe { return w.Spec.ReadinessProbe }
	runValidationRules(t, validWorkload, []validationRule[w]{
		{"name required", func(w w) { w.Name = "" }, "metadata.name", "is required"},
		{"namespace invalid", func(w w) { w.Namespace = "Demo" }, "metadata.namespace", `"Demo"`},
		{"command required", func(w w) { w.Spec.Command = nil }, "spec.command", "is required"},
		{"command program empty", func(w w) { w.Spec.Command = []string{""} }, "spec.command", "is required"},
		{"env name required", func(w w) { w.Spec.Env = append(w.Spec.Env, EnvVar{Value: "x"}) }, "spec.env[1].name", "is required"},
		{"env name with =", func(w w) { w.Spec.Env[0].Name = "A=B" }, "spec.env[0].name", "contains = or NUL"},
		{"replicas negative", func(w w) { w.Spec.Replicas = ptrOf(int32(-1)) }, "spec.replicas", "-1 is below 0"},
		{"port above 65535", func(w w) { w.Spec.Port = 70000 }, "spec.port", "70000 is above 65535"},
		{"port negative", func(w w) { w.Spec.Port = -1 }, "spec.port", "-1 is below 0"},
		{"ports run past 65535", func(w w) { w.Spec.Port = 65535 }, "spec.port", "65535 with 2 replicas runs past port 65535"},
		{"probe httpGet required", func(w w) { probe(w).HTTPGet = nil }, "spec.readinessProbe.httpGet", "is required"},
		{"probe path relative", func(w w) { probe(w).HTTPGet.Path = "readyz" }, "spec.readinessProbe.httpGet.path", `"readyz" does not start with /`},
		{"probe port above 65535", func(w w) { probe(w).HTTPGet.Port = 65536 }, "spec.readinessProbe.httpGet.port", "65536 is above 65535"},
		{"probe initialDelaySeconds negative", func(w w) { probe(w).InitialDelaySeconds = -1 }, "spec.readinessProbe.initialDelaySeconds", "-1 is below 0"},
		{"probe periodSeconds negative", func(w w) { probe(w).PeriodSeconds = -5 }, "spec.readinessProbe.periodSeconds", "-5 is below 0"},
		{"probe timeoutSeconds negative", func(w w) { probe(w).TimeoutSeconds = -1 }, "spec.readinessProbe.timeoutSeconds", "-1 is below 0"},
		{"probe failureThreshold negative", func(w w) { probe(w).FailureThreshold = -1 }, "spec.readinessProbe.failureThreshold", "-1 is below 0"},
		{"probe successThreshold negative", func(w w) { probe(w).SuccessThreshold = -2 }, "spec.readinessProbe.successThreshold", "-2 is below 0"},
		{"label key invalid", func(w w) { w.Spec.Labels["bad key"] = "x" }, "spec.labels[bad key]", `key "bad key"`},
		{"label value invalid", func(w w) { w.Spec.Labels["app"] = "pod info" }, "spec.labels[app]", `value "pod info"`},
	})
}

func TestWorkloadAccepts(t *testing.T) {
	for name, mutate := range map[string]func(*Workload){
		"minimal":           func(w *Workload) { w.Spec = WorkloadSpec{Command: []string{"./server"}} },
		"free ports":        func(w *Workload) { w.Spec.Port = 0 },
		"scaled to zero":    func(w *Workload) { w.Spec.Replicas = ptrOf(int32(0)) },
		"last usable ports": func(w *Workload) { w.Spec.Port = 65534 },
	} {
		t.Run(name, func(t *testing.T) {
			w := validWorkload()
			mutate(w)
			if errs := w.Validate(); len(errs) > 0 {
				t.Errorf("want valid, got %v", errs)
			}
		})
	}
}

func TestWorkloadDefault(t *testing.T) {
	w := &Workload{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: WorkloadSpec{
			Command:        []string{"podinfo"},
			ReadinessProbe: &Probe{HTTPGet: &HTTPGetAction{}},
		},
	}
	w.Default()
	p := w.Spec.ReadinessProbe
	if w.GetReplicas() != 1 || *w.Spec.Replicas != 1 {
		t.Errorf("replicas = %v", w.Spec.Replicas)
	}
	if p.HTTPGet.Path != "/" || p.HTTPGet.Port != 0 || p.PeriodSeconds != 10 || p.TimeoutSeconds != 1 ||
		p.FailureThreshold != 3 || p.SuccessThreshold != 1 || p.InitialDelaySeconds != 0 {
		t.Errorf("probe defaults wrong: %+v %+v", p, p.HTTPGet)
	}
	if errs := w.Validate(); len(errs) > 0 {
		t.Errorf("defaulted workload is invalid: %v", errs)
	}

	kept := validWorkload()
	kept.Default()
	if *kept.Spec.Replicas != 2 || kept.Spec.ReadinessProbe.PeriodSeconds != 5 || kept.Spec.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("Default changed set values: %+v", kept.Spec)
	}
}

func TestWorkloadRevision(t *testing.T) {
	a, b := validWorkload(), validWorkload()
	if a.Revision() != b.Revision() || len(a.Revision()) != 10 {
		t.Fatalf("equal specs give %q and %q", a.Revision(), b.Revision())
	}
	b.Spec.Replicas = ptrOf(int32(7))
	if a.Revision() != b.Revision() {
		t.Error("scaling changed the revision")
	}
	b.Spec.Env[0].Value = "#ff0000"
	if a.Revision() == b.Revision() {
		t.Error("a new env value kept the revision")
	}
}

const standaloneWorkload = `apiVersion: canarymesh.dev/v1alpha1
kind: Workload
metadata:
  name: podinfo
  namespace: demo
spec:
  command: [podinfo, --port=$(PORT)]
  args: [--level=debug]
  env:
    - {name: PODINFO_UI_MESSAGE, value: hello}
  workingDir: /tmp
  replicas: 3
  port: 9898
  readinessProbe:
    httpGet: {path: /readyz, port: 9797}
    initialDelaySeconds: 1
    periodSeconds: 2
    timeoutSeconds: 1
    failureThreshold: 3
    successThreshold: 1
  labels: {app: podinfo, version: v1}
status:
  observedGeneration: 2
  replicas: 3
  readyReplicas: 2
  revision: 0a1b2c3d4e
  instances:
    - {index: 0, port: 9898, pid: 4242, ready: true, restarts: 0, revision: 0a1b2c3d4e}
  conditions:
    - {type: Ready, status: "False", reason: InstancesNotReady, message: 2 of 3 ready, lastTransitionTime: "2026-01-02T03:04:05Z"}
`

func TestWorkloadManifest(t *testing.T) {
	var w Workload
	strictDecodeYAML(t, standaloneWorkload, &w)
	w.Default()
	if errs := w.Validate(); len(errs) > 0 {
		t.Fatalf("invalid: %v", errs)
	}
	if w.GetReplicas() != 3 || w.Spec.ReadinessProbe.HTTPGet.Port != 9797 || w.Status.Instances[0].PID != 4242 {
		t.Errorf("decoded wrong: %+v %+v", w.Spec, w.Status)
	}
	if k, err := LookupKind("wl"); err != nil || k.Kind != "Workload" || !k.Namespaced {
		t.Errorf("LookupKind(wl) = %+v, %v", k, err)
	}
}
