package printer

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Describe writes the long view of one object: identity, spec, conditions and the rest of
// its status.
func Describe(w io.Writer, obj v1alpha1.Object) error {
	m, err := toMap(obj)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	line("Name", obj.GetName())
	if obj.GetNamespace() != "" {
		line("Namespace", obj.GetNamespace())
	}
	line("Kind", obj.GetObjectKind().GroupVersionKind().Kind)
	line("API Version", obj.GetObjectKind().GroupVersionKind().GroupVersion().String())
	line("Labels", orNone(joinStrMap(obj.GetLabels())))
	line("Annotations", orNone(joinStrMap(obj.GetAnnotations())))
	line("Created", obj.GetCreationTimestamp().UTC().Format(time.RFC3339))
	line("Generation", fmt.Sprint(obj.GetGeneration()))
	line("Resource Version", obj.GetResourceVersion())
	if err := tw.Flush(); err != nil {
		return err
	}
	if spec, ok := m["spec"]; ok {
		if err := section(w, "Spec", spec); err != nil {
			return err
		}
	}
	status, _ := m["status"].(map[string]any)
	conds := list(status, "conditions")
	if len(conds) > 0 {
		fmt.Fprintln(w, "Conditions:")
		ct := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(ct, "  TYPE\tSTATUS\tREASON\tSINCE\tMESSAGE")
		for _, c := range conds {
			fmt.Fprintf(ct, "  %s\t%s\t%s\t%s\t%s\n", str(c, "type"), str(c, "status"), str(c, "reason"), str(c, "lastTransitionTime"), str(c, "message"))
		}
		if err := ct.Flush(); err != nil {
			return err
		}
	}
	delete(status, "conditions")
	if len(status) > 0 {
		return section(w, "Status", status)
	}
	return nil
}

func section(w io.Writer, title string, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", l)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func joinStrMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
