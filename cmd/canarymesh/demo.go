package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/internal/demo"
)

func newDemoCommand(_ *globals) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo [--keep]",
		Short: "Play the seed's Flagger + App Mesh demo: one release promoted, one rolled back",
		Long: `Play the seed's Flagger + App Mesh demo on this machine, in a temporary directory:
podinfo 3.1.0 runs behind a gateway; 3.1.1 is released, analysed step by step and
promoted; 3.1.2 starts failing under injected 500s and is rolled back with all traffic
back on the primary. Exits 0 only if both happened. With --keep everything stays up and
the URLs are printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if err := demo.Run(cmd.Context(), demo.Options{Binary: self, Out: cmd.OutOrStdout(), Keep: keep}); err != nil {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "leave it all running after the verdict and print the URLs")
	return cmd
}
