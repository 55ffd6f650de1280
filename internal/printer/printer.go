// Package printer renders objects for people: kubectl-style tables with each kind's
// columns, YAML and JSON, and the longer describe view.
//
// Columns read fields by JSON path, like a CRD's additionalPrinterColumns, so the same
// definitions can later become the CRDs' printer columns.
package printer

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Column is one table column: a header and how to compute its cell from the object's
// generic JSON form.
type Column struct {
	Header string
	Wide   bool // only with -o wide
	Cell   func(o map[string]any, now time.Time) string
}

// Format names an output format.
type Format string

// Output formats of get.
const (
	Table Format = "table"
	Wide  Format = "wide"
	YAML  Format = "yaml"
	JSON  Format = "json"
)

// ParseFormat checks an -o value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Table, Wide, YAML, JSON:
		return f, nil
	case "":
		return Table, nil
	}
	return "", fmt.Errorf("unknown output format %q: expected table, wide, yaml or json", s)
}

// Print writes objects in the format. allNamespaces adds a NAMESPACE column.
func Print(w io.Writer, f Format, k *v1alpha1.KindInfo, objs []v1alpha1.Object, allNamespaces bool, now time.Time) error {
	switch f {
	case YAML:
		for i, o := range objs {
			if i > 0 {
				fmt.Fprintln(w, "---")
			}
			data, err := yaml.Marshal(o)
			if err != nil {
				return err
			}
			if _, err := w.Write(data); err != nil {
				return err
			}
		}
		return nil
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if len(objs) == 1 {
			return enc.Encode(objs[0])
		}
		return enc.Encode(map[string]any{"apiVersion": "v1", "kind": "List", "items": objs})
	}
	if len(objs) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	cols := columnsFor(k, f == Wide)
	var hdr []string
	if allNamespaces && k.Namespaced {
		hdr = append(hdr, "NAMESPACE")
	}
	hdr = append(hdr, "NAME")
	for _, c := range cols {
		hdr = append(hdr, c.Header)
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t"))
	for _, o := range objs {
		m, err := toMap(o)
		if err != nil {
			return err
		}
		var row []string
		if allNamespaces && k.Namespaced {
			row = append(row, o.GetNamespace())
		}
		row = append(row, o.GetName())
		for _, c := range cols {
			v := c.Cell(m, now)
			if v == "" {
				v = "<none>"
			}
			row = append(row, v)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func columnsFor(k *v1alpha1.KindInfo, wide bool) []Column {
	var out []Column
	for _, c := range kindColumns[k.Kind] {
		if c.Wide && !wide {
			continue
		}
		out = append(out, c)
	}
	return append(out, Column{Header: "AGE", Cell: age})
}

func toMap(o any) (map[string]any, error) {
	data, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(data, &m)
}

// get walks a dotted path through maps; "[]" steps are not supported here, lists are
// handled by the column functions themselves.
func get(m any, path string) any {
	for _, p := range strings.Split(path, ".") {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

func str(m any, path string) string {
	switch v := get(m, path).(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return fmt.Sprint(int64(v))
	default:
		return fmt.Sprint(v)
	}
}

func list(m any, path string) []any {
	l, _ := get(m, path).([]any)
	return l
}

func age(m map[string]any, now time.Time) string {
	t, err := time.Parse(time.RFC3339, str(m, "metadata.creationTimestamp"))
	if err != nil {
		return ""
	}
	return HumanDuration(now.Sub(t))
}

// HumanDuration renders an age as kubectl does: 45s, 3m, 2h, 5d.
func HumanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// condition returns the status of a condition type in status.conditions.
func condition(m map[string]any, typ string) string {
	for _, c := range list(m, "status.conditions") {
		if str(c, "type") == typ {
			return str(c, "status")
		}
	}
	return ""
}

func joinMap(m any) string {
	mm, _ := m.(map[string]any)
	keys := make([]string, 0, len(mm))
	for k := range mm {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, mm[k]))
	}
	return strings.Join(parts, ",")
}

// PrintRows writes one object as a table row without a header, for watches.
func PrintRows(w io.Writer, f Format, k *v1alpha1.KindInfo, obj v1alpha1.Object, allNamespaces bool, now time.Time) error {
	var buf strings.Builder
	if err := Print(&buf, f, k, []v1alpha1.Object{obj}, allNamespaces, now); err != nil {
		return err
	}
	lines := strings.SplitN(buf.String(), "\n", 2)
	if len(lines) == 2 {
		_, err := io.WriteString(w, lines[1])
		return err
	}
	return nil
}
