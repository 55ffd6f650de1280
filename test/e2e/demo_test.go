package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The README's first command, run as a user would: the seed demo must promote 3.1.1,
// roll back 3.1.2 and say so, within its time budget.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "demo").CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("canarymesh demo: %v\n%s", err, text)
	}
	for _, want := range []string{
		"Initialized", "Progressing", "Promoting", "Succeeded",
		"gateway: 20 of 20 requests answered by podinfo 3.1.1",
		"Failed",
		"verdict: OK",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	// The first release stepped through the weights before its promotion, and the
	// second was rolled back to weight 0.
	var weights []string
	promoted := false
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "podinfo" {
			continue
		}
		switch {
		case f[1] == "Succeeded":
			promoted = true
		case f[1] == "Progressing" && !promoted && f[2] != "0":
			if len(weights) == 0 || weights[len(weights)-1] != f[2] {
				weights = append(weights, f[2])
			}
		case f[1] == "Failed" && f[2] != "0":
			t.Errorf("rolled back but weight %s stays on the canary: %q", f[2], line)
		}
	}
	if got := strings.Join(weights, ","); got != "10,20,30,40,50" {
		t.Errorf("weights while analysing 3.1.1: %s, want 10,20,30,40,50\n%s", got, text)
	}
}
