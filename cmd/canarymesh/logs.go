package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/workload"
)

func newLogsCommand(g *globals) *cobra.Command {
	var (
		ns       string
		follow   bool
		instance int
	)
	cmd := &cobra.Command{
		Use:   "logs wl/NAME [-n NS] [-f] [--instance I]",
		Short: "Print the output of a workload's processes",
		Long: `Print the output of a workload's instances, as canarymesh up on this machine keeps
it in the data directory (logs/<namespace>/<name>-<index>.log, the older part rotated to
.log.1). Lines of several instances are prefixed with [name-index]; --instance picks one.
Lines starting with [canarymesh] are the supervisor's: starts, exits, restarts, stops.`,
		Example: `  canarymesh logs wl/podinfo -n demo
  canarymesh logs wl/podinfo-primary -n demo -f --instance 0`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if len(args) == 2 || strings.Contains(name, "/") {
				k, n, err := kindAndName(args)
				if err != nil {
					return err
				}
				if k.Kind != "Workload" {
					return fmt.Errorf("logs are kept for workloads only, not %s: give wl/NAME", k.Kind)
				}
				name = n
			}
			if name == "" {
				return fmt.Errorf("give the workload's name: wl/NAME")
			}
			wl, _ := v1alpha1.LookupKind("Workload")
			rc, err := workload.OpenLogFiles(cmd.Context(), g.dataDir, namespaceFor(wl, ns, false), name,
				workload.LogFileOptions{Instance: instance, Follow: follow})
			if err != nil {
				return err
			}
			defer rc.Close()
			if _, err := io.Copy(cmd.OutOrStdout(), rc); err != nil && cmd.Context().Err() == nil {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns, "namespace", "n", "", "namespace of the workload (default \"default\")")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	f.IntVar(&instance, "instance", -1, "print only this instance (by index); -1 prints all")
	return cmd
}
