package inject

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Editing the YAML node tree rather than re-marshalling a map keeps the user's key order,
// comments and quoting in every part the injection does not touch.

// resolve follows an alias and unwraps a document.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && (n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode) {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			return nil
		}
	}
	return n
}

// mapGet returns the value of key in a mapping node, or nil.
func mapGet(m *yaml.Node, key string) *yaml.Node {
	m = resolve(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return resolve(m.Content[i+1])
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// block writes a node the injection changes in block style: content added to a flow
// mapping would otherwise be written on one long line.
func block(n *yaml.Node) *yaml.Node {
	n.Style &^= yaml.FlowStyle
	return n
}

// mapChild returns the mapping or sequence under key, creating it (or replacing a null)
// when absent, in block style.
func mapChild(m *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	m = block(resolve(m))
	tag := "!!map"
	if kind == yaml.SequenceNode {
		tag = "!!seq"
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			if v := resolve(m.Content[i+1]); !isNull(v) {
				return block(v)
			}
			m.Content[i+1] = &yaml.Node{Kind: kind, Tag: tag}
			return m.Content[i+1]
		}
	}
	v := &yaml.Node{Kind: kind, Tag: tag}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v
}

// mapSet sets key to a string value.
func mapSet(m *yaml.Node, key, value string) {
	val := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = val
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, val)
}

// valueNode encodes a Go value as a node tree.
func valueNode(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return &n, nil
}

// applyToNode adds a Patch to a pod template's node (a mapping with metadata and spec).
func applyToNode(tmpl *yaml.Node, p *Patch) error {
	tmpl = resolve(tmpl)
	if tmpl == nil || tmpl.Kind != yaml.MappingNode {
		return fmt.Errorf("expected a mapping")
	}
	ann := mapChild(mapChild(tmpl, "metadata", yaml.MappingNode), "annotations", yaml.MappingNode)
	for _, k := range sortedKeys(p.Annotations) {
		mapSet(ann, k, p.Annotations[k])
	}
	spec := mapChild(tmpl, "spec", yaml.MappingNode)
	if len(p.AppEnv) > 0 {
		if cs := mapGet(spec, "containers"); cs != nil && cs.Kind == yaml.SequenceNode {
			block(cs)
			for _, c := range cs.Content {
				c = resolve(c)
				if c == nil || c.Kind != yaml.MappingNode {
					continue
				}
				env := mapChild(c, "env", yaml.SequenceNode)
				for _, e := range p.AppEnv {
					if !hasEnvNode(env, e.Name) {
						n, err := valueNode(map[string]string{"name": e.Name, "value": e.Value})
						if err != nil {
							return err
						}
						env.Content = append(env.Content, n)
					}
				}
			}
		}
	}
	if len(p.InitContainers) == 0 {
		return nil
	}
	inits := mapChild(spec, "initContainers", yaml.SequenceNode)
	for i := range p.InitContainers {
		u, err := containerMap(&p.InitContainers[i])
		if err != nil {
			return err
		}
		n, err := valueNode(u)
		if err != nil {
			return err
		}
		inits.Content = append(inits.Content, n)
	}
	return nil
}

// containerMap is the container as its YAML would be written, without empty fields.
func containerMap(c *corev1.Container) (map[string]any, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(c)
	if err != nil {
		return nil, err
	}
	if r, ok := u["resources"].(map[string]any); ok && len(r) == 0 {
		delete(u, "resources")
	}
	return u, nil
}

func hasEnvNode(env *yaml.Node, name string) bool {
	for _, e := range env.Content {
		if n := mapGet(e, "name"); n != nil && n.Value == name {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// encodeNode writes a document node as YAML with two-space indentation.
func encodeNode(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// pathTokens splits a field path such as spec.containers[0].env or
// metadata.annotations[appmesh.k8s.aws/ports] into keys and indexes.
func pathTokens(path string) []string {
	var out []string
	for len(path) > 0 {
		switch path[0] {
		case '.':
			path = path[1:]
		case '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return append(out, path[1:])
			}
			out = append(out, path[1:end])
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			out = append(out, path[:end])
			path = path[end:]
		}
	}
	return out
}

// lineOf is the line (within the node's document) of the deepest part of path that
// exists under n; n's own line when none does.
func lineOf(n *yaml.Node, path string) int {
	n = resolve(n)
	if n == nil {
		return 0
	}
	line := n.Line
	for _, tok := range pathTokens(path) {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == tok {
					line, next = n.Content[i].Line, resolve(n.Content[i+1])
					break
				}
			}
			if next == nil {
				return line
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = resolve(n.Content[i])
			line = n.Line
		default:
			return line
		}
	}
	return line
}
