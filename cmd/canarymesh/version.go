package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newVersionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the client's version, and the server's when one is reachable",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Client Version: %s\n", buildVersion())
			c, err := g.client()
			if err != nil {
				return nil
			}
			v, err := c.Version(cmd.Context())
			if err != nil {
				fmt.Fprintf(out, "Server: %v\n", err)
				return nil
			}
			fmt.Fprintf(out, "Server Version: %s (API %s)\n", v.Version, v.APIVersion)
			return nil
		},
	}
}
