package demo

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// When canarymesh up cannot start, the demo says so and keeps the log it points to.
func TestUpThatExitsKeepsItsLog(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "canarymesh")
	script := "#!/bin/sh\necho 'listen tcp 127.0.0.1:7480: bind: address already in use' >&2\nexit 1\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), Options{Binary: bin, Out: io.Discard})
	if err == nil {
		t.Fatal("Run succeeded with an up that exits at once")
	}
	m := regexp.MustCompile(`see (\S+up\.log)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("the error names no log: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(m[1])) })
	b, rerr := os.ReadFile(m[1])
	if rerr != nil {
		t.Fatalf("the log the error names is gone: %v", rerr)
	}
	if !strings.Contains(string(b), "address already in use") {
		t.Errorf("up.log holds %q, want up's own complaint", b)
	}
	if !strings.Contains(err.Error(), "exited") {
		t.Errorf("the error does not say that up exited: %v", err)
	}
}
