package inject

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// ApplyIPTables loads rules (IPTablesRules' output) with iptables-restore, keeping the
// tables' other rules, and returns the resulting nat table as iptables-save prints it.
func ApplyIPTables(ctx context.Context, rules string) ([]byte, error) {
	restore := exec.CommandContext(ctx, "iptables-restore", "--noflush")
	restore.Stdin = strings.NewReader(rules)
	var stderr bytes.Buffer
	restore.Stderr = &stderr
	if err := restore.Run(); err != nil {
		return nil, fmt.Errorf("iptables-restore: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	out, err := exec.CommandContext(ctx, "iptables-save", "-t", "nat").Output()
	if err != nil {
		return nil, fmt.Errorf("iptables-save: %w", err)
	}
	return out, nil
}
