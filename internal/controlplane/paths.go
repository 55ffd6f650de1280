package controlplane

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

const (
	groupPrefix = "/apis/" + v1alpha1.Group + "/" + v1alpha1.Version
	corePrefix  = "/api/v1"
	// ApplyPath takes a batch of objects and stores all of them or none.
	ApplyPath = groupPrefix + "/apply"
)

// resourcePath is a parsed request path.
type resourcePath struct {
	kind        *v1alpha1.KindInfo
	namespace   string // empty: all namespaces (lists) or cluster-scoped
	name        string
	subresource string
}

// parsePath reads a Kubernetes-style resource path.
func parsePath(p string) (resourcePath, error) {
	var rest string
	var core bool
	switch {
	case strings.HasPrefix(p, groupPrefix+"/"):
		rest = strings.TrimPrefix(p, groupPrefix+"/")
	case strings.HasPrefix(p, corePrefix+"/"):
		rest, core = strings.TrimPrefix(p, corePrefix+"/"), true
	default:
		return resourcePath{}, fmt.Errorf("no such path %s", p)
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	var rp resourcePath
	if !core && len(segs) >= 3 && segs[0] == "namespaces" {
		rp.namespace, segs = segs[1], segs[2:]
	}
	k, err := v1alpha1.LookupKind(segs[0])
	if err != nil || k.Plural != segs[0] || (k.APIVersion == "v1") != core {
		return resourcePath{}, fmt.Errorf("no such resource %q under %s", segs[0], strings.TrimSuffix(p, rest))
	}
	rp.kind = k
	if rp.namespace != "" && !k.Namespaced {
		return resourcePath{}, fmt.Errorf("%s are not namespaced", k.Plural)
	}
	switch len(segs) {
	case 1:
	case 2:
		rp.name = segs[1]
	case 3:
		rp.name, rp.subresource = segs[1], segs[2]
		if rp.subresource != "status" {
			return resourcePath{}, fmt.Errorf("no subresource %q", rp.subresource)
		}
	default:
		return resourcePath{}, fmt.Errorf("no such path %s", p)
	}
	if rp.name != "" && k.Namespaced && rp.namespace == "" {
		return resourcePath{}, fmt.Errorf("%s are namespaced: use %s/namespaces/NS/%s/%s", k.Plural, groupPrefix, k.Plural, rp.name)
	}
	return rp, nil
}

// ResourceURL builds the path of a kind, namespace and optional name.
func ResourceURL(k *v1alpha1.KindInfo, namespace, name string) string {
	var b strings.Builder
	if k.APIVersion == "v1" {
		b.WriteString(corePrefix)
	} else {
		b.WriteString(groupPrefix)
	}
	if k.Namespaced && namespace != "" {
		b.WriteString("/namespaces/" + url.PathEscape(namespace))
	}
	b.WriteString("/" + k.Plural)
	if name != "" {
		b.WriteString("/" + url.PathEscape(name))
	}
	return b.String()
}
