package prometheus_test

import (
	"regexp"
	"testing"
)

// anchored compiles re as Prometheus' relabelling does: matching the whole value.
func anchored(t *testing.T, re string) *regexp.Regexp {
	t.Helper()
	return regexp.MustCompile("^(?s:" + re + ")$")
}
