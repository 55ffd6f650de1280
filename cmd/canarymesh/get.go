package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/printer"
)

// kindAndName reads "KIND [NAME]" or "KIND/NAME" arguments.
func kindAndName(args []string) (*v1alpha1.KindInfo, string, error) {
	kindArg, name := args[0], ""
	if i := strings.IndexByte(kindArg, '/'); i >= 0 {
		if len(args) > 1 {
			return nil, "", errors.New("give KIND/NAME or KIND NAME, not both")
		}
		kindArg, name = kindArg[:i], kindArg[i+1:]
	} else if len(args) > 1 {
		name = args[1]
	}
	k, err := v1alpha1.LookupKind(kindArg)
	return k, name, err
}

func namespaceFor(k *v1alpha1.KindInfo, ns string, all bool) string {
	switch {
	case !k.Namespaced || all:
		return ""
	case ns == "":
		return "default"
	}
	return ns
}

func newGetCommand(g *globals) *cobra.Command {
	var ns, output string
	var all, watch bool
	cmd := &cobra.Command{
		Use:   "get KIND [NAME] [-n NS | -A] [-o table|wide|yaml|json] [--watch]",
		Short: "List objects, or show one",
		Long: `List objects of a kind, or show one. Kinds go by plural, singular or short name:
mesh, virtualnode (vn), virtualservice (vs), virtualrouter (vr), virtualgateway (vg),
gatewayroute (gr), canary, metrictemplate (mt), alertprovider (ap), workload (wl),
namespace (ns).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, name, err := kindAndName(args)
			if err != nil {
				return err
			}
			f, err := printer.ParseFormat(output)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			namespace := namespaceFor(k, ns, all && name == "")
			ctx := cmd.Context()
			var objs []v1alpha1.Object
			var rv string
			if name != "" {
				o, err := c.Get(ctx, k, namespace, name)
				if err != nil {
					return err
				}
				objs, rv = []v1alpha1.Object{o}, o.GetResourceVersion()
			} else {
				objs, rv, err = c.List(ctx, k, namespace)
				if err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if len(objs) == 0 && !watch && f != printer.JSON && f != printer.YAML {
				where := ""
				if namespace != "" {
					where = " in namespace " + namespace
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "No %s found%s.\n", k.Plural, where)
				return nil
			}
			if err := printer.Print(out, f, k, objs, namespace == "", time.Now()); err != nil {
				return err
			}
			if !watch {
				return nil
			}
			events, errc, err := c.Watch(ctx, k, namespace, name, rv)
			if err != nil {
				return err
			}
			for ev := range events {
				if f == printer.Table || f == printer.Wide {
					if err := printer.PrintRows(out, f, k, ev.Object, namespace == "", time.Now()); err != nil {
						return err
					}
					continue
				}
				if f == printer.YAML {
					fmt.Fprintln(out, "---")
				}
				if err := printer.Print(out, f, k, []v1alpha1.Object{ev.Object}, false, time.Now()); err != nil {
					return err
				}
			}
			return <-errc
		},
	}
	cmd.Flags().StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list across all namespaces")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, wide, yaml or json")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after listing, print changes as they happen")
	return cmd
}
