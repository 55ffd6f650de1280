package deploy

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

//go:embed crds compat-crds
var files embed.FS

// CRDs returns the canarymesh.dev CustomResourceDefinitions, sorted by name.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	return ParseCRDs(files, "crds")
}

// CompatCRDs returns the CustomResourceDefinitions that serve Canarymesh's schemas as
// appmesh.k8s.aws/v1beta2 and flagger.app/v1beta1, sorted by name.
func CompatCRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	return ParseCRDs(files, "compat-crds")
}

// ParseCRDs reads every CustomResourceDefinition in the .yaml files of dir in fsys (but
// kustomization.yaml),
// strictly: an unknown field or another kind of object is an error naming the file and
// document.
func ParseCRDs(fsys fs.FS, dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read CRD directory %s: %w", dir, err)
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, ent := range entries {
		if ent.IsDir() || !strings.HasSuffix(ent.Name(), ".yaml") || ent.Name() == "kustomization.yaml" {
			continue
		}
		name := path.Join(dir, ent.Name())
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		crds, err := parseCRDFile(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, crds...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func parseCRDFile(b []byte) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out []*apiextensionsv1.CustomResourceDefinition
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "---" {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(raw, crd); err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("document %d: kind %q, want CustomResourceDefinition", doc, crd.Kind)
		}
		out = append(out, crd)
	}
}

// Install creates the CRDs, or updates those that exist, and waits until every one is
// established (its names accepted and its API served) or ctx ends.
func Install(ctx context.Context, c apiextensionsclient.Interface, crds []*apiextensionsv1.CustomResourceDefinition) error {
	api := c.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range crds {
		want := crd.DeepCopy()
		_, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: "canarymesh"})
		if apierrors.IsAlreadyExists(err) {
			var cur *apiextensionsv1.CustomResourceDefinition
			cur, err = api.Get(ctx, crd.Name, metav1.GetOptions{})
			if err == nil {
				want.ResourceVersion = cur.ResourceVersion
				_, err = api.Update(ctx, want, metav1.UpdateOptions{FieldManager: "canarymesh"})
			}
		}
		if err != nil {
			return fmt.Errorf("install CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		if err := waitEstablished(ctx, c, crd.Name); err != nil {
			return err
		}
	}
	return nil
}

func waitEstablished(ctx context.Context, c apiextensionsclient.Interface, name string) error {
	for {
		crd, err := c.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("CRD %s: %w", name, err)
		}
		established := false
		for _, cond := range crd.Status.Conditions {
			switch {
			case cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue:
				established = true
			case cond.Type == apiextensionsv1.NamesAccepted && cond.Status == apiextensionsv1.ConditionFalse:
				return fmt.Errorf("CRD %s: names not accepted: %s", name, cond.Message)
			}
		}
		if established {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not established: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
