package manifest

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// olderNames maps a v1alpha1 field name to the name the same field has in the formats
// we import, so that an error found after conversion points at the line the user wrote.
var olderNames = map[string][]string{
	"httpRoute":       {"http"},
	"http2Route":      {"http2"},
	"grpcRoute":       {"grpc"},
	"tcpRoute":        {"tcp"},
	"virtualNodeRef":  {"virtualNodeName"},
	"meshRef":         {"meshName"},
	"awsCloudMap":     {"cloudMap"},
	"hostname":        {"hostName"},
	"perRetryTimeout": {"perRetryTimeoutMillis"},
	"provider":        {"virtualRouter"},
}

// splitPath turns "spec.routes[0].httpRoute" into ["spec", "routes", "[0]", "httpRoute"].
func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				out = append(out, part)
				break
			}
			if i > 0 {
				out = append(out, part[:i])
			}
			j := strings.IndexByte(part, ']')
			if j < i {
				out = append(out, part[i:])
				break
			}
			out = append(out, part[i:j+1])
			part = part[j+1:]
		}
	}
	return out
}

// lineOf returns the line of the deepest node along path in doc, or doc's own line.
func lineOf(doc *yaml.Node, path string) int {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, seg := range splitPath(path) {
		next := child(n, seg)
		if next == nil {
			break
		}
		n = next
		line = n.Line
	}
	return line
}

func child(n *yaml.Node, seg string) *yaml.Node {
	if strings.HasPrefix(seg, "[") {
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		i, err := strconv.Atoi(strings.Trim(seg, "[]"))
		if err != nil || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for _, name := range append([]string{seg}, olderNames[seg]...) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				// Point at the key's line: for a nested mapping the value starts below it.
				v := n.Content[i+1]
				if v.Kind == yaml.ScalarNode {
					return v
				}
				c := *v
				c.Line = n.Content[i].Line
				return &c
			}
		}
	}
	return nil
}

// checkDuplicateKeys finds a key defined twice in one mapping — the mark of a missing
// '---' between two documents — and returns the key with both lines.
func checkDuplicateKeys(n *yaml.Node) (key string, first, again int, found bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if k, f, a, ok := checkDuplicateKeys(c); ok {
				return k, f, a, true
			}
		}
	case yaml.MappingNode:
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if l, ok := seen[k.Value]; ok {
				return k.Value, l, k.Line, true
			}
			seen[k.Value] = k.Line
			if k, f, a, ok := checkDuplicateKeys(n.Content[i+1]); ok {
				return k, f, a, true
			}
		}
	}
	return "", 0, 0, false
}
