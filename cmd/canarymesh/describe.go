package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/internal/printer"
)

func newDescribeCommand(g *globals) *cobra.Command {
	var ns string
	cmd := &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show one object in detail: its spec, status and conditions",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, name, err := kindAndName(args)
			if err != nil {
				return err
			}
			if name == "" {
				return errAtLeastName
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			obj, err := c.Get(cmd.Context(), k, namespaceFor(k, ns, false), name)
			if err != nil {
				return err
			}
			if err := printer.Describe(cmd.OutOrStdout(), obj); err != nil {
				return err
			}
			evs, err := objectEvents(cmd, c, k, obj.GetNamespace(), name)
			if err != nil || len(evs) == 0 {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Events:")
			return printEvents(cmd.OutOrStdout(), evs, time.Now())
		},
	}
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}
