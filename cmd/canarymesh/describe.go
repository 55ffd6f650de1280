package main

import (
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
			return printer.Describe(cmd.OutOrStdout(), obj)
		},
	}
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}
