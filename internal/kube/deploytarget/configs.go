package deploytarget

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// configKind tells a ConfigMap reference from a Secret one.
type configKind string

const (
	kindConfigMap configKind = "ConfigMap"
	kindSecret    configKind = "Secret"
)

// configRef names a ConfigMap or Secret a pod template uses.
type configRef struct {
	Kind configKind
	Name string
	// Optional is true when every use of it is optional: a missing one is no error.
	Optional bool
}

// configSet holds the tracked ConfigMaps and Secrets, by kind and name.
type configSet map[configRef]*trackedConfig

// trackedConfig is the content of one ConfigMap or Secret that is part of a revision.
type trackedConfig struct {
	ConfigMap *corev1.ConfigMap
	Secret    *corev1.Secret
}

func (s configSet) has(kind configKind, name string) bool {
	_, ok := s[configRef{Kind: kind, Name: name}]
	return ok
}

// configRefs lists the ConfigMaps and Secrets that spec uses through env, envFrom and
// volumes (projected ones too), in init and regular containers, sorted. A name used as
// optional in one place and required in another is required.
func configRefs(spec *corev1.PodSpec) []configRef {
	found := map[configRef]bool{} // kind+name (Optional false) → optional everywhere
	add := func(kind configKind, name string, optional *bool) {
		if name == "" {
			return
		}
		k := configRef{Kind: kind, Name: name}
		opt := optional != nil && *optional
		if prev, ok := found[k]; ok {
			found[k] = prev && opt
			return
		}
		found[k] = opt
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			for _, e := range c.Env {
				if f := e.ValueFrom; f != nil {
					if r := f.ConfigMapKeyRef; r != nil {
						add(kindConfigMap, r.Name, r.Optional)
					}
					if r := f.SecretKeyRef; r != nil {
						add(kindSecret, r.Name, r.Optional)
					}
				}
			}
			for _, e := range c.EnvFrom {
				if r := e.ConfigMapRef; r != nil {
					add(kindConfigMap, r.Name, r.Optional)
				}
				if r := e.SecretRef; r != nil {
					add(kindSecret, r.Name, r.Optional)
				}
			}
		}
	}
	for _, v := range spec.Volumes {
		if r := v.ConfigMap; r != nil {
			add(kindConfigMap, r.Name, r.Optional)
		}
		if r := v.Secret; r != nil {
			add(kindSecret, r.SecretName, r.Optional)
		}
		if p := v.Projected; p != nil {
			for _, src := range p.Sources {
				if r := src.ConfigMap; r != nil {
					add(kindConfigMap, r.Name, r.Optional)
				}
				if r := src.Secret; r != nil {
					add(kindSecret, r.Name, r.Optional)
				}
			}
		}
	}
	out := make([]configRef, 0, len(found))
	for k, opt := range found {
		k.Optional = opt
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b configRef) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// rewriteConfigRefs points every use of a tracked ConfigMap or Secret in spec at its
// primary copy; untracked ones are left as they are.
func rewriteConfigRefs(spec *corev1.PodSpec, tracked configSet) {
	cm := func(name *string) {
		if tracked.has(kindConfigMap, *name) {
			*name = PrimaryName(*name)
		}
	}
	sec := func(name *string) {
		if tracked.has(kindSecret, *name) {
			*name = PrimaryName(*name)
		}
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			c := &cs[i]
			for j := range c.Env {
				if f := c.Env[j].ValueFrom; f != nil {
					if r := f.ConfigMapKeyRef; r != nil {
						cm(&r.Name)
					}
					if r := f.SecretKeyRef; r != nil {
						sec(&r.Name)
					}
				}
			}
			for j := range c.EnvFrom {
				if r := c.EnvFrom[j].ConfigMapRef; r != nil {
					cm(&r.Name)
				}
				if r := c.EnvFrom[j].SecretRef; r != nil {
					sec(&r.Name)
				}
			}
		}
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if r := v.ConfigMap; r != nil {
			cm(&r.Name)
		}
		if r := v.Secret; r != nil {
			sec(&r.SecretName)
		}
		if p := v.Projected; p != nil {
			for j := range p.Sources {
				if r := p.Sources[j].ConfigMap; r != nil {
					cm(&r.Name)
				}
				if r := p.Sources[j].Secret; r != nil {
					sec(&r.Name)
				}
			}
		}
	}
}

// trackingDisabled reports whether the object asked to be left out of revisions.
func trackingDisabled(m metav1.Object) bool {
	a := m.GetAnnotations()
	return a[AnnotationConfigTracking] == "disabled" || a[AnnotationFlaggerConfigTracking] == "disabled"
}

// loadConfigs reads the ConfigMaps and Secrets the template uses and keeps those that
// are tracked. A missing optional one is skipped; a missing required one is an error,
// since the target's pods cannot start without it either.
func (t *Target) loadConfigs(ctx context.Context, ns string, spec *corev1.PodSpec) (configSet, error) {
	out := configSet{}
	for _, ref := range configRefs(spec) {
		var (
			obj metav1.Object
			tc  *trackedConfig
			err error
		)
		switch ref.Kind {
		case kindConfigMap:
			var cm *corev1.ConfigMap
			cm, err = t.Client.CoreV1().ConfigMaps(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			obj, tc = cm, &trackedConfig{ConfigMap: cm}
		case kindSecret:
			var s *corev1.Secret
			s, err = t.Client.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			if err == nil && s.Type == corev1.SecretTypeServiceAccountToken {
				continue // a token of its service account; copying it would mint nothing
			}
			obj, tc = s, &trackedConfig{Secret: s}
		}
		switch {
		case apierrors.IsNotFound(err) && ref.Optional:
			continue
		case err != nil:
			return nil, fmt.Errorf("%s %s/%s used by the pod template: %w", ref.Kind, ns, ref.Name, err)
		}
		if trackingDisabled(obj) {
			continue
		}
		ref.Optional = false
		out[ref] = tc
	}
	return out, nil
}

// revision hashes the pod template and the contents of the tracked configs. The
// template is hashed as the API server stores it (defaults filled), so reading the same
// Deployment twice gives the same revision.
func revision(tmpl *corev1.PodTemplateSpec, tracked configSet) (string, error) {
	h := sha256.New()
	b, err := json.Marshal(tmpl)
	if err != nil {
		return "", fmt.Errorf("hash pod template: %w", err)
	}
	h.Write(b)
	refs := make([]configRef, 0, len(tracked))
	for r := range tracked {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(a, b configRef) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	for _, r := range refs {
		tc := tracked[r]
		// encoding/json sorts map keys, so equal contents hash equally.
		var content any
		switch {
		case tc.ConfigMap != nil:
			content = struct {
				Data       map[string]string `json:"data"`
				BinaryData map[string][]byte `json:"binaryData"`
			}{tc.ConfigMap.Data, tc.ConfigMap.BinaryData}
		case tc.Secret != nil:
			content = struct {
				Type corev1.SecretType `json:"type"`
				Data map[string][]byte `json:"data"`
			}{tc.Secret.Type, tc.Secret.Data}
		}
		b, err := json.Marshal(struct {
			Kind    configKind `json:"kind"`
			Name    string     `json:"name"`
			Content any        `json:"content"`
		}{r.Kind, r.Name, content})
		if err != nil {
			return "", fmt.Errorf("hash %s %s: %w", r.Kind, r.Name, err)
		}
		h.Write([]byte{0})
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}
