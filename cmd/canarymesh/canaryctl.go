package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/internal/canary"
)

// Manual control of a release, without editing YAML: each command leaves a request on
// the Canary that the controller carries out once, at its next run.

func newPromoteCommand(g *globals) *cobra.Command {
	return newCanaryCommand(g, canary.ManualPromote, "Promote the revision under analysis now, skipping the rest of the analysis",
		"Also promotes a revision whose analysis failed.")
}

func newAbortCommand(g *globals) *cobra.Command {
	return newCanaryCommand(g, canary.ManualAbort, "Roll back the release under analysis now", "")
}

func newRetryCommand(g *globals) *cobra.Command {
	return newCanaryCommand(g, canary.ManualRetry, "Analyse a failed revision again, from the start", "")
}

func newPauseCommand(g *globals) *cobra.Command {
	return newCanaryCommand(g, canary.ManualPause, "Hold the release where it is, weights unchanged", "")
}

func newResumeCommand(g *globals) *cobra.Command {
	return newCanaryCommand(g, canary.ManualResume, "Continue a paused release", "")
}

func newCanaryCommand(g *globals, verb canary.ManualCommand, short, long string) *cobra.Command {
	var ns string
	cmd := &cobra.Command{
		Use:   string(verb) + " CANARY [-n NS]",
		Short: short,
		Long: short + ". " + long + `
The request is stored on the Canary (annotation ` + canary.AnnotationCommand + `) and the
controller carries it out once, at its next run; a command that does not fit the phase
is ignored with a Warning event (see canarymesh events canary/NAME).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if ns == "" {
				ns = "default"
			}
			if _, err := canary.RequestCommand(cmd.Context(), c, ns, args[0], verb); err != nil {
				return fmt.Errorf("canary %s/%s: %w", ns, args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "canary/%s %s requested\n", args[0], verb)
			return nil
		},
	}
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}
