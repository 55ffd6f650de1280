package inject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// WebhookPath is where the injector serves AdmissionReviews.
const WebhookPath = "/inject-v1-pod"

// NamespaceGetter reads a Namespace's labels.
type NamespaceGetter interface {
	NamespaceLabels(ctx context.Context, name string) (map[string]string, error)
}

// ClientNamespaces reads Namespaces through a controller-runtime reader.
func ClientNamespaces(r client.Reader) NamespaceGetter { return clientNamespaces{r} }

type clientNamespaces struct{ r client.Reader }

func (c clientNamespaces) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	ns := &corev1.Namespace{}
	if err := c.r.Get(ctx, types.NamespacedName{Name: name}, ns); err != nil {
		return nil, fmt.Errorf("read namespace %s: %w", name, err)
	}
	return ns.Labels, nil
}

// Handler is the mutating admission webhook for pod CREATE.
type Handler struct {
	Config       Config            // what injected pods get
	VirtualNodes VirtualNodeLister // candidates for the pod's node
	Namespaces   NamespaceGetter   // the namespace's consent
	Log          *slog.Logger
}

var _ admission.Handler = (*Handler)(nil)

// Handle answers one AdmissionReview: the pod unchanged (allowed), the pod with its
// proxy (allowed, with a JSON patch), or refused with the reason.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create {
		return admission.Allowed("not a pod creation")
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode pod: %w", err))
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	d, err := h.decide(ctx, pod, ns)
	var rerr *readError
	if errors.As(err, &rerr) {
		// Not the pod's fault: answer with an error, so failurePolicy decides.
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if err != nil {
		h.Log.Info("pod refused", "pod", podName(pod, ns), "err", err)
		return admission.Denied(err.Error())
	}
	if !d.Inject {
		return admission.Allowed(d.Reason)
	}
	d.Patch.Apply(pod)
	out, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encode pod: %w", err))
	}
	h.Log.Info("proxy injected", "pod", podName(pod, ns), "virtualNode", d.VirtualNode)
	return admission.PatchResponseFromRaw(req.Object.Raw, out)
}

// decide gathers the pod's namespace and candidate VirtualNodes and decides. A
// failure to read them is an error, so a pod is never silently left out.
func (h *Handler) decide(ctx context.Context, pod *corev1.Pod, ns string) (*Decision, error) {
	if IsInjected(&pod.Spec) {
		return &Decision{Reason: "already injected"}, nil
	}
	labels, err := h.Namespaces.NamespaceLabels(ctx, ns)
	if err != nil {
		return nil, &readError{err}
	}
	in := Input{Pod: pod, Namespace: ns, NamespaceLabels: labels, Owner: OwnerName(pod)}
	// Only a pod that may be injected needs the VirtualNodes.
	if ok, _, err := wanted(in); err != nil || !ok {
		return h.Config.Decide(in)
	}
	if in.VirtualNodes, err = h.VirtualNodes.VirtualNodes(ctx, ns); err != nil {
		return nil, &readError{err}
	}
	if gl, ok := h.VirtualNodes.(VirtualGatewayLister); ok {
		if in.VirtualGateways, err = gl.VirtualGateways(ctx, ns); err != nil {
			return nil, &readError{err}
		}
	}
	return h.Config.Decide(in)
}

// readError is a failure to read the cluster's state, as opposed to a refusal of the pod.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }
