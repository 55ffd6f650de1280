package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Defaults of a Workload's readiness probe, as a Kubernetes probe's.
const (
	DefaultProbePeriodSeconds    = 10
	DefaultProbeTimeoutSeconds   = 1
	DefaultProbeFailureThreshold = 3
	DefaultProbeSuccessThreshold = 1
)

// Workload is the standalone twin of a Deployment: a command run as replicas supervised
// processes, each with its own port, restarted when it exits and checked for readiness.
// A Canary targets it as it would a Deployment.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=canarymesh,shortName=wl
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.revision`
type Workload struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WorkloadSpec   `json:"spec,omitempty"`
	Status WorkloadStatus `json:"status,omitempty"`
}

// WorkloadList is a list of Workload.
//
// +kubebuilder:object:root=true
type WorkloadList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Workload `json:"items"`
}

func init() {
	register(&KindInfo{Kind: "Workload", Plural: "workloads", Singular: "workload", Short: []string{"wl"},
		Namespaced: true, New: func() Object { return &Workload{} }})
	registerList(func() runtime.Object { return &WorkloadList{} })
}

// WorkloadSpec is the desired state of a Workload. Every field but replicas belongs to
// the revision: changing one starts a new revision, as changing a Deployment's pod
// template does.
type WorkloadSpec struct {
	// Command is the program and its first arguments; not run through a shell.
	Command []string `json:"command"`
	// Args follow Command.
	// +optional
	Args []string `json:"args,omitempty"`
	// Env is added to the environment the processes inherit from the supervisor.
	// +optional
	Env []EnvVar `json:"env,omitempty"`
	// WorkingDir is the directory the processes start in; defaults to the supervisor's.
	// +optional
	WorkingDir string `json:"workingDir,omitempty"`
	// Replicas is the number of processes; defaults to 1.
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// Port is the base port: instance i listens on port+i, passed to it as $PORT. 0 picks
	// a free port for each instance.
	// +optional
	Port int32 `json:"port,omitempty"`
	// ReadinessProbe says when an instance may receive traffic; without one an instance
	// is ready once started.
	// +optional
	ReadinessProbe *Probe `json:"readinessProbe,omitempty"`
	// Labels are the labels of the Workload's instances, matched by a VirtualNode's
	// podSelector.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// EnvVar is one environment variable.
type EnvVar struct {
	Name string `json:"name"`
	// +optional
	Value string `json:"value,omitempty"`
}

// Probe checks an instance's readiness, as a Kubernetes readiness probe does.
type Probe struct {
	// HTTPGet is the request that must answer 2xx or 3xx.
	HTTPGet *HTTPGetAction `json:"httpGet"`
	// InitialDelaySeconds before the first check.
	// +optional
	InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`
	// PeriodSeconds between checks; defaults to 10.
	// +optional
	PeriodSeconds int32 `json:"periodSeconds,omitempty"`
	// TimeoutSeconds of one check; defaults to 1.
	// +optional
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
	// FailureThreshold is the number of failed checks in a row that makes a ready
	// instance unready; defaults to 3.
	// +optional
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
	// SuccessThreshold is the number of passed checks in a row that makes an unready
	// instance ready; defaults to 1.
	// +optional
	SuccessThreshold int32 `json:"successThreshold,omitempty"`
}

// HTTPGetAction is an HTTP GET to the instance on localhost.
type HTTPGetAction struct {
	// Path requested; defaults to /.
	// +optional
	Path string `json:"path,omitempty"`
	// Port requested; defaults to the instance's own port.
	// +optional
	Port int32 `json:"port,omitempty"`
}

// WorkloadStatus is the observed state of a Workload.
type WorkloadStatus struct {
	// ObservedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Replicas is the number of instances running.
	// +optional
	Replicas int32 `json:"replicas"`
	// ReadyReplicas is the number of instances ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`
	// Revision is the revision of the spec the instances run (see Workload.Revision).
	// +optional
	Revision string `json:"revision,omitempty"`
	// Instances describes each process, by index.
	// +optional
	Instances []WorkloadInstance `json:"instances,omitempty"`
	// Conditions: Ready when every instance of the current revision is ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// WorkloadInstance is one supervised process.
type WorkloadInstance struct {
	// Index of the instance, from 0.
	Index int32 `json:"index"`
	// Port the instance was given as $PORT.
	Port int32 `json:"port"`
	// PID of the process; 0 while it is not running.
	// +optional
	PID int32 `json:"pid,omitempty"`
	// Ready is true when the readiness probe passes.
	Ready bool `json:"ready"`
	// Restarts counts how often the process was started again after exiting.
	// +optional
	Restarts int32 `json:"restarts"`
	// Revision of the spec the process runs.
	// +optional
	Revision string `json:"revision,omitempty"`
}

// Default sets replicas to 1 and fills the readiness probe's defaults.
func (w *Workload) Default() {
	if w.Spec.Replicas == nil {
		one := int32(1)
		w.Spec.Replicas = &one
	}
	if p := w.Spec.ReadinessProbe; p != nil {
		if p.HTTPGet != nil && p.HTTPGet.Path == "" {
			p.HTTPGet.Path = "/"
		}
		if p.PeriodSeconds == 0 {
			p.PeriodSeconds = DefaultProbePeriodSeconds
		}
		if p.TimeoutSeconds == 0 {
			p.TimeoutSeconds = DefaultProbeTimeoutSeconds
		}
		if p.FailureThreshold == 0 {
			p.FailureThreshold = DefaultProbeFailureThreshold
		}
		if p.SuccessThreshold == 0 {
			p.SuccessThreshold = DefaultProbeSuccessThreshold
		}
	}
}

// GetReplicas returns the desired number of instances (default 1).
func (w *Workload) GetReplicas() int32 {
	if w.Spec.Replicas == nil {
		return 1
	}
	return *w.Spec.Replicas
}

// Revision returns a short hash of the spec without replicas: instances whose revision
// differs from it run an older spec. It plays the part of a Deployment's
// pod-template-hash, and is what a Canary sees change on a new release.
func (w *Workload) Revision() string {
	s := w.Spec
	s.Replicas = nil
	b, err := json.Marshal(s)
	if err != nil {
		// A spec of strings, numbers and maps always marshals.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:5])
}

// Validate checks the Workload on its own.
func (w *Workload) Validate() ErrorList {
	errs := validateMeta(w, true)
	spec := field.NewPath("spec")
	s := &w.Spec
	if len(s.Command) == 0 || s.Command[0] == "" {
		errs = append(errs, Required(spec.Child("command")))
	}
	for i, e := range s.Env {
		ep := spec.Child("env").Index(i).Child("name")
		switch {
		case e.Name == "":
			errs = append(errs, Required(ep))
		case strings.ContainsAny(e.Name, "=\x00"):
			errs = append(errs, Invalid(ep, "%q contains = or NUL", e.Name))
		}
	}
	replicas := int64(w.GetReplicas())
	checkRange(&errs, spec.Child("replicas"), replicas, 0, math.MaxInt32)
	checkRange(&errs, spec.Child("port"), int64(s.Port), 0, 65535)
	if s.Port > 0 && replicas > 1 && int64(s.Port)+replicas-1 > 65535 {
		errs = append(errs, Invalid(spec.Child("port"), "%d with %d replicas runs past port 65535", s.Port, replicas))
	}
	if p := s.ReadinessProbe; p != nil {
		validateProbe(&errs, spec.Child("readinessProbe"), p)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		lp := spec.Child("labels").Key(k)
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs = append(errs, Invalid(lp, "key %q %s", k, strings.Join(msgs, "; ")))
		}
		if msgs := validation.IsValidLabelValue(s.Labels[k]); len(msgs) > 0 {
			errs = append(errs, Invalid(lp, "value %q %s", s.Labels[k], strings.Join(msgs, "; ")))
		}
	}
	return errs
}

func validateProbe(errs *ErrorList, p *field.Path, pr *Probe) {
	if pr.HTTPGet == nil {
		*errs = append(*errs, Required(p.Child("httpGet")))
	} else {
		if pr.HTTPGet.Path != "" && !strings.HasPrefix(pr.HTTPGet.Path, "/") {
			*errs = append(*errs, Invalid(p.Child("httpGet", "path"), "%q does not start with /", pr.HTTPGet.Path))
		}
		checkRange(errs, p.Child("httpGet", "port"), int64(pr.HTTPGet.Port), 0, 65535)
	}
	checkRange(errs, p.Child("initialDelaySeconds"), int64(pr.InitialDelaySeconds), 0, math.MaxInt32)
	// Zero means "not set" for the rest; Default fills them.
	checkRange(errs, p.Child("periodSeconds"), int64(pr.PeriodSeconds), 0, math.MaxInt32)
	checkRange(errs, p.Child("timeoutSeconds"), int64(pr.TimeoutSeconds), 0, math.MaxInt32)
	checkRange(errs, p.Child("failureThreshold"), int64(pr.FailureThreshold), 0, math.MaxInt32)
	checkRange(errs, p.Child("successThreshold"), int64(pr.SuccessThreshold), 0, math.MaxInt32)
}
