package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/hooks"
	"github.com/canarymesh/canarymesh/internal/printer"
)

func newEventsCommand(g *globals) *cobra.Command {
	var ns string
	cmd := &cobra.Command{
		Use:   "events KIND/NAME [-n NS]",
		Short: "Show what happened to an object, oldest first (e.g. events canary/podinfo)",
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
			evs, err := objectEvents(cmd, c, k, namespaceFor(k, ns, false), name)
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "No events for %s/%s.\n", k.Singular, name)
				return nil
			}
			return printEvents(cmd.OutOrStdout(), evs, time.Now())
		},
	}
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}

func objectEvents(cmd *cobra.Command, c *controlplane.Client, k *v1alpha1.KindInfo, ns, name string) ([]*v1alpha1.Event, error) {
	ek, err := v1alpha1.LookupKind("events")
	if err != nil {
		return nil, err
	}
	objs, _, err := c.List(cmd.Context(), ek, ns)
	if err != nil {
		return nil, err
	}
	return hooks.For(objs, k.Kind, name), nil
}

func printEvents(w io.Writer, evs []*v1alpha1.Event, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "LAST SEEN\tTYPE\tREASON\tCOUNT\tMESSAGE")
	for _, e := range evs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", printer.HumanDuration(now.Sub(e.LastTimestamp.Time)), e.Type, e.Reason, e.Count, e.Message)
	}
	return tw.Flush()
}
