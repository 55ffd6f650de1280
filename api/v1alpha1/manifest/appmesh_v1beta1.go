package manifest

import (
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// The shapes of App Mesh's appmesh.k8s.aws/v1beta1 API, the one the case-study
// manifests use. They are read strictly and rewritten in v1beta2's shape:
//   - meshName becomes meshRef;
//   - a VirtualService carrying routes becomes a VirtualService whose provider is a
//     VirtualRouter, plus that VirtualRouter with the routes;
//   - http/tcp routes become httpRoute/tcpRoute, virtualNodeName becomes virtualNodeRef,
//     perRetryTimeoutMillis becomes perRetryTimeout in milliseconds;
//   - dns.hostName becomes dns.hostname, cloudMap becomes awsCloudMap;
//   - a backend's virtualServiceName is kept as is: it names a virtual service by its
//     App Mesh name, which the mesh compiler resolves.
// In v1beta1 an object's name was its App Mesh name, so awsName is set to it.

type v1b1Meta struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Status     map[string]any    `json:"status,omitempty"`
}

type v1b1Mesh struct {
	v1b1Meta `json:",inline"`
	Spec     struct {
		ServiceDiscoveryType  string `json:"serviceDiscoveryType,omitempty"`
		CloudMapNamespaceName string `json:"cloudMapNamespaceName,omitempty"`
	} `json:"spec"`
}

type v1b1PortMapping struct {
	Port     int64  `json:"port"`
	Protocol string `json:"protocol"`
}

type v1b1HealthCheck struct {
	HealthyThreshold   *int64  `json:"healthyThreshold,omitempty"`
	IntervalMillis     *int64  `json:"intervalMillis,omitempty"`
	Path               *string `json:"path,omitempty"`
	Port               *int64  `json:"port,omitempty"`
	Protocol           *string `json:"protocol,omitempty"`
	TimeoutMillis      *int64  `json:"timeoutMillis,omitempty"`
	UnhealthyThreshold *int64  `json:"unhealthyThreshold,omitempty"`
}

type v1b1VirtualNode struct {
	v1b1Meta `json:",inline"`
	Spec     struct {
		MeshName  string `json:"meshName"`
		Listeners []struct {
			PortMapping v1b1PortMapping  `json:"portMapping"`
			HealthCheck *v1b1HealthCheck `json:"healthCheck,omitempty"`
		} `json:"listeners,omitempty"`
		ServiceDiscovery *struct {
			CloudMap *struct {
				ServiceName   string            `json:"serviceName"`
				NamespaceName string            `json:"namespaceName"`
				Attributes    map[string]string `json:"attributes,omitempty"`
			} `json:"cloudMap,omitempty"`
			DNS *struct {
				HostName string `json:"hostName"`
			} `json:"dns,omitempty"`
		} `json:"serviceDiscovery,omitempty"`
		Backends []struct {
			VirtualService struct {
				VirtualServiceName string `json:"virtualServiceName"`
			} `json:"virtualService"`
		} `json:"backends,omitempty"`
		Logging *struct {
			AccessLog *struct {
				File *struct {
					Path string `json:"path"`
				} `json:"file"`
			} `json:"accessLog"`
		} `json:"logging,omitempty"`
	} `json:"spec"`
}

type v1b1WeightedTarget struct {
	VirtualNodeName string `json:"virtualNodeName"`
	Weight          int64  `json:"weight"`
}

type v1b1HeaderMatch struct {
	Name   string `json:"name"`
	Invert *bool  `json:"invert,omitempty"`
	Match  *struct {
		Exact  *string `json:"exact,omitempty"`
		Prefix *string `json:"prefix,omitempty"`
		Suffix *string `json:"suffix,omitempty"`
		Regex  *string `json:"regex,omitempty"`
		Range  *struct {
			Start *int64 `json:"start,omitempty"`
			End   *int64 `json:"end,omitempty"`
		} `json:"range,omitempty"`
	} `json:"match,omitempty"`
}

type v1b1RetryPolicy struct {
	PerRetryTimeoutMillis *int64   `json:"perRetryTimeoutMillis,omitempty"`
	MaxRetries            *int64   `json:"maxRetries,omitempty"`
	HTTPRetryEvents       []string `json:"httpRetryEvents,omitempty"`
	TCPRetryEvents        []string `json:"tcpRetryEvents,omitempty"`
}

type v1b1HTTPRoute struct {
	Match struct {
		Prefix  string            `json:"prefix"`
		Method  *string           `json:"method,omitempty"`
		Scheme  *string           `json:"scheme,omitempty"`
		Headers []v1b1HeaderMatch `json:"headers,omitempty"`
	} `json:"match"`
	Action struct {
		WeightedTargets []v1b1WeightedTarget `json:"weightedTargets"`
	} `json:"action"`
	RetryPolicy *v1b1RetryPolicy `json:"retryPolicy,omitempty"`
}

type v1b1VirtualService struct {
	v1b1Meta `json:",inline"`
	Spec     struct {
		MeshName      string `json:"meshName"`
		VirtualRouter *struct {
			Name      string `json:"name"`
			Listeners []struct {
				PortMapping v1b1PortMapping `json:"portMapping"`
			} `json:"listeners,omitempty"`
		} `json:"virtualRouter,omitempty"`
		Routes []struct {
			Name     string         `json:"name"`
			Priority *int64         `json:"priority,omitempty"`
			HTTP     *v1b1HTTPRoute `json:"http,omitempty"`
			TCP      *struct {
				Action struct {
					WeightedTargets []v1b1WeightedTarget `json:"weightedTargets"`
				} `json:"action"`
			} `json:"tcp,omitempty"`
		} `json:"routes,omitempty"`
	} `json:"spec"`
}

// meta returns the metadata every converted object starts from.
func (m *v1b1Meta) meta() map[string]any {
	md := map[string]any{"name": m.Metadata.Name}
	if m.Metadata.Namespace != "" {
		md["namespace"] = m.Metadata.Namespace
	}
	if len(m.Metadata.Labels) > 0 {
		md["labels"] = m.Metadata.Labels
	}
	if len(m.Metadata.Annotations) > 0 {
		md["annotations"] = m.Metadata.Annotations
	}
	return md
}

func object(kind string, md map[string]any, spec map[string]any) map[string]any {
	return map[string]any{"apiVersion": v1alpha1.APIVersion, "kind": kind, "metadata": md, "spec": spec}
}

// build decodes a v1beta2-shaped map into our typed object.
func build(kind string, v map[string]any) (v1alpha1.Object, error) {
	k := ourKind(kind)
	obj := k.New()
	if err := decodeStrict(v, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func convertMeshV1beta1(c *convContext, m map[string]any) ([]v1alpha1.Object, error) {
	var in v1b1Mesh
	if err := decodeStrict(m, &in); err != nil {
		return nil, err
	}
	md := in.meta()
	if ns, ok := md["namespace"]; ok {
		delete(md, "namespace")
		c.notice("a Mesh is cluster-scoped; metadata.namespace %q dropped", ns)
	}
	if in.Spec.CloudMapNamespaceName != "" {
		c.notice("spec.cloudMapNamespaceName %q dropped: Canarymesh discovers endpoints by DNS, Workloads or static lists", in.Spec.CloudMapNamespaceName)
	}
	if t := in.Spec.ServiceDiscoveryType; t != "" && t != "dns" && t != "Dns" {
		return nil, fieldErr{field: "spec.serviceDiscoveryType", msg: "\"" + t + "\" is not dns"}
	}
	// v1beta1 objects name their mesh themselves, so the mesh selects no namespaces.
	obj, err := build("Mesh", object("Mesh", md, map[string]any{"awsName": in.Metadata.Name}))
	if err != nil {
		return nil, err
	}
	return []v1alpha1.Object{obj}, nil
}

func meshRef(name string) map[string]any { return map[string]any{"name": name} }

func convertVirtualNodeV1beta1(c *convContext, m map[string]any) ([]v1alpha1.Object, error) {
	var in v1b1VirtualNode
	if err := decodeStrict(m, &in); err != nil {
		return nil, err
	}
	s := in.Spec
	spec := map[string]any{"awsName": in.Metadata.Name}
	if s.MeshName != "" {
		spec["meshRef"] = meshRef(s.MeshName)
	}
	var listeners []any
	for _, l := range s.Listeners {
		lm := map[string]any{"portMapping": map[string]any{"port": l.PortMapping.Port, "protocol": l.PortMapping.Protocol}}
		if hc := l.HealthCheck; hc != nil {
			h := map[string]any{}
			setPtr(h, "healthyThreshold", hc.HealthyThreshold)
			setPtr(h, "intervalMillis", hc.IntervalMillis)
			setPtr(h, "path", hc.Path)
			setPtr(h, "port", hc.Port)
			setPtr(h, "protocol", hc.Protocol)
			setPtr(h, "timeoutMillis", hc.TimeoutMillis)
			setPtr(h, "unhealthyThreshold", hc.UnhealthyThreshold)
			lm["healthCheck"] = h
		}
		listeners = append(listeners, lm)
	}
	if listeners != nil {
		spec["listeners"] = listeners
	}
	if sd := s.ServiceDiscovery; sd != nil {
		out := map[string]any{}
		if sd.DNS != nil {
			out["dns"] = map[string]any{"hostname": sd.DNS.HostName}
		}
		if cm := sd.CloudMap; cm != nil {
			var attrs []any
			for _, k := range sortedKeys(cm.Attributes) {
				attrs = append(attrs, map[string]any{"key": k, "value": cm.Attributes[k]})
			}
			cmo := map[string]any{"namespaceName": cm.NamespaceName, "serviceName": cm.ServiceName}
			if attrs != nil {
				cmo["attributes"] = attrs
			}
			out["awsCloudMap"] = cmo
		}
		spec["serviceDiscovery"] = out
	}
	var backends []any
	for _, b := range s.Backends {
		backends = append(backends, map[string]any{"virtualService": map[string]any{"virtualServiceName": b.VirtualService.VirtualServiceName}})
	}
	if backends != nil {
		spec["backends"] = backends
	}
	if lg := s.Logging; lg != nil && lg.AccessLog != nil && lg.AccessLog.File != nil {
		spec["logging"] = map[string]any{"accessLog": map[string]any{"file": map[string]any{"path": lg.AccessLog.File.Path}}}
	}
	obj, err := build("VirtualNode", object("VirtualNode", in.meta(), spec))
	if err != nil {
		return nil, err
	}
	return []v1alpha1.Object{obj}, nil
}

func convertVirtualServiceV1beta1(c *convContext, m map[string]any) ([]v1alpha1.Object, error) {
	var in v1b1VirtualService
	if err := decodeStrict(m, &in); err != nil {
		return nil, err
	}
	s := in.Spec
	vsSpec := map[string]any{"awsName": in.Metadata.Name}
	if s.MeshName != "" {
		vsSpec["meshRef"] = meshRef(s.MeshName)
	}
	if s.VirtualRouter == nil {
		if len(s.Routes) > 0 {
			return nil, fieldErr{field: "spec.virtualRouter", msg: "is required when routes are given: it names the router the routes belong to"}
		}
		vs, err := build("VirtualService", object("VirtualService", in.meta(), vsSpec))
		if err != nil {
			return nil, err
		}
		return []v1alpha1.Object{vs}, nil
	}
	vrName := s.VirtualRouter.Name
	vsSpec["provider"] = map[string]any{"virtualRouter": map[string]any{"virtualRouterRef": map[string]any{"name": vrName}}}

	vrSpec := map[string]any{"awsName": vrName}
	if s.MeshName != "" {
		vrSpec["meshRef"] = meshRef(s.MeshName)
	}
	var listeners []any
	for _, l := range s.VirtualRouter.Listeners {
		listeners = append(listeners, map[string]any{"portMapping": map[string]any{"port": l.PortMapping.Port, "protocol": l.PortMapping.Protocol}})
	}
	if listeners != nil {
		vrSpec["listeners"] = listeners
	}
	var routes []any
	for _, r := range s.Routes {
		route := map[string]any{"name": r.Name}
		if r.Priority != nil {
			route["priority"] = *r.Priority
		}
		if h := r.HTTP; h != nil {
			route["httpRoute"] = convertHTTPRouteV1beta1(h)
		}
		if t := r.TCP; t != nil {
			route["tcpRoute"] = map[string]any{"action": map[string]any{"weightedTargets": targetsV1beta1(t.Action.WeightedTargets)}}
		}
		routes = append(routes, route)
	}
	if routes != nil {
		vrSpec["routes"] = routes
	}
	vrMeta := map[string]any{"name": vrName}
	if in.Metadata.Namespace != "" {
		vrMeta["namespace"] = in.Metadata.Namespace
	}
	vs, err := build("VirtualService", object("VirtualService", in.meta(), vsSpec))
	if err != nil {
		return nil, err
	}
	vr, err := build("VirtualRouter", object("VirtualRouter", vrMeta, vrSpec))
	if err != nil {
		return nil, err
	}
	return []v1alpha1.Object{vs, vr}, nil
}

func convertHTTPRouteV1beta1(h *v1b1HTTPRoute) map[string]any {
	match := map[string]any{"prefix": h.Match.Prefix}
	setPtr(match, "method", h.Match.Method)
	setPtr(match, "scheme", h.Match.Scheme)
	var headers []any
	for _, hm := range h.Match.Headers {
		out := map[string]any{"name": hm.Name}
		setPtr(out, "invert", hm.Invert)
		if mm := hm.Match; mm != nil {
			mo := map[string]any{}
			setPtr(mo, "exact", mm.Exact)
			setPtr(mo, "prefix", mm.Prefix)
			setPtr(mo, "suffix", mm.Suffix)
			setPtr(mo, "regex", mm.Regex)
			if r := mm.Range; r != nil {
				ro := map[string]any{}
				setPtr(ro, "start", r.Start)
				setPtr(ro, "end", r.End)
				mo["range"] = ro
			}
			out["match"] = mo
		}
		headers = append(headers, out)
	}
	if headers != nil {
		match["headers"] = headers
	}
	out := map[string]any{"match": match, "action": map[string]any{"weightedTargets": targetsV1beta1(h.Action.WeightedTargets)}}
	if rp := h.RetryPolicy; rp != nil {
		r := map[string]any{}
		if rp.PerRetryTimeoutMillis != nil {
			r["perRetryTimeout"] = map[string]any{"unit": "ms", "value": *rp.PerRetryTimeoutMillis}
		}
		setPtr(r, "maxRetries", rp.MaxRetries)
		if rp.HTTPRetryEvents != nil {
			r["httpRetryEvents"] = rp.HTTPRetryEvents
		}
		if rp.TCPRetryEvents != nil {
			r["tcpRetryEvents"] = rp.TCPRetryEvents
		}
		out["retryPolicy"] = r
	}
	return out
}

func targetsV1beta1(ts []v1b1WeightedTarget) []any {
	out := make([]any, 0, len(ts))
	for _, t := range ts {
		out = append(out, map[string]any{"virtualNodeRef": map[string]any{"name": t.VirtualNodeName}, "weight": t.Weight})
	}
	return out
}

// setPtr sets m[k] to *p when p is not nil.
func setPtr[T any](m map[string]any, k string, p *T) {
	if p != nil {
		m[k] = *p
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
