package demo

import (
	"fmt"
	"io"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// table prints a canary's rows as they change, like kubectl get canaries --watch with the
// analysis' last values.
type table struct {
	w     io.Writer
	last  string
	phase v1alpha1.CanaryPhase
}

const tableFormat = "%-9s %-17s %6s %13s %13s %8s   %s\n"

func newTable(w io.Writer) *table {
	t := &table{w: w}
	fmt.Fprintf(w, tableFormat, "NAME", "STATUS", "WEIGHT", "FAILEDCHECKS", "SUCCESS-RATE", "P99", "LASTTRANSITION")
	return t
}

func (t *table) row(cd *v1alpha1.Canary) {
	st := cd.Status
	sr, p99 := "-", "-"
	for _, m := range st.LastMetrics {
		switch m.Name {
		case "request-success-rate":
			sr = fmt.Sprintf("%.1f%%", m.Value)
		case "request-duration":
			p99 = fmt.Sprintf("%.0fms", m.Value)
		}
	}
	lt := "-"
	if !st.LastTransitionTime.IsZero() {
		lt = st.LastTransitionTime.UTC().Format(time.TimeOnly)
	}
	line := fmt.Sprintf(tableFormat, cd.Name, st.Phase, fmt.Sprint(st.CanaryWeight), fmt.Sprint(st.FailedChecks), sr, p99, lt)
	t.phase = st.Phase
	if line == t.last {
		return
	}
	t.last = line
	fmt.Fprint(t.w, line)
}
