package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
	kjson "sigs.k8s.io/json"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Item is one object read from a manifest, with where it came from.
type Item struct {
	File   string
	Doc    int // 1-based document index in File
	Line   int // line where the document starts
	Object v1alpha1.Object

	node *yaml.Node
}

// Locate returns the line in the source of a field path of Item's object, for errors
// found after decoding (for example by the server).
func (it *Item) Locate(fieldPath string) int {
	if it.node == nil {
		return it.Line
	}
	return lineOf(it.node, fieldPath)
}

// ErrorAt builds an Error for this item.
func (it *Item) ErrorAt(fieldPath, msg string) *Error {
	return &Error{File: it.File, Line: it.Locate(fieldPath), Doc: it.Doc,
		Kind: it.Object.GetObjectKind().GroupVersionKind().Kind, Name: nameOf(it.Object), Field: fieldPath, Msg: msg}
}

// Result is what one input decodes to.
type Result struct {
	Items   []*Item
	Notices []string // one line each: documents skipped, fields dropped, definitions replaced
}

// Options steer decoding.
type Options struct {
	// Namespace is given to namespaced objects that name none; "default" if empty. When
	// Enforce is set, a document naming another namespace is an error, as with kubectl -n.
	Namespace string
	Enforce   bool
}

func (o Options) namespace() string {
	if o.Namespace == "" {
		return "default"
	}
	return o.Namespace
}

// Decode reads every document of one file. It returns all problems at once as Errors;
// with any problem the Result is nil, so nothing of a bad input is applied.
func Decode(file string, data []byte, opts Options) (*Result, error) {
	res := &Result{}
	var errs Errors
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &Error{File: file, Line: yamlErrLine(err), Doc: doc, Msg: cleanYAMLErr(err)})
			break
		}
		if isEmptyDoc(&n) {
			doc--
			continue
		}
		it, notices, derrs := decodeDoc(file, doc, &n, opts)
		errs = append(errs, derrs...)
		res.Notices = append(res.Notices, notices...)
		res.Items = append(res.Items, it...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return res, nil
}

func isEmptyDoc(n *yaml.Node) bool {
	if n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
		return true
	}
	c := n.Content[0]
	return c.Kind == yaml.ScalarNode && c.Tag == "!!null"
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

func yamlErrLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func cleanYAMLErr(err error) string {
	return "not valid YAML: " + yamlLineRE.ReplaceAllString(err.Error(), "")
}

// header is what every document must say about itself.
type header struct {
	apiVersion, kind, name, namespace string
}

func (h header) String() string {
	if h.namespace != "" {
		return h.namespace + "/" + h.name
	}
	return h.name
}

func decodeDoc(file string, doc int, n *yaml.Node, opts Options) ([]*Item, []string, Errors) {
	root := n.Content[0]
	fail := func(line int, field, format string, args ...any) Errors {
		return Errors{{File: file, Line: line, Doc: doc, Field: field, Msg: fmt.Sprintf(format, args...)}}
	}
	if key, first, again, dup := checkDuplicateKeys(n); dup {
		return nil, nil, fail(again, "", "key %q is defined a second time (first at line %d); is a '---' document separator missing?", key, first)
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, fail(root.Line, "", "expected a mapping with apiVersion and kind, found a %s", kindName(root))
	}
	v, err := toJSONValue(root)
	if err != nil {
		return nil, nil, fail(root.Line, "", "%v", err)
	}
	m := v.(map[string]any)
	h := readHeader(m)
	if h.apiVersion == "" {
		return nil, nil, fail(root.Line, "apiVersion", "is required")
	}
	if h.kind == "" {
		return nil, nil, fail(root.Line, "kind", "is required")
	}
	conv, skip, err := converterFor(h)
	if err != nil {
		return nil, nil, Errors{{File: file, Line: lineOf(n, "apiVersion"), Doc: doc, Kind: h.kind, Name: h.String(), Field: "apiVersion", Msg: err.Error()}}
	}
	if skip != "" {
		return nil, []string{fmt.Sprintf("%s:%d: skipped %s %s %s: %s", file, root.Line, h.apiVersion, h.kind, h.String(), skip)}, nil
	}
	cctx := &convContext{file: file, line: root.Line, header: h, opts: opts}
	objs, err := conv(cctx, m)
	if err != nil {
		var fe fieldErr
		if errors.As(err, &fe) {
			return nil, nil, Errors{{File: file, Line: lineOf(n, fe.field), Doc: doc, Kind: h.kind, Name: h.String(), Field: fe.field, Msg: fe.msg}}
		}
		return nil, nil, Errors{{File: file, Line: root.Line, Doc: doc, Kind: h.kind, Name: h.String(), Msg: err.Error()}}
	}
	var items []*Item
	var errs Errors
	for _, o := range objs {
		it := &Item{File: file, Doc: doc, Line: root.Line, Object: o, node: n}
		if err := setNamespace(it, opts); err != nil {
			errs = append(errs, err)
			continue
		}
		if d, ok := o.(v1alpha1.Defaulter); ok {
			d.Default()
		}
		if val, ok := o.(v1alpha1.Validator); ok {
			for _, fe := range val.Validate() {
				errs = append(errs, it.ErrorAt(fe.Field, fe.Detail))
			}
		}
		items = append(items, it)
	}
	return items, cctx.notices, errs
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "plain value"
	}
	return "node"
}

func readHeader(m map[string]any) header {
	var h header
	h.apiVersion, _ = m["apiVersion"].(string)
	h.kind, _ = m["kind"].(string)
	if md, ok := m["metadata"].(map[string]any); ok {
		h.name, _ = md["name"].(string)
		h.namespace, _ = md["namespace"].(string)
	}
	return h
}

func setNamespace(it *Item, opts Options) *Error {
	k, err := v1alpha1.KindOf(it.Object)
	if err != nil {
		return it.ErrorAt("", err.Error())
	}
	it.Object.GetObjectKind().SetGroupVersionKind(k.GroupVersionKind())
	if !k.Namespaced {
		return nil
	}
	ns := it.Object.GetNamespace()
	switch {
	case ns == "":
		it.Object.SetNamespace(opts.namespace())
	case opts.Enforce && opts.Namespace != "" && ns != opts.Namespace:
		return it.ErrorAt("metadata.namespace", fmt.Sprintf("%q does not match the namespace %q given on the command line", ns, opts.Namespace))
	}
	return nil
}

func nameOf(o v1alpha1.Object) string {
	if o.GetNamespace() != "" {
		return o.GetNamespace() + "/" + o.GetName()
	}
	return o.GetName()
}

// toJSONValue turns a YAML node into the values encoding/json produces, resolving each
// scalar by its YAML 1.2 tag.
func toJSONValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return toJSONValue(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a mapping key must be a plain value", k.Line)
			}
			if k.Value == "<<" {
				return nil, fmt.Errorf("line %d: YAML merge keys (<<) are not supported", k.Line)
			}
			v, err := toJSONValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := toJSONValue(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return i, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("line %d: %s is not a finite number", n.Line, n.Value)
		}
		return f, nil
	default: // !!str, !!timestamp, !!binary and custom tags stay text
		return n.Value, nil
	}
}

// fieldErr is a conversion problem at a field path of the source document.
type fieldErr struct{ field, msg string }

func (e fieldErr) Error() string { return e.field + ": " + e.msg }

// decodeStrict decodes a JSON-shaped value into obj, refusing unknown and duplicate fields.
func decodeStrict(v any, obj any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(data, obj)
	if err != nil {
		return typeError(data, obj, err)
	}
	if len(strict) > 0 {
		return strictError(strict[0])
	}
	return nil
}

// typeError explains a value of the wrong type. The strict decoder's error carries no Go
// type to inspect, so the standard decoder, which fails on the same value, is asked again
// for its typed error.
func typeError(data []byte, obj any, err error) error {
	fresh := reflect.New(reflect.TypeOf(obj).Elem()).Interface()
	var te *json.UnmarshalTypeError
	if !errors.As(json.Unmarshal(data, fresh), &te) {
		return err
	}
	return fieldErr{field: te.Field, msg: fmt.Sprintf("expected %s, found %s", jsonTypeName(te.Type), te.Value)}
}

func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "a " + t.String()
}

var unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)
var dupFieldRE = regexp.MustCompile(`duplicate field "([^"]+)"`)

func strictError(err error) error {
	s := err.Error()
	if m := unknownFieldRE.FindStringSubmatch(s); m != nil {
		return fieldErr{field: m[1], msg: "unknown field (check its spelling and indentation)"}
	}
	if m := dupFieldRE.FindStringSubmatch(s); m != nil {
		return fieldErr{field: m[1], msg: "is given twice"}
	}
	return err
}
