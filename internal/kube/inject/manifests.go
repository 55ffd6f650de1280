package inject

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
)

// ManifestOptions steer InjectManifests.
type ManifestOptions struct {
	Config Config
	// VirtualNode names the node of every workload (--virtual-node); otherwise the
	// template's annotation, a VirtualNode of the input whose podSelector matches, or the
	// workload's own name (App Mesh's first injector's default).
	VirtualNode string
	// Mesh is recorded in the template's canarymesh.dev/mesh annotation (--mesh).
	Mesh string
	// Namespace of documents that name none; "default" if empty.
	Namespace string
}

// Source is one input file.
type Source struct {
	Name string // as the user named it; "-" for standard input
	Data []byte
}

// document is one YAML document of a source.
type document struct {
	src   string
	index int // 1-based
	line  int // where it starts
	text  []byte
	obj   map[string]any // nil for an empty document
	node  *yaml.Node
}

var docSeparator = regexp.MustCompile(`^---(\s|$)`)

// splitDocuments cuts a source at its '---' lines, keeping each document's text as
// written so untouched documents are printed unchanged.
func splitDocuments(src Source) []*document {
	var docs []*document
	cur := &document{src: src.Name, line: 1}
	lines := bytes.SplitAfter(src.Data, []byte("\n"))
	for i, l := range lines {
		if docSeparator.Match(l) {
			docs = append(docs, cur)
			cur = &document{src: src.Name, line: i + 2}
			rest := bytes.TrimSpace(l[3:])
			if len(rest) > 0 {
				cur.text = append(cur.text, rest...)
				cur.text = append(cur.text, '\n')
				cur.line = i + 1
			}
			continue
		}
		cur.text = append(cur.text, l...)
	}
	docs = append(docs, cur)
	n := 0
	out := docs[:0]
	for _, d := range docs {
		if len(bytes.TrimSpace(stripComments(d.text))) == 0 {
			continue
		}
		n++
		d.index = n
		out = append(out, d)
	}
	return out
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
		}
	}
	return out
}

// errorAt is errorf with the line of the field: rel is its path under node, field its
// whole path in the document.
func (d *document) errorAt(node *yaml.Node, rel, field, format string, a ...any) error {
	err := d.errorf(field, format, a...)
	if l := lineOf(node, rel); l > 0 {
		err.(*manifest.Error).Line = d.line + l - 1
	}
	return err
}

// errorf names the file, line, document, object and field of a problem.
func (d *document) errorf(field, format string, a ...any) error {
	e := &manifest.Error{File: d.src, Line: d.line, Doc: d.index, Field: field, Msg: fmt.Sprintf(format, a...)}
	if d.obj != nil {
		e.Kind, _ = d.obj["kind"].(string)
		e.Name = objName(d.obj)
	}
	return e
}

func objName(m map[string]any) string {
	md, _ := m["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if ns, _ := md["namespace"].(string); ns != "" {
		return ns + "/" + name
	}
	return name
}

var (
	yamlLine     = regexp.MustCompile(`^yaml: line (\d+): `)
	unknownField = regexp.MustCompile(`^unknown field "([^"]+)"$`)
)

func (d *document) parse() error {
	var n yaml.Node
	if err := yaml.Unmarshal(d.text, &n); err != nil {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			d.line += n - 1
			msg = msg[len(m[0]):]
		}
		return d.errorf("", "not valid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
	}
	if key, first, again, dup := duplicateKey(&n); dup {
		d.line += again - 1
		return d.errorf("", "key %q is defined a second time (first at line %d); is a '---' document separator missing?", key, first+d.line-again)
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return d.errorf("", "%s", strings.TrimSpace(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")))
	}
	// Through JSON, so numbers and maps are as Kubernetes' decoders see them.
	j, err := json.Marshal(v)
	if err != nil {
		return d.errorf("", "cannot be read as JSON: %v", err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(j, &m); err != nil {
		return d.errorf("", "expected a mapping with apiVersion and kind")
	}
	d.obj, d.node = m, &n
	if k, _ := m["kind"].(string); k == "" {
		return d.errorf("kind", "is required")
	}
	return nil
}

// meshObjects are the VirtualNodes and VirtualGateways found in the input.
type meshObjects struct {
	nodes    []*v1alpha1.VirtualNode
	gateways []*v1alpha1.VirtualGateway
}

// templatePath is where each workload kind keeps its pod template; nil for a Pod itself.
var templatePath = map[string][]string{
	"Pod":                   nil,
	"Deployment":            {"spec", "template"},
	"StatefulSet":           {"spec", "template"},
	"DaemonSet":             {"spec", "template"},
	"ReplicaSet":            {"spec", "template"},
	"ReplicationController": {"spec", "template"},
	"Job":                   {"spec", "template"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template"},
}

// InjectManifests injects the proxy into every workload of the sources, offline, and
// returns the documents as a YAML stream, plus one note per workload. Other documents
// are printed as they were. VirtualNodes among the sources (any API version the
// manifest package reads) are used to match workloads. With any error nothing is
// returned; every error names the file, line, document, object and field.
func InjectManifests(srcs []Source, o ManifestOptions) ([]byte, []string, error) {
	if err := o.Config.validate(); err != nil {
		return nil, nil, err
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	var docs []*document
	var errs []error
	var mesh meshObjects
	for _, src := range srcs {
		for _, d := range splitDocuments(src) {
			if err := d.parse(); err != nil {
				errs = append(errs, err)
				continue
			}
			docs = append(docs, d)
			if k, _ := d.obj["kind"].(string); k == "VirtualNode" || k == "VirtualGateway" {
				// Padded so the decoder's line numbers are the file's.
				padded := append(bytes.Repeat([]byte("\n"), d.line-1), d.text...)
				res, err := manifest.Decode(src.Name, padded, manifest.Options{Namespace: o.Namespace})
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for _, it := range res.Items {
					switch obj := it.Object.(type) {
					case *v1alpha1.VirtualNode:
						mesh.nodes = append(mesh.nodes, obj)
					case *v1alpha1.VirtualGateway:
						mesh.gateways = append(mesh.gateways, obj)
					}
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	var out bytes.Buffer
	var notes []string
	for i, d := range docs {
		if i > 0 {
			out.WriteString("---\n")
		}
		changed, n, err := o.injectObject(d, d.obj, d.node, "", &mesh)
		notes = append(notes, n...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !changed {
			out.Write(d.text)
			if !bytes.HasSuffix(d.text, []byte("\n")) {
				out.WriteByte('\n')
			}
			continue
		}
		y, err := encodeNode(d.node)
		if err != nil {
			errs = append(errs, d.errorf("", "cannot be written back: %v", err))
			continue
		}
		out.Write(y)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return out.Bytes(), notes, nil
}

// injectObject injects one object (recursing into a List's items), in place; prefix is
// its field path within the document.
func (o ManifestOptions) injectObject(d *document, obj map[string]any, node *yaml.Node, prefix string, mesh *meshObjects) (bool, []string, error) {
	kind, _ := obj["kind"].(string)
	if items, ok := obj["items"].([]any); ok && strings.HasSuffix(kind, "List") {
		changed := false
		var notes []string
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return false, nil, d.errorf(fmt.Sprintf("%sitems[%d]", prefix, i), "expected an object")
			}
			var itemNode *yaml.Node
			if seq := mapGet(node, "items"); seq != nil && i < len(seq.Content) {
				itemNode = seq.Content[i]
			}
			c, n, err := o.injectObject(d, m, itemNode, fmt.Sprintf("%sitems[%d].", prefix, i), mesh)
			if err != nil {
				return false, nil, err
			}
			changed = changed || c
			notes = append(notes, n...)
		}
		return changed, notes, nil
	}
	path, ok := templatePath[kind]
	if !ok {
		return false, nil, nil
	}
	tmpl, tmplNode := obj, resolve(node)
	field := prefix
	for _, p := range path {
		next, ok := tmpl[p].(map[string]any)
		if !ok {
			return false, nil, d.errorf(field+p, "is required in a %s", kind)
		}
		tmpl, tmplNode, field = next, mapGet(tmplNode, p), field+p+"."
	}
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	ns, _ := md["namespace"].(string)
	if ns == "" {
		ns = o.Namespace
	}
	what := fmt.Sprintf("%s:%d: %s %s/%s", d.src, d.line, kind, ns, name)
	view := tmpl
	if path == nil { // a Pod: its template is its metadata and spec
		view = map[string]any{"metadata": obj["metadata"], "spec": obj["spec"]}
	}
	raw, err := json.Marshal(view)
	if err != nil {
		return false, nil, d.errorf(strings.TrimSuffix(field, "."), "%v", err)
	}
	var pt corev1.PodTemplateSpec
	strict, err := kjson.UnmarshalStrict(raw, &pt)
	if err == nil && len(strict) > 0 {
		err = strict[0]
	}
	if err != nil {
		msg := err.Error()
		rel := ""
		if m := unknownField.FindStringSubmatch(msg); m != nil {
			rel, msg = m[1], "unknown field"
		}
		return false, nil, d.errorAt(tmplNode, rel, field+rel, "not a valid pod template: %s", msg)
	}
	pod := &corev1.Pod{ObjectMeta: pt.ObjectMeta, Spec: pt.Spec}
	if pod.Name == "" && pod.GenerateName == "" && path != nil {
		pod.GenerateName = name + "-" // as the workload's controller names its pods
	}
	in := Input{Pod: pod, Namespace: ns, VirtualNodes: mesh.nodes, VirtualGateways: mesh.gateways, Owner: name, Force: true, VirtualNode: o.VirtualNode}
	dec, err := o.Config.Decide(in)
	if err == nil && !dec.Inject && !IsInjected(&pod.Spec) && strings.HasPrefix(dec.Reason, "no VirtualNode") && name != "" {
		in.VirtualNode = name
		dec, err = o.Config.Decide(in)
	}
	if err != nil {
		msg := err.Error()
		if rel, rest, ok := strings.Cut(msg, ": "); ok && (strings.HasPrefix(rel, "metadata.") || strings.HasPrefix(rel, "spec.")) {
			return false, nil, d.errorAt(tmplNode, rel, field+rel, "%s", rest)
		}
		return false, nil, d.errorAt(tmplNode, "", "", "%s", msg)
	}
	if !dec.Inject {
		return false, []string{what + ": skipped: " + dec.Reason}, nil
	}
	if o.Mesh != "" {
		dec.Patch.Annotations[AnnotationMesh] = o.Mesh
	}
	if err := applyToNode(tmplNode, dec.Patch); err != nil {
		return false, nil, d.errorf(strings.TrimSuffix(field, "."), "%v", err)
	}
	return true, []string{what + ": injected (VirtualNode " + dec.VirtualNode + ")"}, nil
}

// duplicateKey finds the first mapping key written twice (the sign of a missing '---'),
// with the lines, relative to the document, of both.
func duplicateKey(n *yaml.Node) (key string, first, again int, dup bool) {
	if n.Kind == yaml.MappingNode {
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if l, ok := seen[k.Value]; ok {
				return k.Value, l, k.Line, true
			}
			seen[k.Value] = k.Line
		}
	}
	for _, c := range n.Content {
		if key, first, again, dup = duplicateKey(c); dup {
			return key, first, again, true
		}
	}
	return "", 0, 0, false
}
