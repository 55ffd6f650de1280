package main

import (
	"encoding/json"
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

// allKinds are what `get all` lists: the user's mesh, delivery and workload objects.
var allKinds = []string{"Mesh", "VirtualService", "VirtualRouter", "VirtualNode", "VirtualGateway",
	"GatewayRoute", "Canary", "Workload"}

// getRequest is one kind to list, or one object to show.
type getRequest struct {
	kind *v1alpha1.KindInfo
	name string
}

// parseGetArgs reads `KIND[,KIND…] [NAME]`, `all`, or `KIND/NAME…`.
func parseGetArgs(args []string) ([]getRequest, error) {
	if strings.Contains(args[0], "/") {
		var reqs []getRequest
		for _, a := range args {
			if !strings.Contains(a, "/") {
				return nil, fmt.Errorf("%q: after a KIND/NAME argument every argument must be KIND/NAME", a)
			}
			k, name, err := kindAndName([]string{a})
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, getRequest{k, name})
		}
		return reqs, nil
	}
	if len(args) > 2 {
		return nil, errors.New("give KIND [NAME], KIND,KIND…, or KIND/NAME…")
	}
	var names []string
	for _, n := range strings.Split(args[0], ",") {
		if n == "all" {
			names = append(names, allKinds...)
		} else if n != "" {
			names = append(names, n)
		}
	}
	if len(names) != 1 && len(args) == 2 {
		return nil, errors.New("a NAME goes with one kind; use KIND/NAME for several")
	}
	var reqs []getRequest
	seen := map[string]bool{}
	for _, n := range names {
		k, err := v1alpha1.LookupKind(n)
		if err != nil {
			return nil, err
		}
		if seen[k.Kind] {
			continue
		}
		seen[k.Kind] = true
		r := getRequest{kind: k}
		if len(args) == 2 {
			r.name = args[1]
		}
		reqs = append(reqs, r)
	}
	if len(reqs) == 0 {
		return nil, errors.New("no kind given")
	}
	return reqs, nil
}

func newGetCommand(g *globals) *cobra.Command {
	var ns, output string
	var all, watch bool
	cmd := &cobra.Command{
		Use:   "get KIND[,KIND…]|all [NAME] | KIND/NAME… [-n NS | -A] [-o table|wide|yaml|json] [--watch]",
		Short: "List objects, or show some",
		Long: `List objects of one or more kinds, or show named ones. Kinds go by plural, singular
or short name: mesh, virtualnode (vn), virtualservice (vs), virtualrouter (vr),
virtualgateway (vg), gatewayroute (gr), canary, metrictemplate (mt), alertprovider (ap),
workload (wl), namespace (ns), event, proxy. Several kinds: "get vs,vr"; "get all" lists
meshes, virtual services, routers, nodes, gateways, gateway routes, canaries and
workloads; several objects: "get vs/podinfo vr/podinfo".`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reqs, err := parseGetArgs(args)
			if err != nil {
				return err
			}
			f, err := printer.ParseFormat(output)
			if err != nil {
				return err
			}
			if watch && len(reqs) > 1 {
				return errors.New("--watch follows one kind or one object at a time")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			type listed struct {
				k    *v1alpha1.KindInfo
				ns   string
				objs []v1alpha1.Object
				rv   string
			}
			var lists []listed
			for _, r := range reqs {
				namespace := namespaceFor(r.kind, ns, all && r.name == "")
				if r.name != "" {
					o, err := c.Get(ctx, r.kind, namespace, r.name)
					if err != nil {
						return err
					}
					// Several KIND/NAME arguments of one kind print in one table.
					if n := len(lists); n > 0 && lists[n-1].k == r.kind {
						lists[n-1].objs = append(lists[n-1].objs, o)
						continue
					}
					lists = append(lists, listed{r.kind, namespace, []v1alpha1.Object{o}, o.GetResourceVersion()})
					continue
				}
				objs, rv, err := c.List(ctx, r.kind, namespace)
				if err != nil {
					return err
				}
				lists = append(lists, listed{r.kind, namespace, objs, rv})
			}
			if f == printer.JSON || f == printer.YAML {
				var objs []v1alpha1.Object
				for _, l := range lists {
					objs = append(objs, l.objs...)
				}
				if f == printer.JSON && len(reqs) > 1 {
					// Several kinds or objects: always a List, so scripts get one shape
					// whatever the count.
					if objs == nil {
						objs = []v1alpha1.Object{}
					}
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					return enc.Encode(map[string]any{"apiVersion": "v1", "kind": "List", "items": objs})
				}
				if err := printer.Print(out, f, lists[0].k, objs, false, time.Now()); err != nil {
					return err
				}
			} else {
				printed := 0
				for _, l := range lists {
					if len(l.objs) == 0 {
						if len(lists) == 1 && !watch {
							where := ""
							if l.ns != "" {
								where = " in namespace " + l.ns
							}
							fmt.Fprintf(cmd.ErrOrStderr(), "No %s found%s.\n", l.k.Plural, where)
						}
						continue
					}
					if printed > 0 {
						fmt.Fprintln(out)
					}
					printed++
					if err := printer.Print(out, f, l.k, l.objs, l.ns == "", time.Now()); err != nil {
						return err
					}
				}
				if printed == 0 && len(lists) > 1 {
					fmt.Fprintln(cmd.ErrOrStderr(), "No resources found.")
				}
			}
			if !watch {
				return nil
			}
			l, name := lists[0], reqs[0].name
			events, errc, err := c.Watch(ctx, l.k, l.ns, name, l.rv)
			if err != nil {
				return err
			}
			for ev := range events {
				if f == printer.Table || f == printer.Wide {
					if err := printer.PrintRows(out, f, l.k, ev.Object, l.ns == "", time.Now()); err != nil {
						return err
					}
					continue
				}
				if f == printer.YAML {
					fmt.Fprintln(out, "---")
				}
				if err := printer.Print(out, f, l.k, []v1alpha1.Object{ev.Object}, false, time.Now()); err != nil {
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
