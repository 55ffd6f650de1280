package manifest

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Groups whose documents Canarymesh reads; a kind or version of these it does not know
// is an error, while documents of every other group are skipped with a notice.
const (
	groupAppMesh = "appmesh.k8s.aws"
	groupFlagger = "flagger.app"
)

type convContext struct {
	file    string
	line    int
	header  header
	opts    Options
	notices []string
}

func (c *convContext) notice(format string, args ...any) {
	c.notices = append(c.notices, fmt.Sprintf("%s:%d: %s %s: ", c.file, c.line, c.header.kind, c.header.String())+fmt.Sprintf(format, args...))
}

type converter func(c *convContext, m map[string]any) ([]v1alpha1.Object, error)

var appMeshV1beta2Kinds = []string{"Mesh", "VirtualNode", "VirtualService", "VirtualRouter", "VirtualGateway", "GatewayRoute"}
var flaggerKinds = []string{"Canary", "MetricTemplate", "AlertProvider"}

// standaloneSkips explains, for the Kubernetes kinds users most often keep beside their
// mesh manifests, why standalone mode passes them by.
var standaloneSkips = map[string]string{
	"Deployment":              "standalone mode runs no Deployments; describe the process as a Workload",
	"Service":                 "standalone mode needs no Services; virtual services are reached through the mesh",
	"HorizontalPodAutoscaler": "standalone mode does not autoscale; set Workload replicas",
}

func converterFor(h header) (converter, string, error) {
	group, version := splitAPIVersion(h.apiVersion)
	switch {
	case h.apiVersion == v1alpha1.APIVersion:
		k := ourKind(h.kind)
		if k == nil {
			return nil, "", fmt.Errorf("%s has no kind %q; kinds: %s", h.apiVersion, h.kind, ourKindNames())
		}
		if k.ReadOnly {
			return nil, "", fmt.Errorf("%s is a read-only view the control plane computes; it cannot be applied", h.kind)
		}
		return typed(k, false), "", nil
	case group == v1alpha1.Group:
		return nil, "", fmt.Errorf("version %q of %s is not served; use %s", version, group, v1alpha1.APIVersion)
	case h.apiVersion == groupAppMesh+"/v1beta2":
		if !contains(appMeshV1beta2Kinds, h.kind) {
			return nil, fmt.Sprintf("Canarymesh does not use App Mesh's %s", h.kind), nil
		}
		return typed(ourKind(h.kind), true), "", nil
	case h.apiVersion == groupAppMesh+"/v1beta1":
		switch h.kind {
		case "Mesh":
			return convertMeshV1beta1, "", nil
		case "VirtualNode":
			return convertVirtualNodeV1beta1, "", nil
		case "VirtualService":
			return convertVirtualServiceV1beta1, "", nil
		}
		return nil, "", fmt.Errorf("%s has no kind %q; kinds: Mesh, VirtualNode, VirtualService", h.apiVersion, h.kind)
	case group == groupAppMesh:
		return nil, "", fmt.Errorf("version %q of App Mesh's API is not known; use v1beta2 or v1beta1", version)
	case h.apiVersion == groupFlagger+"/v1beta1":
		if !contains(flaggerKinds, h.kind) {
			return nil, "", fmt.Errorf("%s has no kind %q; kinds: %s", h.apiVersion, h.kind, strings.Join(flaggerKinds, ", "))
		}
		return typed(ourKind(h.kind), true), "", nil
	case group == groupFlagger:
		return nil, "", fmt.Errorf("version %q of Flagger's API is not known; use v1beta1", version)
	case h.apiVersion == "v1" && h.kind == "Namespace":
		return convertNamespace, "", nil
	}
	if why, ok := standaloneSkips[h.kind]; ok {
		return nil, why, nil
	}
	return nil, "not a kind Canarymesh runs", nil
}

func splitAPIVersion(av string) (group, version string) {
	if i := strings.LastIndexByte(av, '/'); i >= 0 {
		return av[:i], av[i+1:]
	}
	return "", av
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ourKind(kind string) *v1alpha1.KindInfo {
	for _, k := range v1alpha1.Kinds() {
		if k.Kind == kind && k.APIVersion == v1alpha1.APIVersion {
			return k
		}
	}
	return nil
}

func ourKindNames() string {
	var names []string
	for _, k := range v1alpha1.Kinds() {
		if k.APIVersion == v1alpha1.APIVersion {
			names = append(names, k.Kind)
		}
	}
	return strings.Join(names, ", ")
}

// typed decodes a document whose fields are already ours (App Mesh v1beta2 and Flagger
// v1beta1 share our field names). Status written by another controller is dropped: it
// describes their world, and ours is recomputed.
func typed(k *v1alpha1.KindInfo, foreign bool) converter {
	return func(c *convContext, m map[string]any) ([]v1alpha1.Object, error) {
		if foreign {
			delete(m, "status")
			m["apiVersion"] = v1alpha1.APIVersion
		}
		if k.Kind == "Mesh" {
			dropMeshNamespace(c, m)
		}
		obj := k.New()
		if err := decodeStrict(m, obj); err != nil {
			return nil, err
		}
		return []v1alpha1.Object{obj}, nil
	}
}

func dropMeshNamespace(c *convContext, m map[string]any) {
	if md, ok := m["metadata"].(map[string]any); ok {
		if ns, ok := md["namespace"].(string); ok && ns != "" {
			delete(md, "namespace")
			c.notice("a Mesh is cluster-scoped; metadata.namespace %q dropped", ns)
		}
	}
}

func convertNamespace(c *convContext, m map[string]any) ([]v1alpha1.Object, error) {
	delete(m, "status")
	ns := &corev1.Namespace{}
	if err := decodeStrict(m, ns); err != nil {
		return nil, err
	}
	return []v1alpha1.Object{ns}, nil
}
